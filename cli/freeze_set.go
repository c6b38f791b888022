package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/api"
)

// FreezeSetOptions are the inputs of `sortie freeze set`.
type FreezeSetOptions struct {
	Conn   connOptions
	Scope  scopeFlags
	Reason string
	// Until is an RFC 3339 time; For a duration from now. Neither: until
	// cleared.
	Until  string
	For    time.Duration
	Output string
}

func newFreezeSetCmd(ios IOStreams) *cobra.Command {
	opts := FreezeSetOptions{}
	cmd := &cobra.Command{
		Use:   "set --reason TEXT [--application APP | --target TARGET] [--until TIME | --for DURATION]",
		Short: "Freeze deployments",
		Example: strings.TrimSpace(`
  sortie freeze set --reason "incident 4711"
  sortie freeze set --application web --reason "end of quarter" --until 2026-12-31T23:00:00Z
  sortie freeze set --target prod --reason "audit" --for 2h`),
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runFreezeSet(cmd.Context(), ios, opts) },
	}
	f := cmd.Flags()
	f.StringVar(&opts.Reason, "reason", "", "why (required); shown to whoever is held")
	f.StringVar(&opts.Until, "until", "", "when the freeze ends by itself (RFC 3339)")
	f.DurationVar(&opts.For, "for", 0, "how long the freeze lasts")
	cmd.MarkFlagsMutuallyExclusive("until", "for")
	opts.Scope.bind(cmd)
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runFreezeSet(ctx context.Context, ios IOStreams, opts FreezeSetOptions) error {
	if strings.TrimSpace(opts.Reason) == "" {
		return usageErrorf("--reason is required: say why deployments stop")
	}
	req := api.FreezeRequest{Reason: opts.Reason}
	switch {
	case opts.Until != "":
		t, err := time.Parse(time.RFC3339, opts.Until)
		if err != nil {
			return usageErrorf("--until %q is not an RFC 3339 time such as 2026-12-31T23:00:00Z", opts.Until)
		}
		req.Until = t
	case opts.For < 0:
		return usageErrorf("--for must be positive")
	case opts.For > 0:
		req.Until = time.Now().Add(opts.For)
	}
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	f, err := c.SetFreeze(ctx, opts.Scope.scope(), req)
	if err != nil {
		return err
	}
	return writeData(ios.Out, opts.Output, f, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "Set the %s. Deployments in flight hold before their next cluster change; rollbacks go through.\n", f.String())
		return err
	})
}
