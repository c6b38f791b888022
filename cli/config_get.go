package cli

import (
	"context"
	"strings"

	"github.com/spf13/cobra"
)

// ConfigGetOptions are the inputs of `sortie config get`.
type ConfigGetOptions struct {
	Conn   connOptions
	Output string
}

func newConfigGetCmd(ios IOStreams) *cobra.Command {
	opts := ConfigGetOptions{}
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Print the tenants and custom roles as YAML",
		Long: strings.TrimSpace(`
Print the organization's tenants and custom roles, as 'sortie config apply'
takes them (YAML; -o json for JSON).`),
		Example: "  sortie config get > org.yaml",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runConfigGet(cmd.Context(), ios, opts) },
	}
	opts.Conn.bind(cmd)
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "yaml", "output format: yaml, json, or armory (Armory's RBAC file)")
	return cmd
}

func runConfigGet(ctx context.Context, ios IOStreams, opts ConfigGetOptions) error {
	if opts.Output == "text" {
		opts.Output = "yaml" // the configuration's text form is its YAML
	}
	if opts.Output == "armory" {
		c, err := newAPIClient(ios, opts.Conn)
		if err != nil {
			return err
		}
		cfg, err := c.GetConfig(ctx)
		if err != nil {
			return err
		}
		return writeArmoryConfig(ios.Out, *cfg)
	}
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	cfg, err := c.GetConfig(ctx)
	if err != nil {
		return err
	}
	return writeData(ios.Out, opts.Output, cfg, nil)
}
