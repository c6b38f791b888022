package cli

import "github.com/spf13/cobra"

// newConfigCmd is the parent of the organization-configuration verbs.
func newConfigCmd(ios IOStreams) *cobra.Command {
	return newGroupCmd("config", "Get and apply the organization's tenants and custom roles as YAML", `
The organization's configuration: its tenants and, in each, the custom roles
with the grants they hold. 'config get' prints it as YAML; edit it and
'config apply -f FILE' it back. Needs the organization-admin role.`,
		newConfigGetCmd(ios), newConfigApplyCmd(ios))
}
