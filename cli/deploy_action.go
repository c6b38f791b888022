package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/pipeline"
)

// DeployActionOptions are the inputs of `sortie deploy approve`, `skip`,
// `rollback` and `cancel`: one shape, since they differ only in which of
// target, step and reason they take.
type DeployActionOptions struct {
	Conn   connOptions
	Action string
	ID     string
	Target string
	Step   string
	Reason string
	// To, for rollback, is an earlier pipeline whose version to go back to.
	To     string
	Output string
}

// deployAction describes one action verb.
type deployAction struct {
	name, short, long, example string
	done                       string // "Approved", ...
	target, step, reason       bool   // which flags it takes
}

var deployActions = []deployAction{
	{
		name: client.ActionApprove, short: "Approve a gate a deployment waits at", done: "Approved",
		long: `Approve a gate awaiting approval: an untilApproved pause or a manual
analysis decision. --target and --step may be left out when only one
target (or step) waits. A pause with requiresRoles needs one of those roles
(admins always may), or to be named in its approvers; one with approvals: N
needs N different approvers; one with notByStarter refuses whoever started
the deployment.`,
		example: "  sortie deploy approve 01JD3X5R8Q4W2E0M6K9T7N5B3C --target production",
		target:  true, step: true,
	},
	{
		name: client.ActionReject, short: "Refuse a gate a deployment waits at, and roll its target back", done: "Rejected",
		long: `Refuse a gate awaiting approval, with a reason (required, recorded in the
history): the step fails and its target rolls back, as for a failed step.
Whoever may approve the gate may reject it.`,
		example: `  sortie deploy reject 01JD3X5R8Q4W2E0M6K9T7N5B3C --target production --reason "error budget spent"`,
		target:  true, step: true, reason: true,
	},
	{
		name: client.ActionSkip, short: "End a timed pause now", done: "Skipped",
		long:    `End a timed pause now. --target and --step may be left out when only one pause runs.`,
		example: "  sortie deploy skip 01JD3X5R8Q4W2E0M6K9T7N5B3C --target staging",
		target:  true, step: true,
	},
	{
		name: client.ActionRollback, short: "Roll a target back", done: "Rolling back",
		long: `Roll a running target back to the version before this deployment, and
cancel the targets that depend on it. --target may be left out when only one
target runs.

A target that already SUCCEEDED goes back too: a new deployment puts the
version it ran before this one back, straight (no strategy, no gates), as
fast as its pods become Ready; --reason is then required. With --to
PIPELINE_ID (and no ID), the targets (--target, or every target that
pipeline deployed) go back to the version that pipeline deployed, the same
way.`,
		example: `  sortie deploy rollback 01JD3X5R8Q4W2E0M6K9T7N5B3C --target production --reason "error rate"
  sortie deploy rollback --to 01JD2A0Q6Z1VKXBJ0M8T3M7W4D --target production --reason "back to last week's release"`,
		target: true, reason: true,
	},
	{
		name: client.ActionCancel, short: "Cancel a deployment", done: "Cancelling",
		long: `Cancel a deployment: targets not started are cancelled, running ones
rolled back. Other deployments are not touched.`,
		example: `  sortie deploy cancel 01JD3X5R8Q4W2E0M6K9T7N5B3C --reason "wrong image"`,
		reason:  true,
	},
}

func newDeployActionCmds(ios IOStreams) []*cobra.Command {
	var cmds []*cobra.Command
	for _, a := range deployActions {
		cmds = append(cmds, newDeployActionCmd(ios, a))
	}
	return cmds
}

func newDeployActionCmd(ios IOStreams, a deployAction) *cobra.Command {
	opts := DeployActionOptions{Action: a.name}
	cmd := &cobra.Command{
		Use:     a.name + " ID",
		Short:   a.short,
		Long:    a.long + "\n\nPrints the deployment after the action (-o json: as 'sortie deploy status').",
		Example: a.example,
		Args:    exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				opts.ID = args[0]
			}
			return runDeployAction(cmd.Context(), ios, a, opts)
		},
	}
	f := cmd.Flags()
	if a.name == client.ActionRollback {
		cmd.Use = a.name + " ID | --to PIPELINE_ID"
		cmd.Args = func(cmd *cobra.Command, args []string) error {
			if opts.To != "" {
				return exactArgs(0)(cmd, args)
			}
			return exactArgs(1, "ID")(cmd, args)
		}
		f.StringVar(&opts.To, "to", "", "an earlier deployment whose version the targets go back to")
	}
	if a.target {
		f.StringVar(&opts.Target, "target", "", "the target")
	}
	if a.step {
		f.StringVar(&opts.Step, "step", "", "the step id, such as canary/1")
	}
	if a.reason {
		f.StringVar(&opts.Reason, "reason", "", "why, recorded in the history")
	}
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runDeployAction(ctx context.Context, ios IOStreams, a deployAction, opts DeployActionOptions) error {
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	if opts.Action == client.ActionRollback {
		if to, restore, err := restoreOf(ctx, c, opts); err != nil || restore {
			if err != nil {
				return err
			}
			return runRestore(ctx, ios, c, opts, to)
		}
	}
	if opts.Action == client.ActionRollback && opts.Target == "" {
		// The engine wants the target named; the help promises that one
		// running target need not be.
		if opts.Target, err = onlyRunningTarget(ctx, c, opts.ID); err != nil {
			return err
		}
	}
	v, err := c.Act(ctx, opts.ID, opts.Action, api.ActionRequest{Target: opts.Target, Step: opts.Step, Reason: opts.Reason})
	if err != nil {
		return aboutDeployment(opts.ID, err)
	}
	return writeData(ios.Out, opts.Output, v, func(w io.Writer) error {
		what := "deployment " + v.ID
		if opts.Target != "" {
			what += " target " + opts.Target
		}
		if opts.Step != "" {
			what += " step " + opts.Step
		}
		_, err := fmt.Fprintf(w, "%s %s; the deployment is %s.\n", a.done, strings.TrimSpace(what), v.Status)
		return err
	})
}

// restoreOf tells whether a rollback is a return to an earlier version
// (--to, or a target that already SUCCEEDED), and from which pipeline.
func restoreOf(ctx context.Context, c *client.Client, opts DeployActionOptions) (string, bool, error) {
	if opts.To != "" {
		return opts.To, true, nil
	}
	if opts.Target == "" {
		return "", false, nil
	}
	v, err := c.GetPipeline(ctx, opts.ID)
	if err != nil {
		return "", false, aboutDeployment(opts.ID, err)
	}
	for _, t := range v.Targets {
		if t.Name == opts.Target && t.Status == pipeline.StatusSucceeded {
			return opts.ID, true, nil
		}
	}
	return "", false, nil
}

// runRestore starts the deployment that puts an earlier version back.
func runRestore(ctx context.Context, ios IOStreams, c *client.Client, opts DeployActionOptions, from string) error {
	if strings.TrimSpace(opts.Reason) == "" {
		return usageErrorf("going back to an earlier version needs --reason")
	}
	req := api.RestoreRequest{Reason: opts.Reason, Previous: opts.To == ""}
	if opts.Target != "" {
		req.Targets = []string{opts.Target}
	}
	res, err := c.Restore(ctx, from, req)
	if err != nil {
		return aboutDeployment(from, err)
	}
	return writeData(ios.Out, opts.Output, res, func(w io.Writer) error {
		what := "the version of deployment " + from
		if req.Previous {
			what = "the version before deployment " + from
		}
		_, err := fmt.Fprintf(w, "Rolling back to %s: deployment %s puts it back (sortie deploy watch %s).\n", what, res.PipelineID, res.PipelineID)
		return err
	})
}

// onlyRunningTarget names the one target of a deployment that is in
// progress, or says which to choose from.
func onlyRunningTarget(ctx context.Context, c *client.Client, id string) (string, error) {
	v, err := c.GetPipeline(ctx, id)
	if err != nil {
		return "", aboutDeployment(id, err)
	}
	var running []string
	for _, t := range v.Targets {
		if t.Status.Active() {
			running = append(running, t.Name)
		}
	}
	switch len(running) {
	case 1:
		return running[0], nil
	case 0:
		return "", fmt.Errorf("deployment %s has no target in progress to roll back (it is %s)", id, v.Status)
	}
	return "", usageErrorf("deployment %s has %d targets in progress (%s): choose one with --target", id, len(running), strings.Join(running, ", "))
}
