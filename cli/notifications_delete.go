package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/client"
)

// NotificationsDeleteOptions are the inputs of `sortie notifications delete`.
type NotificationsDeleteOptions struct {
	Conn connOptions
	ID   string
}

func newNotificationsDeleteCmd(ios IOStreams) *cobra.Command {
	opts := NotificationsDeleteOptions{}
	cmd := &cobra.Command{
		Use:     "delete ID",
		Short:   "Delete a subscription (its deliveries stay recorded)",
		Example: "  sortie notifications delete ops",
		Args:    exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			return runNotificationsDelete(cmd.Context(), ios, opts)
		},
	}
	opts.Conn.bind(cmd)
	return cmd
}

func runNotificationsDelete(ctx context.Context, ios IOStreams, opts NotificationsDeleteOptions) error {
	c, err := newAPIClient(ios, opts.Conn)
	if err != nil {
		return err
	}
	if err := c.DeleteSubscription(ctx, opts.ID); err != nil {
		return notFoundSubscription(err, opts.ID)
	}
	_, err = fmt.Fprintf(ios.Out, "Deleted subscription %s.\n", opts.ID)
	return err
}

// notFoundSubscription says how to find the subscriptions when the server
// has no such id.
func notFoundSubscription(err error, id string) error {
	var ae *client.Error
	if errors.As(err, &ae) && ae.Status == 404 {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("no subscription %s in your tenant ('sortie notifications list' shows them): %w", id, err)}
	}
	return err
}
