package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/progress"
	"github.com/sortie-cd/sortie/store"
)

// DeployWatchOptions are the inputs of `sortie deploy watch`.
type DeployWatchOptions struct {
	Conn   connOptions
	ID     string
	Output string
}

func newDeployWatchCmd(ios IOStreams) *cobra.Command {
	opts := DeployWatchOptions{}
	cmd := &cobra.Command{
		Use:   "watch ID",
		Short: "Follow a deployment live until it ends",
		Long: strings.TrimSpace(`
Follow a deployment's live event stream until it ends. On a terminal the
view is redrawn in place: one line per target with its status, current step,
requested/achieved weight, and the gate it waits for with who may approve
it, and the latest judgment of a running analysis. Otherwise one line is
printed per change, per judgment of an analysis and per webhook call.

Ctrl-C stops watching and leaves the deployment running (exit 0). When the
deployment ends, exits 0 if it SUCCEEDED and 1 otherwise. With -o json or
yaml the live view goes to standard error and the final pipeline (as
'sortie deploy status' prints it) to standard output.`),
		Example: "  sortie deploy watch 01JD3X5R8Q4W2E0M6K9T7N5B3C",
		Args:    exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			return runDeployWatch(cmd.Context(), ios, opts)
		},
	}
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runDeployWatch(ctx context.Context, ios IOStreams, opts DeployWatchOptions) error {
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	live := ios.Out
	if opts.Output != "text" {
		live = ios.ErrOut
	}
	final, err := watchPipeline(ctx, ios, c, opts.ID, live)
	if err != nil {
		return err
	}
	if final == nil {
		return nil // interrupted: the note is printed
	}
	if err := writeData(ios.Out, opts.Output, final, func(io.Writer) error { return nil }); err != nil {
		return err
	}
	return finalOutcome(ios, final)
}

// finalOutcome is the exit of a watched deployment: nil when it
// SUCCEEDED, else a failure whose message says how it ended.
func finalOutcome(ios IOStreams, v *api.PipelineView) error {
	if v.Status == pipeline.StatusSucceeded {
		return nil
	}
	msg := fmt.Sprintf("deployment %s ended %s", v.ID, v.Status)
	if v.Message != "" {
		msg += ": " + v.Message
	}
	fmt.Fprintln(ios.ErrOut, msg)
	return &ExitError{Code: ExitFailure, Err: errors.New(msg), Silent: true}
}

// watchPipeline follows a pipeline's event stream, writing the live view to
// out, until the pipeline ends; it returns the final pipeline. When ctx ends
// first (Ctrl-C) it prints a note and returns nil, nil: the deployment goes
// on.
func watchPipeline(ctx context.Context, ios IOStreams, c *client.Client, id string, out io.Writer) (*api.PipelineView, error) {
	v, err := c.GetPipeline(ctx, id)
	if err != nil {
		return nil, aboutDeployment(id, err)
	}
	w := &watcher{out: out, redraw: ios.IsTerminal && out == ios.Out, view: v}
	if w.redraw {
		w.draw(v)
	}
	// One line per change replays the history even of an ended pipeline
	// (the stream's replay ends with the final change); the redrawn view
	// only needs the stream while the pipeline runs.
	if !w.redraw || !v.Status.Terminal() {
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		events := make(chan store.Event, 64)
		errc := make(chan error, 1)
		go func() {
			defer close(events)
			errc <- c.FollowPipeline(sctx, id, 0, client.FollowOptions{}, func(ev store.Event) error {
				select {
				case events <- ev:
				case <-sctx.Done():
					return sctx.Err()
				}
				if ev.Type == "status" && pipelineEnded(ev) {
					return client.ErrStop
				}
				return nil
			})
		}()
		for ev := range events {
			if !w.redraw {
				if !quietEvent(ev) {
					fmt.Fprintln(out, eventLine(ev, v))
				}
				continue
			}
			w.note(ev)
		drain:
			for {
				select {
				case ev, ok := <-events:
					if !ok {
						break drain
					}
					w.note(ev)
				default:
					break drain
				}
			}
			if nv, err := c.GetPipeline(ctx, id); err == nil {
				w.draw(nv)
			}
		}
		if err := <-errc; err != nil {
			if ctx.Err() != nil {
				fmt.Fprintf(ios.ErrOut, "Stopped watching; deployment %s goes on. Follow it again with 'sortie deploy watch %s'.\n", id, id)
				return nil, nil
			}
			return nil, err
		}
	}
	final, err := c.GetPipeline(ctx, id)
	if err != nil {
		return nil, err
	}
	if w.redraw {
		w.draw(final)
	} else {
		fmt.Fprintf(out, "Deployment %s ended %s%s\n", final.ID, final.Status, suffix(": ", final.Message))
	}
	return final, nil
}

// pipelineEnded reports whether a status event ends the pipeline.
func pipelineEnded(ev store.Event) bool {
	var ch pipeline.Change
	return json.Unmarshal(ev.Data, &ch) == nil && ch.Target == "" && ch.To.Terminal()
}

// watcher redraws the compact view on a terminal.
type watcher struct {
	out    io.Writer
	redraw bool
	view   *api.PipelineView
	drawn  int
	// judged is the latest judgment of each analysis step ("target step").
	judged map[string]progress.JudgmentEvent
}

// note keeps what the view shows of an event besides the pipeline: the
// latest judgment of each analysis step.
func (w *watcher) note(ev store.Event) {
	var j progress.JudgmentEvent
	if ev.Type != progress.EventJudgment || json.Unmarshal(ev.Data, &j) != nil {
		return
	}
	if w.judged == nil {
		w.judged = map[string]progress.JudgmentEvent{}
	}
	w.judged[j.Target+" "+j.Step] = j
}

func (w *watcher) draw(v *api.PipelineView) {
	var b bytes.Buffer
	writeCompactView(&b, v)
	for _, t := range v.Targets {
		s := currentStep(t.TargetState)
		if s == nil || s.Kind != pipeline.KindAnalysis || !s.Status.Active() {
			continue
		}
		if j, ok := w.judged[t.Name+" "+s.ID]; ok {
			fmt.Fprintf(&b, "  %s %s: %s\n", t.Name, s.ID, judgmentVerdict(j))
		}
	}
	if w.drawn > 0 {
		fmt.Fprintf(w.out, "\x1b[%dA\x1b[J", w.drawn) // up, clear to the end
	}
	w.out.Write(b.Bytes())
	w.drawn = bytes.Count(b.Bytes(), []byte("\n"))
}

// writeCompactView writes a pipeline's header and one line per target:
// status, current step, requested/achieved weight, what it waits for.
func writeCompactView(w io.Writer, v *api.PipelineView) {
	fmt.Fprintf(w, "Deployment %s of %s: %s%s\n", v.ID, v.Application, v.Status, suffix(" — ", v.Message))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  TARGET\tSTATUS\tSTEP\tWEIGHT\tWAITING FOR")
	for _, t := range v.Targets {
		step := currentStep(t.TargetState)
		stepText, waiting := "-", ""
		if step != nil {
			stepText = step.ID
			if step.ID != string(step.Kind) {
				stepText += " " + string(step.Kind)
			}
			waiting = waitingFor(v, t.Name, step)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d%% (achieved %d%%)\t%s\n", t.Name, t.Status, stepText, t.RequestedWeight, t.AchievedWeight, firstOf(waiting, "-"))
	}
	tw.Flush()
}

// currentStep is the rollback when one runs, else the first step in
// progress, else the last one that ended.
func currentStep(t pipeline.TargetState) *pipeline.StepState {
	if t.Rollback != nil {
		return t.Rollback
	}
	var last *pipeline.StepState
	for i := range t.Steps {
		s := &t.Steps[i]
		if s.Status.Active() {
			return s
		}
		if s.Status != pipeline.StatusQueued {
			last = s
		}
	}
	return last
}

// waitingFor says what a step waits for: an approval (and who may give
// it) or the end of a timed pause.
func waitingFor(v *api.PipelineView, target string, s *pipeline.StepState) string {
	switch {
	case s.Status == pipeline.StatusAwaitingApproval && s.Kind == pipeline.KindAnalysis:
		// A failed or inconclusive analysis waits for either decision.
		return "a decision by " + approvers(v, target, s.ID) + fmt.Sprintf(": sortie deploy approve %s --target %s --step %s, or sortie deploy rollback %s --target %s", v.ID, target, s.ID, v.ID, target)
	case s.Status == pipeline.StatusAwaitingApproval:
		return "approval by " + approvers(v, target, s.ID) + fmt.Sprintf(": sortie deploy approve %s --target %s --step %s", v.ID, target, s.ID)
	case s.Status == pipeline.StatusPaused && !s.Deadline.IsZero():
		return "pause until " + s.Deadline.Local().Format("15:04:05") + fmt.Sprintf(" (skip: sortie deploy skip %s --target %s)", v.ID, target)
	case s.Status == pipeline.StatusRunning && s.Kind == pipeline.KindRunWebhook && s.Called:
		return "webhook callback"
	}
	return ""
}

// approvers names who may approve a step: the roles its pause requires
// (admins always may), or anyone allowed to deploy.
func approvers(v *api.PipelineView, target, stepID string) string {
	roles := requiredRoles(&v.Spec, target, stepID)
	if len(roles) == 0 {
		return "a deployer or admin"
	}
	return "role " + strings.Join(roles, " or ") + " (or an admin)"
}

// requiredRoles finds a step's pause in the spec by its id (group/index).
func requiredRoles(spec *pipeline.Spec, target, stepID string) []string {
	group, idx, ok := strings.Cut(stepID, "/")
	if !ok {
		return nil
	}
	i, err := strconv.Atoi(idx)
	if err != nil || i < 0 {
		return nil
	}
	sp := spec.StepOf(target, pipeline.StepState{Group: group, Index: i})
	if sp == nil || sp.Pause == nil {
		return nil
	}
	return sp.Pause.RequiresRoles
}

// eventLine is one event as a line: time, what changed, and for a gate
// that now waits, who may approve it and how.
func eventLine(ev store.Event, v *api.PipelineView) string {
	at := ev.At.Local().Format("15:04:05")
	switch ev.Type {
	case "status":
		var ch pipeline.Change
		if json.Unmarshal(ev.Data, &ch) != nil {
			break
		}
		subject := "pipeline"
		switch {
		case ch.Step != "":
			subject = ch.Target + " " + ch.Step
		case ch.Target != "":
			subject = "target " + ch.Target
		}
		from := string(ch.From)
		if from == "" {
			from = "-"
		}
		line := fmt.Sprintf("%s  %-28s %s -> %s%s", at, subject, from, ch.To, suffix(": ", ch.Message))
		if ch.To == pipeline.StatusAwaitingApproval && ch.Step != "" && v != nil {
			line += fmt.Sprintf("  -> sortie deploy approve %s --target %s --step %s (may approve: %s)", v.ID, ch.Target, ch.Step, approvers(v, ch.Target, ch.Step))
		}
		return line
	case "action":
		var r pipeline.Record
		if json.Unmarshal(ev.Data, &r) != nil {
			break
		}
		where := strings.TrimSpace(r.Target + " " + r.Step)
		return fmt.Sprintf("%s  %-28s %s by %s%s", at, firstOf(where, "pipeline"), r.Action, firstOf(r.By, "?"), suffix(": ", r.Message))
	case "command":
		var r pipeline.CommandResult
		if json.Unmarshal(ev.Data, &r) != nil {
			break
		}
		subject := r.CommandID
		if v != nil {
			// Command ids are pipeline/target/step.
			subject = strings.Replace(strings.TrimPrefix(subject, v.ID+"/"), "/", " ", 1)
		}
		switch {
		case r.Inconclusive:
			return fmt.Sprintf("%s  %-28s analysis inconclusive%s", at, subject, suffix(": ", r.Message))
		case !r.Success:
			return fmt.Sprintf("%s  %-28s command failed%s", at, subject, suffix(": ", r.Message))
		}
		return fmt.Sprintf("%s  %-28s command done%s", at, subject, weightNote(r.AchievedWeight))
	case progress.EventJudgment:
		var j progress.JudgmentEvent
		if json.Unmarshal(ev.Data, &j) != nil {
			break
		}
		return fmt.Sprintf("%s  %-28s judgment %s", at, j.Target+" "+j.Step, judgmentText(j))
	case progress.EventRetry:
		var r progress.RetryEvent
		if json.Unmarshal(ev.Data, &r) != nil {
			break
		}
		return fmt.Sprintf("%s  %-28s %s", at, r.Target+" "+r.Step, r.Message)
	case progress.EventWebhook:
		var wh progress.WebhookEvent
		if json.Unmarshal(ev.Data, &wh) != nil {
			break
		}
		return fmt.Sprintf("%s  %-28s %s", at, wh.Target+" "+wh.Step, webhookText(wh))
	}
	return fmt.Sprintf("%s  %s %s", at, ev.Type, ev.Data)
}

// quietEvent reports whether a live view leaves an event out: a command
// that succeeded without news (a weight reached is news).
func quietEvent(ev store.Event) bool {
	if ev.Type != "command" {
		return false
	}
	var r struct {
		Success        bool
		AchievedWeight int
	}
	return json.Unmarshal(ev.Data, &r) == nil && r.Success && r.AchievedWeight == 0
}

func weightNote(w int) string {
	if w <= 0 {
		return ""
	}
	return fmt.Sprintf(" (achieved weight %d%%)", w)
}

func suffix(sep, s string) string {
	if s == "" {
		return ""
	}
	return sep + s
}

// exactArgs wants n positional arguments, named in the usage error.
func exactArgs(n int, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s takes %s, got %d argument(s)", cmd.CommandPath(), strings.Join(names, " "), len(args))
		}
		return nil
	}
}
