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
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErrorf("deploy needs a subcommand, e.g. 'sortie deploy plan -f FILE'")
		},
	}
	cmd.AddCommand(newDeployPlanCmd(ios))
	return cmd
}
