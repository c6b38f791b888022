package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/store"
)

// NotificationsDeliveriesOptions are the inputs of `sortie notifications deliveries`.
type NotificationsDeliveriesOptions struct {
	Conn         connOptions
	Subscription string
	Limit        int
	Output       string
}

func newNotificationsDeliveriesCmd(ios IOStreams) *cobra.Command {
	opts := NotificationsDeliveriesOptions{}
	cmd := &cobra.Command{
		Use:     "deliveries [--subscription ID] [--limit N]",
		Short:   "Recent deliveries, newest first: sent, pending a retry, or failed and why",
		Example: "  sortie notifications deliveries --subscription ops --limit 20",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runNotificationsDeliveries(cmd.Context(), ios, opts)
		},
	}
	cmd.Flags().StringVar(&opts.Subscription, "subscription", "", "only this subscription's")
	cmd.Flags().IntVar(&opts.Limit, "limit", 0, "at most this many (default 100)")
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runNotificationsDeliveries(ctx context.Context, ios IOStreams, opts NotificationsDeliveriesOptions) error {
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	list, err := c.ListDeliveries(ctx, opts.Subscription, opts.Limit)
	if err != nil {
		return err
	}
	if list == nil {
		list = []store.OutboxMessage{}
	}
	return writeData(ios.Out, opts.Output, api.DeliveryList{Deliveries: list}, func(w io.Writer) error {
		if len(list) == 0 {
			_, err := fmt.Fprintln(w, "No deliveries.")
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSUBSCRIPTION\tEVENT\tPIPELINE\tSTATUS\tATTEMPTS\tUPDATED\tLAST ERROR")
		for _, d := range list {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Subscription, d.Kind, firstOf(d.Pipeline, "-"), d.Status,
				d.Attempts, fmtTime(d.UpdatedAt), firstOf(d.LastError, "-"))
		}
		return tw.Flush()
	})
}
