package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/api"
)

// CredentialsListOptions are the inputs of `sortie credentials list`.
type CredentialsListOptions struct {
	Conn   connOptions
	Output string
}

func newCredentialsListCmd(ios IOStreams) *cobra.Command {
	opts := CredentialsListOptions{}
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List client credentials (never their secrets)",
		Example: "  sortie credentials list -o json",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runCredentialsList(cmd.Context(), ios, opts) },
	}
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runCredentialsList(ctx context.Context, ios IOStreams, opts CredentialsListOptions) error {
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	cs, err := c.ListCredentials(ctx)
	if err != nil {
		return err
	}
	if cs == nil {
		cs = []api.CredentialView{}
	}
	return writeData(ios.Out, opts.Output, api.CredentialList{Credentials: cs}, func(w io.Writer) error {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT ID\tNAME\tROLES\tCREATED")
		for _, cr := range cs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", cr.ClientID, cr.Name, strings.Join(cr.Roles, ","), fmtTime(cr.CreatedAt))
		}
		return tw.Flush()
	})
}
