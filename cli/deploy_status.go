package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/progress"
)

// DeployStatusOptions are the inputs of `sortie deploy status`.
type DeployStatusOptions struct {
	Conn   connOptions
	ID     string
	Output string
}

func newDeployStatusCmd(ios IOStreams) *cobra.Command {
	opts := DeployStatusOptions{}
	cmd := &cobra.Command{
		Use:   "status ID | -i ID",
		Short: "Show a deployment: its targets, steps, gates and history",
		Long: strings.TrimSpace(`
Show a deployment as the server keeps it: its status, each target with its
steps, weights and the gates it waits for (and who may approve them), under
each analysis step its judgment runs (run n/N, the query as sent, its value,
the limits, the verdict), and every action taken with who took it.

-o json prints the API's pipeline object (see docs/cli.md).`),
		Example: "  sortie deploy status 01JD3X5R8Q4W2E0M6K9T7N5B3C -o json",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && opts.ID == "" || len(args) == 0 && opts.ID != "" {
				return nil
			}
			return usageErrorf("%s takes the deployment's ID, as an argument or with -i (Armory's --deploymentId)", cmd.CommandPath())
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.ID = args[0]
			}
			return runDeployStatus(cmd.Context(), ios, opts)
		},
	}
	cmd.Flags().StringVarP(&opts.ID, "deployment-id", "i", "", "the deployment's ID (Armory's -i/--deploymentId)")
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runDeployStatus(ctx context.Context, ios IOStreams, opts DeployStatusOptions) error {
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	v, err := c.GetPipeline(ctx, opts.ID)
	if err != nil {
		return aboutDeployment(opts.ID, err)
	}
	return writeData(ios.Out, opts.Output, v, func(w io.Writer) error {
		if globals.Armory {
			writeArmoryStatus(w, v)
			return nil
		}
		var judgments map[string][]progress.JudgmentEvent
		if analysed(v) {
			evs, err := c.Events(ctx, opts.ID, 0)
			if err != nil {
				return err
			}
			judgments = judgmentsByStep(evs)
		}
		writePipelineText(w, v, judgments)
		return nil
	})
}

// analysed reports whether an analysis step of v has started, so that it
// may have judgments to show.
func analysed(v *api.PipelineView) bool {
	for _, t := range v.Targets {
		for _, s := range t.Steps {
			if s.Kind == pipeline.KindAnalysis && s.Status != pipeline.StatusQueued {
				return true
			}
		}
	}
	return false
}

// writePipelineText is the compact view, then every target's steps, each
// analysis step followed by its judgments (keyed "target step"), and the
// history.
func writePipelineText(w io.Writer, v *api.PipelineView, judgments map[string][]progress.JudgmentEvent) {
	writeCompactView(w, v)
	fmt.Fprintf(w, "\nStarted by %s at %s", firstOf(v.StartedBy, "?"), fmtTime(v.CreatedAt))
	if !v.EndedAt.IsZero() {
		fmt.Fprintf(w, ", ended at %s", fmtTime(v.EndedAt))
	}
	fmt.Fprintln(w, ".")
	if v.Commit != nil {
		fmt.Fprintf(w, "Commit: %s\n", commitText(v.Commit))
	}
	for _, t := range v.Targets {
		fmt.Fprintf(w, "\nTarget %s (account %s, namespace %s", t.Name, t.Account, t.Namespace)
		if t.Strategy != "" {
			fmt.Fprintf(w, ", strategy %s", t.Strategy)
		}
		if len(t.DependsOn) > 0 {
			fmt.Fprintf(w, ", after %s", strings.Join(t.DependsOn, ", "))
		}
		fmt.Fprintf(w, "): %s%s\n", t.Status, suffix(" — ", t.Message))
		if t.Held != "" {
			fmt.Fprintf(w, "Held: %s\n", t.Held)
		}
		// Steps are aligned as a table; judgment lines go between its rows
		// afterwards, so they do not widen its columns.
		var rows bytes.Buffer
		tw := tabwriter.NewWriter(&rows, 0, 0, 2, ' ', 0)
		steps := t.Steps
		if t.Rollback != nil {
			steps = append(steps[:len(steps):len(steps)], *t.Rollback)
		}
		for i := range steps {
			s := &steps[i]
			note := s.Message
			if s.By != "" && !strings.Contains(note, s.By) {
				note = strings.TrimSpace(note + " (by " + s.By + ")")
			}
			if w := waitingFor(v, t.Name, s); w != "" {
				note = strings.TrimSpace(note + " — " + w)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", s.ID, s.Kind, s.Status, note)
		}
		tw.Flush()
		for i, row := range strings.Split(strings.TrimSuffix(rows.String(), "\n"), "\n") {
			if i >= len(steps) {
				break
			}
			fmt.Fprintln(w, row)
			for _, j := range judgments[t.Name+" "+steps[i].ID] {
				fmt.Fprintf(w, "      %s\n", judgmentText(j))
			}
		}
	}
	if len(v.History) > 0 {
		fmt.Fprintln(w, "\nHistory:")
		for _, r := range v.History {
			where := strings.TrimSpace(r.Target + " " + r.Step)
			fmt.Fprintf(w, "  %s  %s by %s%s%s\n", fmtTime(r.At), r.Action, firstOf(r.By, "?"), suffix(" on ", where), suffix(": ", r.Message))
		}
	}
}
