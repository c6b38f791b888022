package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/store"
)

// DeployLogsOptions are the inputs of `sortie deploy logs`.
type DeployLogsOptions struct {
	Conn   connOptions
	ID     string
	Follow bool
	Output string
}

func newDeployLogsCmd(ios IOStreams) *cobra.Command {
	opts := DeployLogsOptions{}
	cmd := &cobra.Command{
		Use:   "logs ID",
		Short: "Show a deployment's event history; -f follows it live",
		Long: strings.TrimSpace(`
Print a deployment's recorded events: every status change of the pipeline,
its targets and steps, every action, every command's result, every
judgment of an analysis (one line each) and every webhook call (the request
as sent, secret values masked).
With -f the live stream is followed until the deployment ends (Ctrl-C stops
following; the deployment goes on).

-o json prints {"events": [...]}; with -f, one event object per line.`),
		Example: "  sortie deploy logs 01JD3X5R8Q4W2E0M6K9T7N5B3C -f",
		Args:    exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			return runDeployLogs(cmd.Context(), ios, opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "follow the live stream until the deployment ends")
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runDeployLogs(ctx context.Context, ios IOStreams, opts DeployLogsOptions) error {
	if opts.Follow && opts.Output == "yaml" {
		return usageErrorf("-f prints one JSON object per event: use -o text or -o json")
	}
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	v, err := c.GetPipeline(ctx, opts.ID)
	if err != nil {
		return aboutDeployment(opts.ID, err)
	}
	if !opts.Follow {
		evs, err := c.Events(ctx, opts.ID, 0)
		if err != nil {
			return err
		}
		if evs == nil {
			evs = []store.Event{}
		}
		return writeData(ios.Out, opts.Output, api.EventList{Events: evs}, func(w io.Writer) error {
			for _, ev := range evs {
				fmt.Fprintln(w, eventLine(ev, v))
			}
			return nil
		})
	}
	enc := json.NewEncoder(ios.Out)
	enc.SetEscapeHTML(false)
	err = c.FollowPipeline(ctx, opts.ID, 0, client.FollowOptions{}, func(ev store.Event) error {
		if opts.Output == "json" {
			if err := enc.Encode(ev); err != nil {
				return err
			}
		} else {
			fmt.Fprintln(ios.Out, eventLine(ev, v))
		}
		if ev.Type == "status" && pipelineEnded(ev) {
			return client.ErrStop
		}
		return nil
	})
	if err != nil && ctx.Err() != nil {
		fmt.Fprintf(ios.ErrOut, "Stopped following; deployment %s goes on.\n", opts.ID)
		return nil
	}
	return err
}
