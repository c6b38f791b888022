package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/api"
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
		Use:   "status ID",
		Short: "Show a deployment: its targets, steps, gates and history",
		Long: strings.TrimSpace(`
Show a deployment as the server keeps it: its status, each target with its
steps, weights and the gates it waits for (and who may approve them), and
every action taken with who took it.

-o json prints the API's pipeline object (see docs/cli.md).`),
		Example: "  sortie deploy status 01JD3X5R8Q4W2E0M6K9T7N5B3C -o json",
		Args:    exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			return runDeployStatus(cmd.Context(), ios, opts)
		},
	}
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
		writePipelineText(w, v)
		return nil
	})
}

// writePipelineText is the compact view, then every target's steps and the
// history.
func writePipelineText(w io.Writer, v *api.PipelineView) {
	writeCompactView(w, v)
	fmt.Fprintf(w, "\nStarted by %s at %s", firstOf(v.StartedBy, "?"), fmtTime(v.CreatedAt))
	if !v.EndedAt.IsZero() {
		fmt.Fprintf(w, ", ended at %s", fmtTime(v.EndedAt))
	}
	fmt.Fprintln(w, ".")
	for _, t := range v.Targets {
		fmt.Fprintf(w, "\nTarget %s (account %s, namespace %s", t.Name, t.Account, t.Namespace)
		if t.Strategy != "" {
			fmt.Fprintf(w, ", strategy %s", t.Strategy)
		}
		if len(t.DependsOn) > 0 {
			fmt.Fprintf(w, ", after %s", strings.Join(t.DependsOn, ", "))
		}
		fmt.Fprintf(w, "): %s%s\n", t.Status, suffix(" — ", t.Message))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
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
	}
	if len(v.History) > 0 {
		fmt.Fprintln(w, "\nHistory:")
		for _, r := range v.History {
			where := strings.TrimSpace(r.Target + " " + r.Step)
			fmt.Fprintf(w, "  %s  %s by %s%s%s\n", fmtTime(r.At), r.Action, firstOf(r.By, "?"), suffix(" on ", where), suffix(": ", r.Message))
		}
	}
}
