package cli

import (
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams are the standard streams of a command. Tests pass buffers.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// IsTerminal reports whether Out is an interactive terminal; commands use it
	// to choose between redrawn views and one line per change.
	IsTerminal bool
}

// SystemStreams returns the process's own standard streams.
func SystemStreams() IOStreams {
	return IOStreams{
		In:         os.Stdin,
		Out:        os.Stdout,
		ErrOut:     os.Stderr,
		IsTerminal: term.IsTerminal(int(os.Stdout.Fd())),
	}
}
