package cli

import "github.com/spf13/cobra"

// newCredentialsCmd is the parent of the client-credential verbs.
func newCredentialsCmd(ios IOStreams) *cobra.Command {
	return newGroupCmd("credentials", "Create, list and delete client credentials (for CI and agents)", `
Manage your tenant's machine client credentials: a client id and secret
that get tokens from the server's /oauth/token, with roles (viewer,
deployer, tenant-admin, organization-admin, agent, or a custom role an
approval may require). Needs the tenant-admin or organization-admin role.`,
		newCredentialsCreateCmd(ios), newCredentialsListCmd(ios), newCredentialsDeleteCmd(ios))
}
