package cli

import (
	"strings"

	"github.com/spf13/cobra"
)

// newSecretsCmd is the parent of the secret verbs.
func newSecretsCmd(ios IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Set, list and delete your tenant's secrets ({{secrets.NAME}} in webhooks)",
		Long: strings.TrimSpace(`
Secrets are values webhooks and metric providers use by name
({{secrets.NAME}}), encrypted at rest with your tenant's key. They are
write-only: no command or API call shows a value again. Needs the
tenant-admin or organization-admin role.`),
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown secrets subcommand %q (subcommands: set, list, delete)", args[0])
			}
			return usageErrorf("secrets needs a subcommand: set, list or delete")
		},
	}
	cmd.AddCommand(newSecretsSetCmd(ios), newSecretsListCmd(ios), newSecretsDeleteCmd(ios))
	return cmd
}
