package cli

import (
	"encoding/json"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/sortie-cd/sortie/deployfile"
)

// DeployPlanOptions are the inputs of `sortie deploy plan`.
type DeployPlanOptions struct {
	File   string
	Output string
	// Application is what deploy start -n would give.
	Application string
}

func newDeployPlanCmd(ios IOStreams) *cobra.Command {
	opts := DeployPlanOptions{}
	cmd := &cobra.Command{
		Use:   "plan -f FILE",
		Short: "Show what a deployment of a file would do, offline",
		Long: strings.TrimSpace(`
Show what 'sortie deploy start' would do with a deployment file, without a
server: the targets in waves (a wave starts when the one before succeeded),
the gates before and after each target, and the strategy's steps with the
pods each weight gives: ceil(replicas × weight / 100), at least 1 for a
weight above 0. The first deployment of an application to a target goes
straight to 100%.

The file is validated first; an invalid file prints its errors and exits 1.`),
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error { return runDeployPlan(ios, opts) },
	}
	cmd.Flags().StringVarP(&opts.File, "file", "f", "", "the deployment file")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text, json or yaml")
	cmd.Flags().StringVarP(&opts.Application, "application", "n", "", "the application name, as deploy start -n gives it (the file then need not have one)")
	return cmd
}

func runDeployPlan(ios IOStreams, opts DeployPlanOptions) error {
	switch opts.Output {
	case "text", "json", "yaml":
	default:
		return usageErrorf("--output must be text, json or yaml, not %q", opts.Output)
	}
	res, err := loadDeployFile(opts.File, deployfile.Options{Application: opts.Application})
	if err != nil {
		return err
	}
	if err := reportProblems(ios, res); err != nil {
		return err
	}
	plan := deployfile.NewPlan(res.File)
	switch opts.Output {
	case "json":
		enc := json.NewEncoder(ios.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(plan)
	case "yaml":
		enc := yaml.NewEncoder(ios.Out)
		enc.SetIndent(2)
		if err := enc.Encode(plan); err != nil {
			return err
		}
		return enc.Close()
	}
	return plan.WriteText(ios.Out)
}
