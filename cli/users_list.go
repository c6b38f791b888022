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

// UsersListOptions are the inputs of `sortie users list`.
type UsersListOptions struct {
	Conn   connOptions
	Output string
}

func newUsersListCmd(ios IOStreams) *cobra.Command {
	opts := UsersListOptions{}
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the tenant's users (local and single sign-on)",
		Example: "  sortie users list -o json",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runUsersList(cmd.Context(), ios, opts) },
	}
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runUsersList(ctx context.Context, ios IOStreams, opts UsersListOptions) error {
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	us, err := c.ListUsers(ctx)
	if err != nil {
		return err
	}
	if us == nil {
		us = []api.UserView{}
	}
	return writeData(ios.Out, opts.Output, api.UserList{Users: us}, func(w io.Writer) error {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "USERNAME\tNAME\tROLES\tLOGIN\tCREATED")
		for _, u := range us {
			login := "password"
			switch {
			case u.SSO != "":
				login = "sso " + u.SSO
			case !u.HasPassword:
				login = "none (no password)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Username, u.Name, strings.Join(u.Roles, ","), login, fmtTime(u.CreatedAt))
		}
		return tw.Flush()
	})
}
