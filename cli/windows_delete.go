package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/client"
)

// WindowsDeleteOptions are the inputs of `sortie windows delete`.
type WindowsDeleteOptions struct {
	Conn  connOptions
	Scope scopeFlags
	Name  string
}

func newWindowsDeleteCmd(ios IOStreams) *cobra.Command {
	opts := WindowsDeleteOptions{}
	cmd := &cobra.Command{
		Use:     "delete NAME [--application APP | --target TARGET]",
		Short:   "Delete a deploy window",
		Example: "  sortie windows delete nightly --target prod",
		Args:    exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			return runWindowsDelete(cmd.Context(), ios, opts)
		},
	}
	opts.Scope.bind(cmd)
	opts.Conn.bind(cmd)
	return cmd
}

func runWindowsDelete(ctx context.Context, ios IOStreams, opts WindowsDeleteOptions) error {
	c, err := newAPIClient(ios, opts.Conn)
	if err != nil {
		return err
	}
	scope := opts.Scope.scope()
	if err := c.DeleteWindow(ctx, scope, opts.Name); err != nil {
		if ae, ok := errors.AsType[*client.Error](err); ok && ae.Status == 404 {
			return &ExitError{Code: ExitFailure, Err: fmt.Errorf("no deploy window %s of %s ('sortie windows list' shows them): %w", opts.Name, scope, err)}
		}
		return err
	}
	_, err = fmt.Fprintf(ios.Out, "Deleted deploy window %s of %s.\n", opts.Name, scope)
	return err
}
