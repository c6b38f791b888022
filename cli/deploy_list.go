package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client"
)

// DeployListOptions are the inputs of `sortie deploy list`.
type DeployListOptions struct {
	Conn        connOptions
	Application string
	Statuses    []string
	Limit       int
	Output      string
}

func newDeployListCmd(ios IOStreams) *cobra.Command {
	opts := DeployListOptions{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List deployments, newest first",
		Long: strings.TrimSpace(`
List deployments of your tenant, newest first, optionally of one
application and in some statuses (QUEUED, RUNNING, PAUSED,
AWAITING_APPROVAL, SUCCEEDED, FAILED, CANCELLED; repeat --status or
separate with commas).`),
		Example: strings.TrimSpace(`
  sortie deploy list --application web --status AWAITING_APPROVAL
  sortie deploy list -o json`),
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDeployList(cmd.Context(), ios, opts) },
	}
	f := cmd.Flags()
	f.StringVar(&opts.Application, "application", "", "only this application's deployments")
	f.StringSliceVar(&opts.Statuses, "status", nil, "only deployments in these statuses")
	f.IntVar(&opts.Limit, "limit", 0, "at most this many (default: the server's, 100)")
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runDeployList(ctx context.Context, ios IOStreams, opts DeployListOptions) error {
	if opts.Limit < 0 {
		return usageErrorf("--limit must be 1 or more")
	}
	statuses := make([]string, len(opts.Statuses))
	for i, s := range opts.Statuses {
		statuses[i] = strings.ToUpper(strings.TrimSpace(s))
	}
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	ps, err := c.ListPipelines(ctx, client.ListOptions{Application: opts.Application, Statuses: statuses, Limit: opts.Limit})
	if err != nil {
		return err
	}
	if ps == nil {
		ps = []api.PipelineSummary{}
	}
	return writeData(ios.Out, opts.Output, api.PipelineList{Pipelines: ps}, func(w io.Writer) error {
		if len(ps) == 0 {
			_, err := fmt.Fprintln(w, "No deployments.")
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tAPPLICATION\tSTATUS\tCREATED\tBY\tTARGETS")
		for _, p := range ps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Application, p.Status, fmtTime(p.CreatedAt), p.StartedBy, targetsLine(p.Targets))
		}
		return tw.Flush()
	})
}
