package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// CredentialsDeleteOptions are the inputs of `sortie credentials delete`.
type CredentialsDeleteOptions struct {
	Conn     connOptions
	ClientID string
}

func newCredentialsDeleteCmd(ios IOStreams) *cobra.Command {
	opts := CredentialsDeleteOptions{}
	cmd := &cobra.Command{
		Use:     "delete CLIENT_ID",
		Short:   "Delete a client credential: its tokens and streams (agents' included) end at once",
		Example: "  sortie credentials delete 01JD3X5R8Q4W2E0M6K9T7N5B3C",
		Args:    exactArgs(1, "CLIENT_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ClientID = args[0]
			return runCredentialsDelete(cmd.Context(), ios, opts)
		},
	}
	opts.Conn.bind(cmd)
	return cmd
}

func runCredentialsDelete(ctx context.Context, ios IOStreams, opts CredentialsDeleteOptions) error {
	c, err := newAPIClient(ios, opts.Conn)
	if err != nil {
		return err
	}
	if err := c.DeleteCredential(ctx, opts.ClientID); err != nil {
		return err
	}
	_, err = fmt.Fprintf(ios.Out, "Deleted credential %s.\n", opts.ClientID)
	return err
}
