package cli

import (
	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/pipeline"
)

// newWindowsCmd is the parent of the deploy-window verbs.
func newWindowsCmd(ios IOStreams) *cobra.Command {
	return newGroupCmd("windows", "Set, list and delete your tenant's deploy windows", `
A deploy window says when a target may start deploying: days of the week or
calendar dates, hours in a time zone. A window belongs to the tenant, to an
application (--application) or to a target name (--target); every window that
applies to a target must be open for it to start. Outside them a start waits
until they open (mode queue) or is refused (mode refuse); a window without a
mode leaves it to the deployment file (deploymentConfig.outsideDeployWindow,
default queue).
Windows apply to deployments started after the change. Setting and deleting
needs the tenant-admin or organization-admin role.`,
		newWindowsSetCmd(ios), newWindowsListCmd(ios), newWindowsDeleteCmd(ios))
}

// scopeFlags choose the scope of a window or a freeze.
type scopeFlags struct {
	Application, Target string
}

func (s *scopeFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.Application, "application", "", "for this application only")
	cmd.Flags().StringVar(&s.Target, "target", "", "for targets of this name only (in every application)")
	cmd.MarkFlagsMutuallyExclusive("application", "target")
}

func (s scopeFlags) scope() string {
	switch {
	case s.Application != "":
		return pipeline.ApplicationScope(s.Application)
	case s.Target != "":
		return pipeline.TargetScope(s.Target)
	}
	return pipeline.ScopeTenant
}
