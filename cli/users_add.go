package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/api"
)

// UsersAddOptions are the inputs of `sortie users add`.
type UsersAddOptions struct {
	Conn       connOptions
	Username   string
	Name       string
	Roles      []string
	NoPassword bool
	Output     string
}

func newUsersAddCmd(ios IOStreams) *cobra.Command {
	opts := UsersAddOptions{}
	cmd := &cobra.Command{
		Use:   "add USERNAME --role ROLE [--name NAME]",
		Short: "Add a local user account with a password",
		Long: strings.TrimSpace(`
Add a user to your tenant. The password is read from a prompt that does not
echo, or from the first line of standard input; it needs at least 12
characters. With --no-password the account cannot log in until
'sortie users set-password' sets one.`),
		Example: strings.TrimSpace(`
  sortie users add alice --role deployer --name "Alice Example"
  printf '%s\n' "$PASSWORD" | sortie users add ci-bot --role viewer`),
		Args: exactArgs(1, "USERNAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Username = args[0]
			return runUsersAdd(cmd.Context(), ios, opts)
		},
	}
	opts.Conn.bind(cmd)
	f := cmd.Flags()
	f.StringVar(&opts.Name, "name", "", "the name shown in the console and the audit log")
	f.StringSliceVar(&opts.Roles, "role", nil, "a role to give (repeat or comma-separate)")
	f.BoolVar(&opts.NoPassword, "no-password", false, "create the account without a password")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runUsersAdd(ctx context.Context, ios IOStreams, opts UsersAddOptions) error {
	if len(opts.Roles) == 0 {
		return usageErrorf("give at least one --role (viewer, deployer, tenant-admin, organization-admin, or a custom role)")
	}
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	req := api.CreateUserRequest{Username: opts.Username, Name: opts.Name, Roles: opts.Roles}
	if !opts.NoPassword {
		if req.Password, err = newPasswordReader(ios).read("Password for " + opts.Username); err != nil {
			return err
		}
	}
	u, err := c.CreateUser(ctx, req)
	if err != nil {
		return err
	}
	return writeData(ios.Out, opts.Output, u, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "User %s added with roles %s.\n", u.Username, strings.Join(u.Roles, ", "))
		return err
	})
}
