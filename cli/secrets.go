package cli

import "github.com/spf13/cobra"

// newSecretsCmd is the parent of the secret verbs.
func newSecretsCmd(ios IOStreams) *cobra.Command {
	return newGroupCmd("secrets", "Set, list and delete your tenant's secrets ({{secrets.NAME}} in webhooks)", `
Secrets are values webhooks and metric providers use by name
({{secrets.NAME}}), encrypted at rest with your tenant's key. They are
write-only: no command or API call shows a value again. Needs the
tenant-admin or organization-admin role.`,
		newSecretsSetCmd(ios), newSecretsListCmd(ios), newSecretsDeleteCmd(ios))
}
