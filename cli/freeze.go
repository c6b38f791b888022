package cli

import "github.com/spf13/cobra"

// newFreezeCmd is the parent of the freeze verbs.
func newFreezeCmd(ios IOStreams) *cobra.Command {
	return newGroupCmd("freeze", "Stop deployments of your tenant, an application or a target, and let them go again", `
A freeze refuses new starts (unless glass is broken: 'deploy start
--break-glass --reason ...') and holds the deployments in flight before their
next step that changes a cluster: a canary stays at its weight, a blue/green
does not switch. Rollbacks always go through. One freeze per scope: the
tenant, an application (--application) or a target name (--target). Setting
and clearing needs the tenant-admin or organization-admin role.`,
		newFreezeSetCmd(ios), newFreezeListCmd(ios), newFreezeClearCmd(ios))
}
