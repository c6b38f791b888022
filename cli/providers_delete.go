package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/client"
)

// ProvidersDeleteOptions are the inputs of `sortie providers delete`.
type ProvidersDeleteOptions struct {
	Conn connOptions
	Name string
}

func newProvidersDeleteCmd(ios IOStreams) *cobra.Command {
	opts := ProvidersDeleteOptions{}
	cmd := &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete a metric provider",
		Long:    "Delete a metric provider. Analysis steps that name it fail until it is added again.",
		Example: "  sortie providers delete prom",
		Args:    exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			return runProvidersDelete(cmd.Context(), ios, opts)
		},
	}
	opts.Conn.bind(cmd)
	return cmd
}

func runProvidersDelete(ctx context.Context, ios IOStreams, opts ProvidersDeleteOptions) error {
	c, err := newAPIClient(ios, opts.Conn)
	if err != nil {
		return err
	}
	if err := c.DeleteProvider(ctx, opts.Name); err != nil {
		var ae *client.Error
		if errors.As(err, &ae) && ae.Status == 404 {
			return &ExitError{Code: ExitFailure, Err: fmt.Errorf("no metric provider %s in your tenant ('sortie providers list' shows them): %w", opts.Name, err)}
		}
		return err
	}
	_, err = fmt.Fprintf(ios.Out, "Deleted metric provider %s.\n", opts.Name)
	return err
}
