// Package cli builds the sortie command tree: one file per command, each with
// an Options struct and a run function, writing through IOStreams rather than
// os.Stdout so that commands are testable end to end.
//
// It maps errors to exit codes in one place (Main) and must never print a
// stack trace, a token or a secret.
//
// It also accepts Armory CD-as-a-Service's command line (armory.go): its
// persistent flags and ARMORY_* variables, its camel-case flag names, its
// RBAC file in config apply, and, when the binary runs as "armory"
// (MainAs), its output lines, JSON shapes and exit codes.
package cli
