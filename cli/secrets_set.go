package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/egress"
)

// SecretsSetOptions are the inputs of `sortie secrets set`. The value is
// never a flag or an argument: those end up in shell history and in ps.
type SecretsSetOptions struct {
	Conn   connOptions
	Name   string
	Output string
	// AllowedHosts, when set, are the only hosts a request carrying the
	// secret may go to; AnyHost lifts that restriction. With neither, the
	// secret keeps the hosts it had.
	AllowedHosts []string
	AnyHost      bool
}

// maxSecretBytes bounds a secret read from standard input.
const maxSecretBytes = 64 << 10

func newSecretsSetCmd(ios IOStreams) *cobra.Command {
	opts := SecretsSetOptions{}
	cmd := &cobra.Command{
		Use:   "set NAME",
		Short: "Create or replace a secret; the value is read from standard input or a prompt",
		Long: strings.TrimSpace(`
Create or replace a secret. The value is read from standard input (one
trailing newline is dropped), or, on a terminal, from a prompt that does not
echo. It is never taken as an argument and never printed.

Whoever may start a deployment may render a secret into a webhook, and so
send it to a host of their choosing. --allowed-host (repeatable, or
comma-separated) restricts the secret: a webhook or metric query carrying it
may connect only to those hosts (host, host:port or *.domain), redirects
included. Setting a new value keeps the hosts the secret had; --allowed-host
replaces them and --any-host lifts the restriction.`),
		Example: strings.TrimSpace(`
  sortie secrets set slack-token --allowed-host hooks.slack.com   # prompts
  vault read -field=token secret/slack | sortie secrets set slack-token`),
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			return runSecretsSet(cmd.Context(), ios, opts)
		},
	}
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	cmd.Flags().StringSliceVar(&opts.AllowedHosts, "allowed-host", nil, "a host the secret may be sent to (host, host:port or *.domain), replacing the ones it had; repeatable; without it the secret keeps its hosts")
	cmd.Flags().BoolVar(&opts.AnyHost, "any-host", false, "lift the secret's restriction to its allowed hosts")
	return cmd
}

func runSecretsSet(ctx context.Context, ios IOStreams, opts SecretsSetOptions) error {
	for _, h := range opts.AllowedHosts {
		if err := egress.ValidateHost(h); err != nil {
			return usageErrorf("--allowed-host: %v", err)
		}
	}
	if opts.AnyHost && len(opts.AllowedHosts) > 0 {
		return usageErrorf("give --allowed-host or --any-host, not both")
	}
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	value, err := readSecretValue(ios, opts.Name)
	if err != nil {
		return err
	}
	sv, err := c.PutSecret(ctx, opts.Name, api.PutSecretRequest{Value: value, AllowedHosts: opts.AllowedHosts, AnyHost: opts.AnyHost})
	if err != nil {
		return err
	}
	return writeData(ios.Out, opts.Output, sv, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "Secret %s set (use it as {{secrets.%s}}).\n", sv.Name, sv.Name)
		if err == nil && len(sv.AllowedHosts) > 0 {
			_, err = fmt.Fprintf(w, "It may be sent only to %s.\n", strings.Join(sv.AllowedHosts, ", "))
		}
		return err
	})
}

// readSecretValue prompts without echo on a terminal, else reads stdin.
func readSecretValue(ios IOStreams, name string) (string, error) {
	if f, ok := ios.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(ios.ErrOut, "Value of %s (not shown): ", name)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(ios.ErrOut)
		if err != nil {
			return "", fmt.Errorf("read the value: %w", err)
		}
		if len(b) == 0 {
			return "", errors.New("the value is empty")
		}
		return string(b), nil
	}
	if ios.In == nil {
		return "", usageErrorf("give the value on standard input")
	}
	b, err := io.ReadAll(io.LimitReader(ios.In, maxSecretBytes+1))
	if err != nil {
		return "", fmt.Errorf("read the value from standard input: %w", err)
	}
	if len(b) > maxSecretBytes {
		return "", fmt.Errorf("the value is over %d bytes", maxSecretBytes)
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if v == "" {
		return "", usageErrorf("the value is empty: pipe it on standard input, e.g. 'printf %%s \"$VALUE\" | sortie secrets set %s'", name)
	}
	return v, nil
}
