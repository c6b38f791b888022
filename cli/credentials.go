package cli

import (
	"strings"

	"github.com/spf13/cobra"
)

// newCredentialsCmd is the parent of the client-credential verbs.
func newCredentialsCmd(ios IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "credentials",
		Short: "Create, list and delete client credentials (for CI and agents)",
		Long: strings.TrimSpace(`
Manage your tenant's machine client credentials: a client id and secret
that get tokens from the server's /oauth/token, with roles (viewer,
deployer, tenant-admin, organization-admin, agent, or a custom role an
approval may require). Needs the tenant-admin or organization-admin role.`),
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown credentials subcommand %q (subcommands: create, list, delete)", args[0])
			}
			return usageErrorf("credentials needs a subcommand: create, list or delete")
		},
	}
	cmd.AddCommand(newCredentialsCreateCmd(ios), newCredentialsListCmd(ios), newCredentialsDeleteCmd(ios))
	return cmd
}
