package cli

import (
	"strings"

	"github.com/spf13/cobra"
)

// newDeployCmd is the parent of the deployment verbs (plan, and later
// start, status, watch, ...).
func newDeployCmd(ios IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Plan and run deployments",
		Long: strings.TrimSpace(`
Plan and run deployments of a deployment file. 'sortie deploy plan' works
offline and shows what a deployment would do.`),
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var names []string
			for _, c := range cmd.Commands() {
				names = append(names, c.Name())
			}
			if len(args) > 0 {
				return usageErrorf("unknown deploy subcommand %q (subcommands: %s)", args[0], strings.Join(names, ", "))
			}
			return usageErrorf("deploy needs a subcommand (%s), e.g. 'sortie deploy plan -f FILE'", strings.Join(names, ", "))
		},
	}
	cmd.AddCommand(newDeployPlanCmd(ios), newDeployStartCmd(ios), newDeployStatusCmd(ios), newDeployListCmd(ios),
		newDeployWatchCmd(ios), newDeployLogsCmd(ios))
	cmd.AddCommand(newDeployActionCmds(ios)...)
	return cmd
}
