package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/store"
)

// NotificationsTestOptions are the inputs of `sortie notifications test`.
type NotificationsTestOptions struct {
	Conn   connOptions
	ID     string
	Output string
}

func newNotificationsTestCmd(ios IOStreams) *cobra.Command {
	opts := NotificationsTestOptions{}
	cmd := &cobra.Command{
		Use:     "test ID",
		Short:   "Send a sample message to a subscription's sink now",
		Long:    "Send a sample message to a subscription's sink once, now, and say how it went. It is recorded with the deliveries. Exits 1 when the sink refused it.",
		Example: "  sortie notifications test ops",
		Args:    exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			return runNotificationsTest(cmd.Context(), ios, opts)
		},
	}
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runNotificationsTest(ctx context.Context, ios IOStreams, opts NotificationsTestOptions) error {
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	rec, err := c.TestSubscription(ctx, opts.ID)
	if err != nil {
		return notFoundSubscription(err, opts.ID)
	}
	if err := writeData(ios.Out, opts.Output, rec, func(w io.Writer) error {
		if rec.Status == store.OutboxSent {
			_, err := fmt.Fprintf(w, "Sent a test message to %s.\n", opts.ID)
			return err
		}
		return nil
	}); err != nil {
		return err
	}
	if rec.Status != store.OutboxSent {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("the test message to %s failed: %s", opts.ID, rec.LastError)}
	}
	return nil
}
