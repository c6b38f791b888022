package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/pipeline"
)

// FreezeListOptions are the inputs of `sortie freeze list`.
type FreezeListOptions struct {
	Conn   connOptions
	Output string
}

func newFreezeListCmd(ios IOStreams) *cobra.Command {
	opts := FreezeListOptions{}
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the freezes in force",
		Example: "  sortie freeze list -o json",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runFreezeList(cmd.Context(), ios, opts) },
	}
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runFreezeList(ctx context.Context, ios IOStreams, opts FreezeListOptions) error {
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	fs, err := c.ListFreezes(ctx)
	if err != nil {
		return err
	}
	if fs == nil {
		fs = []pipeline.Freeze{}
	}
	return writeData(ios.Out, opts.Output, api.FreezeList{Freezes: fs}, func(w io.Writer) error {
		if len(fs) == 0 {
			_, err := fmt.Fprintln(w, "No freezes.")
			return err
		}
		return writeFreezes(w, fs)
	})
}

// writeFreezes prints freezes as a table.
func writeFreezes(w io.Writer, fs []pipeline.Freeze) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCOPE\tREASON\tUNTIL\tBY\tSINCE")
	for _, f := range fs {
		until := "lifted"
		if !f.Until.IsZero() {
			until = fmtTime(f.Until)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Scope, f.Reason, until, firstOf(f.By, "-"), fmtTime(f.At))
	}
	return tw.Flush()
}
