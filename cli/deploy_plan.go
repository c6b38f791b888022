package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/sortie-cd/sortie/deployfile"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
)

// DeployPlanOptions are the inputs of `sortie deploy plan`.
type DeployPlanOptions struct {
	Conn   connOptions
	File   string
	Output string
	// Remote asks the server for the deploy windows and freezes that apply.
	Remote bool
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

The file's own deploy windows are shown; with --remote, the plan also asks
the server (as 'sortie login' saved it, or --server) for the windows admins
set and the freezes in force that apply.

The file is validated first; an invalid file prints its errors and exits 1.`),
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDeployPlan(cmd.Context(), ios, opts) },
	}
	cmd.Flags().BoolVar(&opts.Remote, "remote", false, "also show the deploy windows and freezes the server applies (needs a login)")
	opts.Conn.bind(cmd)
	cmd.Flags().StringVarP(&opts.File, "file", "f", "", "the deployment file")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text, json or yaml")
	cmd.Flags().StringVarP(&opts.Application, "application", "n", "", "the application name, as deploy start -n gives it (the file then need not have one)")
	return cmd
}

func runDeployPlan(ctx context.Context, ios IOStreams, opts DeployPlanOptions) error {
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
	eachTarget(plan, func(t *deployfile.TargetPlan) {
		if ft := res.File.Targets.Get(t.Name); ft != nil && ft.Constraints != nil {
			for _, w := range ft.Constraints.DeployWindows {
				t.Windows = append(t.Windows, windowText(runner.FileWindow(t.Name, w)))
			}
		}
	})
	if opts.Remote {
		if err := addControls(ctx, ios, opts.Conn, plan); err != nil {
			return err
		}
	}
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

// addControls adds to each target of plan the windows admins set and the
// freezes in force that apply to it, as the server reports them.
func addControls(ctx context.Context, ios IOStreams, conn connOptions, plan *deployfile.Plan) error {
	c, err := newAPIClient(ios, conn)
	if err != nil {
		return err
	}
	var targets []string
	eachTarget(plan, func(t *deployfile.TargetPlan) { targets = append(targets, t.Name) })
	v, err := c.Controls(ctx, plan.Application, targets)
	if err != nil {
		return fmt.Errorf("ask the server for deploy windows and freezes: %w", err)
	}
	eachTarget(plan, func(t *deployfile.TargetPlan) {
		for _, w := range v.Windows {
			if len(w.Targets) == 0 || slices.Contains(w.Targets, t.Name) {
				t.Windows = append(t.Windows, windowText(w))
			}
		}
		for _, f := range v.Freezes {
			if len(f.Targets) == 0 || slices.Contains(f.Targets, t.Name) {
				t.Freezes = append(t.Freezes, f.String())
			}
		}
	})
	return nil
}

func eachTarget(plan *deployfile.Plan, f func(*deployfile.TargetPlan)) {
	for i := range plan.Waves {
		for j := range plan.Waves[i].Targets {
			f(&plan.Waves[i].Targets[j])
		}
	}
}

func windowText(w pipeline.Window) string {
	if w.Mode == pipeline.WindowRefuse {
		return w.String() + "; a start outside it is refused"
	}
	return w.String()
}
