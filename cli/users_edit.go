package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// UsersEditOptions are the inputs of `sortie users delete`, `set-roles`,
// `set-password` and `change-password`.
type UsersEditOptions struct {
	Conn     connOptions
	Username string
	Roles    []string
}

func newUsersDeleteCmd(ios IOStreams) *cobra.Command {
	opts := UsersEditOptions{}
	cmd := &cobra.Command{
		Use:   "delete USERNAME",
		Short: "Delete a user; its sessions (refresh tokens) end",
		Long: strings.TrimSpace(`
Delete a user of your tenant and revoke its refresh and access tokens: its
sessions and event streams end at once.`),
		Example: "  sortie users delete alice",
		Args:    exactArgs(1, "USERNAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Username = args[0]
			return runUsersEdit(cmd.Context(), ios, opts, "delete")
		},
	}
	opts.Conn.bind(cmd)
	return cmd
}

func newUsersSetRolesCmd(ios IOStreams) *cobra.Command {
	opts := UsersEditOptions{}
	cmd := &cobra.Command{
		Use:     "set-roles USERNAME --role ROLE...",
		Short:   "Replace a user's roles: the tokens it holds end, its next has them",
		Example: "  sortie users set-roles alice --role deployer,release-manager",
		Args:    exactArgs(1, "USERNAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Username = args[0]
			return runUsersEdit(cmd.Context(), ios, opts, "set-roles")
		},
	}
	opts.Conn.bind(cmd)
	cmd.Flags().StringSliceVar(&opts.Roles, "role", nil, "a role to give (repeat or comma-separate)")
	return cmd
}

func newUsersSetPasswordCmd(ios IOStreams) *cobra.Command {
	opts := UsersEditOptions{}
	cmd := &cobra.Command{
		Use:   "set-password USERNAME",
		Short: "Set a user's password (an admin's reset); its sessions end",
		Long: strings.TrimSpace(`
Set the password of a user of your tenant, read from a prompt that does not
echo or from standard input. Every refresh and access token of the user is
revoked.`),
		Example: "  printf '%s\\n' \"$NEW_PASSWORD\" | sortie users set-password alice",
		Args:    exactArgs(1, "USERNAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Username = args[0]
			return runUsersEdit(cmd.Context(), ios, opts, "set-password")
		},
	}
	opts.Conn.bind(cmd)
	return cmd
}

func newUsersChangePasswordCmd(ios IOStreams) *cobra.Command {
	opts := UsersEditOptions{}
	cmd := &cobra.Command{
		Use:   "change-password",
		Short: "Change your own password (logged in as a user)",
		Long: strings.TrimSpace(`
Change the password of the user the CLI is logged in as: the current one,
then the new one, each from a prompt that does not echo or one line of
standard input. Every refresh and access token of the user is revoked,
this session's too: log in again afterwards.`),
		Example: "  sortie users change-password",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUsersEdit(cmd.Context(), ios, opts, "change-password")
		},
	}
	opts.Conn.bind(cmd)
	return cmd
}

func runUsersEdit(ctx context.Context, ios IOStreams, opts UsersEditOptions, verb string) error {
	if verb == "set-roles" && len(opts.Roles) == 0 {
		return usageErrorf("give at least one --role")
	}
	c, err := newAPIClient(ios, opts.Conn)
	if err != nil {
		return err
	}
	var done string
	switch verb {
	case "delete":
		err, done = c.DeleteUser(ctx, opts.Username), "User "+opts.Username+" deleted."
	case "set-roles":
		err, done = c.SetUserRoles(ctx, opts.Username, opts.Roles), "User "+opts.Username+" now has roles "+strings.Join(opts.Roles, ", ")+"."
	case "set-password":
		var pw string
		if pw, err = newPasswordReader(ios).read("New password for " + opts.Username); err == nil {
			err, done = c.SetUserPassword(ctx, opts.Username, pw), "Password of "+opts.Username+" set; its sessions ended."
		}
	case "change-password":
		pr := newPasswordReader(ios)
		var current, next string
		if current, err = pr.read("Current password"); err == nil {
			if next, err = pr.read("New password"); err == nil {
				err, done = c.ChangePassword(ctx, current, next), "Password changed; log in again with 'sortie login --username ...'."
			}
		}
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(ios.Out, done)
	return err
}
