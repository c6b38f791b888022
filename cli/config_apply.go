package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/sortie-cd/sortie/api"
)

// ConfigApplyOptions are the inputs of `sortie config apply`.
type ConfigApplyOptions struct {
	Conn   connOptions
	File   string
	Output string
}

func newConfigApplyCmd(ios IOStreams) *cobra.Command {
	opts := ConfigApplyOptions{}
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Apply tenants and custom roles from a YAML file",
		Long: strings.TrimSpace(`
Create the tenants a YAML file lists and put their custom roles (with the
grants each holds), then print what changed. Running it twice changes
nothing the second time. '-f -' reads standard input.

Armory CD-as-a-Service's RBAC file (tenants by name; roles with tenant and
grants of type api, resource deployment or tenant, permission full) is
accepted too, and its changes printed as Armory's CLI printed them.`),
		Example: strings.TrimSpace(`
  sortie config apply -f org.yaml

org.yaml:
  tenants:
    - name: payments
      roles:
        - name: release-manager
          grants: [read, approve]`),
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runConfigApply(cmd.Context(), ios, opts) },
	}
	cmd.Flags().StringVarP(&opts.File, "file", "f", "", "the configuration file (YAML), or - for standard input")
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runConfigApply(ctx context.Context, ios IOStreams, opts ConfigApplyOptions) error {
	if opts.File == "" {
		return usageErrorf("give the configuration file with -f FILE")
	}
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	var b []byte
	if opts.File == "-" {
		b, err = io.ReadAll(ios.In)
	} else {
		b, err = os.ReadFile(opts.File)
	}
	if err != nil {
		return fmt.Errorf("read the configuration: %w", err)
	}
	var (
		cfg    api.Config
		armory bool
		node   yaml.Node
		names  map[string]string
	)
	if err := yaml.Unmarshal(b, &node); err == nil && isArmoryConfig(&node) {
		// Armory's RBAC file: tenants by name, roles with api grants.
		armory = true
		var notes []string
		if cfg, names, notes, err = fromArmoryConfig(opts.File, &node); err != nil {
			return err
		}
		for _, n := range notes {
			fmt.Fprintln(ios.ErrOut, n)
		}
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: %w", opts.File, err)
		}
	}
	changes, err := c.ApplyConfig(ctx, cfg)
	if err != nil {
		return err
	}
	if changes == nil {
		changes = []string{}
	}
	if armory {
		for i, ch := range changes {
			changes[i] = armoryChange(ch, names)
		}
	}
	return writeData(ios.Out, opts.Output, api.ConfigChanges{Changes: changes}, func(w io.Writer) error {
		if len(changes) == 0 {
			_, err := fmt.Fprintln(w, "No changes.")
			return err
		}
		for _, ch := range changes {
			fmt.Fprintln(w, ch)
		}
		return nil
	})
}
