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

// SecretsListOptions are the inputs of `sortie secrets list`.
type SecretsListOptions struct {
	Conn   connOptions
	Output string
}

func newSecretsListCmd(ios IOStreams) *cobra.Command {
	opts := SecretsListOptions{}
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List secrets by name (never their values)",
		Example: "  sortie secrets list -o json",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runSecretsList(cmd.Context(), ios, opts) },
	}
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runSecretsList(ctx context.Context, ios IOStreams, opts SecretsListOptions) error {
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	ss, err := c.ListSecrets(ctx)
	if err != nil {
		return err
	}
	if ss == nil {
		ss = []api.SecretView{}
	}
	return writeData(ios.Out, opts.Output, api.SecretList{Secrets: ss}, func(w io.Writer) error {
		if len(ss) == 0 {
			_, err := fmt.Fprintln(w, "No secrets.")
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tUPDATED\tALLOWED HOSTS")
		for _, s := range ss {
			hosts := "any"
			if len(s.AllowedHosts) > 0 {
				hosts = strings.Join(s.AllowedHosts, ",")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, fmtTime(s.UpdatedAt), hosts)
		}
		return tw.Flush()
	})
}
