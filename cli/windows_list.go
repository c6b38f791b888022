package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/pipeline"
)

// WindowsListOptions are the inputs of `sortie windows list`.
type WindowsListOptions struct {
	Conn   connOptions
	Output string
}

func newWindowsListCmd(ios IOStreams) *cobra.Command {
	opts := WindowsListOptions{}
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List deploy windows",
		Example: "  sortie windows list -o json",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runWindowsList(cmd.Context(), ios, opts) },
	}
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runWindowsList(ctx context.Context, ios IOStreams, opts WindowsListOptions) error {
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	ws, err := c.ListWindows(ctx)
	if err != nil {
		return err
	}
	if ws == nil {
		ws = []pipeline.Window{}
	}
	return writeData(ios.Out, opts.Output, api.WindowList{Windows: ws}, func(w io.Writer) error {
		if len(ws) == 0 {
			_, err := fmt.Fprintln(w, "No deploy windows: deployments may start at any time. Set one with 'sortie windows set'.")
			return err
		}
		return writeWindows(w, ws)
	})
}

// writeWindows prints windows as a table.
func writeWindows(w io.Writer, ws []pipeline.Window) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCOPE\tNAME\tDAYS\tHOURS\tZONE\tMODE")
	for _, win := range ws {
		days := strings.Join(append(append([]string{}, win.Days...), win.Dates...), ",")
		hours := "all day"
		if win.Start != "" {
			hours = win.Start + "-" + win.End
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", win.Scope, win.Name, firstOf(days, "every day"), hours,
			firstOf(win.TimeZone, "UTC"), firstOf(string(win.Mode), "as the file says (default queue)"))
	}
	return tw.Flush()
}
