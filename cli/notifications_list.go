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

// NotificationsListOptions are the inputs of `sortie notifications list`.
type NotificationsListOptions struct {
	Conn   connOptions
	Output string
}

func newNotificationsListCmd(ios IOStreams) *cobra.Command {
	opts := NotificationsListOptions{}
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List notification subscriptions (secrets by name only)",
		Example: "  sortie notifications list -o json",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runNotificationsList(cmd.Context(), ios, opts) },
	}
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runNotificationsList(ctx context.Context, ios IOStreams, opts NotificationsListOptions) error {
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	subs, err := c.ListSubscriptions(ctx)
	if err != nil {
		return err
	}
	if subs == nil {
		subs = []api.Subscription{}
	}
	return writeData(ios.Out, opts.Output, api.SubscriptionList{Subscriptions: subs}, func(w io.Writer) error {
		if len(subs) == 0 {
			_, err := fmt.Fprintln(w, "No subscriptions. Add one with 'sortie notifications add'.")
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tAPPLICATION\tTARGET\tEVENTS\tSINK\tSETTINGS")
		for _, s := range subs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, firstOf(s.Application, "*"), firstOf(s.Target, "*"),
				strings.Join(s.Events, ","), s.SinkType, string(s.Sink))
		}
		return tw.Flush()
	})
}
