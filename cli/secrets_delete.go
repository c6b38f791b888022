package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// SecretsDeleteOptions are the inputs of `sortie secrets delete`.
type SecretsDeleteOptions struct {
	Conn connOptions
	Name string
}

func newSecretsDeleteCmd(ios IOStreams) *cobra.Command {
	opts := SecretsDeleteOptions{}
	cmd := &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete a secret",
		Example: "  sortie secrets delete slack-token",
		Args:    exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			return runSecretsDelete(cmd.Context(), ios, opts)
		},
	}
	opts.Conn.bind(cmd)
	return cmd
}

func runSecretsDelete(ctx context.Context, ios IOStreams, opts SecretsDeleteOptions) error {
	c, err := newAPIClient(ios, opts.Conn)
	if err != nil {
		return err
	}
	if err := c.DeleteSecret(ctx, opts.Name); err != nil {
		return err
	}
	_, err = fmt.Fprintf(ios.Out, "Deleted secret %s.\n", opts.Name)
	return err
}
