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

// newAgentsCmd is the parent of the agent verbs.
func newAgentsCmd(ios IOStreams) *cobra.Command {
	return newGroupCmd("agents", "See the agents connected to the server", "", newAgentsListCmd(ios))
}

// AgentsListOptions are the inputs of `sortie agents list`.
type AgentsListOptions struct {
	Conn   connOptions
	Output string
}

func newAgentsListCmd(ios IOStreams) *cobra.Command {
	opts := AgentsListOptions{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the agents connected now",
		Long: strings.TrimSpace(`
List the agents connected to the server now, in your tenant: their
identifier (the account targets name), version, cluster version, when they
connected and their last heartbeat.`),
		Example: "  sortie agents list -o json",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runAgentsList(cmd.Context(), ios, opts) },
	}
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runAgentsList(ctx context.Context, ios IOStreams, opts AgentsListOptions) error {
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	agents, err := c.ListAgents(ctx)
	if err != nil {
		return err
	}
	if agents == nil {
		agents = []api.AgentView{}
	}
	return writeData(ios.Out, opts.Output, api.AgentList{Agents: agents}, func(w io.Writer) error {
		if len(agents) == 0 {
			_, err := fmt.Fprintln(w, "No agent is connected. Start one in a cluster with 'sortie agent'.")
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "AGENT\tVERSION\tCLUSTER\tCONNECTED\tLAST HEARTBEAT\tFROM\tCREDENTIAL")
		for _, a := range agents {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Version, firstOf(a.ClusterVersion, "-"), fmtTime(a.ConnectedAt), fmtTime(a.LastHeartbeat), a.RemoteAddress, firstOf(a.ClientID, "-"))
		}
		return tw.Flush()
	})
}
