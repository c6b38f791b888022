package cli

import (
	"strings"

	"github.com/spf13/cobra"
)

// newConfigCmd is the parent of the organization-configuration verbs.
func newConfigCmd(ios IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Get and apply the organization's tenants and custom roles as YAML",
		Long: strings.TrimSpace(`
The organization's configuration: its tenants and, in each, the custom roles
with the grants they hold. 'config get' prints it as YAML; edit it and
'config apply -f FILE' it back. Needs the organization-admin role.`),
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown config subcommand %q (subcommands: get, apply)", args[0])
			}
			return usageErrorf("config needs a subcommand: get or apply")
		},
	}
	cmd.AddCommand(newConfigGetCmd(ios), newConfigApplyCmd(ios))
	return cmd
}
