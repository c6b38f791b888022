package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/api"
)

// ProvidersListOptions are the inputs of `sortie providers list`.
type ProvidersListOptions struct {
	Conn   connOptions
	Output string
}

func newProvidersListCmd(ios IOStreams) *cobra.Command {
	opts := ProvidersListOptions{}
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List metric providers (secrets by name only)",
		Example: "  sortie providers list -o json",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runProvidersList(cmd.Context(), ios, opts) },
	}
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runProvidersList(ctx context.Context, ios IOStreams, opts ProvidersListOptions) error {
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	ps, err := c.ListProviders(ctx)
	if err != nil {
		return err
	}
	if ps == nil {
		ps = []api.ProviderView{}
	}
	return writeData(ios.Out, opts.Output, api.ProviderList{Providers: ps}, func(w io.Writer) error {
		if len(ps) == 0 {
			_, err := fmt.Fprintln(w, "No metric providers. Add one with 'sortie providers add'.")
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tTYPE\tURL\tAUTH\tAGENT\tADDED")
		for i := range ps {
			p := &ps[i]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Type, firstOf(providerURL(p), "-"), firstOf(providerAuth(p), "none"),
				firstOf(p.AgentIdentifier, "-"), fmtTime(p.CreatedAt))
		}
		return tw.Flush()
	})
}
