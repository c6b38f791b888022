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
)

// SecretsSetOptions are the inputs of `sortie secrets set`. The value is
// never a flag or an argument: those end up in shell history and in ps.
type SecretsSetOptions struct {
	Conn   connOptions
	Name   string
	Output string
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
echo. It is never taken as an argument and never printed.`),
		Example: strings.TrimSpace(`
  sortie secrets set slack-token            # prompts
  vault read -field=token secret/slack | sortie secrets set slack-token`),
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			return runSecretsSet(cmd.Context(), ios, opts)
		},
	}
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runSecretsSet(ctx context.Context, ios IOStreams, opts SecretsSetOptions) error {
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	value, err := readSecretValue(ios, opts.Name)
	if err != nil {
		return err
	}
	sv, err := c.PutSecret(ctx, opts.Name, value)
	if err != nil {
		return err
	}
	return writeData(ios.Out, opts.Output, sv, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "Secret %s set (use it as {{secrets.%s}}).\n", sv.Name, sv.Name)
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
