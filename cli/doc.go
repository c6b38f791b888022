// Package cli builds the sortie command tree: one file per command, each with
// an Options struct and a run function, writing through IOStreams rather than
// os.Stdout so that commands are testable end to end.
//
// It maps errors to exit codes in one place (Main) and must never print a
// stack trace, a token or a secret.
package cli
