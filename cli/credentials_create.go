package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/api"
)

// CredentialsCreateOptions are the inputs of `sortie credentials create`.
type CredentialsCreateOptions struct {
	Conn   connOptions
	Name   string
	Roles  []string
	Output string
}

func newCredentialsCreateCmd(ios IOStreams) *cobra.Command {
	opts := CredentialsCreateOptions{}
	cmd := &cobra.Command{
		Use:   "create NAME --role ROLE...",
		Short: "Create a client credential; its secret is shown once",
		Long: strings.TrimSpace(`
Create a client credential with a name saying what it is for and one or
more roles. The secret is printed this once and cannot be read again:
store it in your CI's secret store right away.`),
		Example: strings.TrimSpace(`
  sortie credentials create "github actions" --role deployer
  sortie credentials create release-bot --role deployer --role release-manager -o json`),
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			return runCredentialsCreate(cmd.Context(), ios, opts)
		},
	}
	cmd.Flags().StringSliceVar(&opts.Roles, "role", nil, "a role to grant (repeatable, or comma-separated)")
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runCredentialsCreate(ctx context.Context, ios IOStreams, opts CredentialsCreateOptions) error {
	if len(opts.Roles) == 0 {
		return usageErrorf("give at least one --role (viewer, deployer, tenant-admin, organization-admin, agent, or a custom role)")
	}
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	nc, err := c.CreateCredential(ctx, api.CreateCredentialRequest{Name: opts.Name, Roles: opts.Roles})
	if err != nil {
		return err
	}
	return writeData(ios.Out, opts.Output, nc, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "Created credential %q with roles %s.\n\n  client id:     %s\n  client secret: %s\n\nThe secret is shown this once; store it now. Log in with it:\n  sortie login --server %s --client-id %s --client-secret SECRET\n",
			nc.Name, strings.Join(nc.Roles, ", "), nc.ClientID, nc.ClientSecret, c.Server(), nc.ClientID)
		return err
	})
}
