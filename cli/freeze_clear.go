package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/client"
)

// FreezeClearOptions are the inputs of `sortie freeze clear`.
type FreezeClearOptions struct {
	Conn  connOptions
	Scope scopeFlags
}

func newFreezeClearCmd(ios IOStreams) *cobra.Command {
	opts := FreezeClearOptions{}
	cmd := &cobra.Command{
		Use:     "clear [--application APP | --target TARGET]",
		Short:   "Lift a freeze: held deployments go on",
		Example: "  sortie freeze clear --application web",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runFreezeClear(cmd.Context(), ios, opts) },
	}
	opts.Scope.bind(cmd)
	opts.Conn.bind(cmd)
	return cmd
}

func runFreezeClear(ctx context.Context, ios IOStreams, opts FreezeClearOptions) error {
	c, err := newAPIClient(ios, opts.Conn)
	if err != nil {
		return err
	}
	scope := opts.Scope.scope()
	if err := c.LiftFreeze(ctx, scope); err != nil {
		if ae, ok := errors.AsType[*client.Error](err); ok && ae.Status == 404 {
			return &ExitError{Code: ExitFailure, Err: fmt.Errorf("no freeze of %s ('sortie freeze list' shows them): %w", scope, err)}
		}
		return err
	}
	_, err = fmt.Fprintf(ios.Out, "Lifted the freeze of %s.\n", scope)
	return err
}
