package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/sortie-cd/sortie/client"
)

// runUserLogin logs a person in: a local user with its password, or single
// sign-on with the device flow. The config file keeps the refresh token.
func runUserLogin(ctx context.Context, ios IOStreams, env environment, opts LoginOptions) error {
	switch {
	case opts.Username != "" && opts.SSO:
		return usageErrorf("give either --username or --sso, not both")
	case opts.ClientID != "" || opts.ClientSecret != "" || opts.CredentialsFile != "":
		return usageErrorf("--username and --sso log a person in; --client-id, --client-secret and --credentials-file a machine: give one kind")
	case opts.SSO && opts.Tenant != "":
		return usageErrorf("with --sso the server's group mapping picks the tenant; --tenant is for --username")
	}
	server := firstOf(opts.Server, env.Server)
	if server == "" {
		return usageErrorf("give the server's URL with --server (or SORTIE_SERVER)")
	}
	c, err := newClient(client.Options{Server: server})
	if err != nil {
		return usageErrorf("%v", err)
	}
	var tok client.Token
	if opts.SSO {
		tok, err = deviceLogin(ctx, ios, c)
	} else {
		var pw string
		if pw, err = newPasswordReader(ios).read("Password for " + opts.Username); err != nil {
			return err
		}
		tok, err = c.PasswordLogin(ctx, opts.Tenant, opts.Username, pw)
		if client.StatusOf(err) == 400 {
			if e, ok := err.(*client.Error); ok && e.Code() == "invalid_grant" {
				return fmt.Errorf("login to %s refused: unknown user or wrong password", c.Server())
			}
		}
	}
	if err != nil {
		return fmt.Errorf("login to %s: %w", c.Server(), err)
	}
	res := loginResult{Server: c.Server(), Roles: []string{}, TokenExpiry: tok.Expiry.UTC()}
	username := opts.Username
	if who, err := client.IdentityOf(tok); err == nil {
		res.ClientID, res.Name, res.Tenant = who.ClientID, who.Name, who.Tenant
		username = strings.TrimPrefix(who.ClientID, "user:")
		if who.Roles != nil {
			res.Roles = who.Roles
		}
	}
	if !env.CI {
		cfg := configFile{Server: c.Server(), Username: username, Tenant: res.Tenant, Token: tok.AccessToken, TokenExpiry: tok.Expiry.UTC(), RefreshToken: tok.RefreshToken}
		if err := cfg.save(env.ConfigPath); err != nil {
			return err
		}
		res.ConfigFile = env.ConfigPath
	}
	return writeData(ios.Out, opts.Output, res, func(w io.Writer) error {
		fmt.Fprintf(w, "Logged in to %s as user %s, tenant %s, roles %s.\n", res.Server, username, res.Tenant, strings.Join(res.Roles, ", "))
		if res.ConfigFile != "" {
			_, err := fmt.Fprintf(w, "Session saved to %s (readable by you only); 'sortie logout' ends it.\n", res.ConfigFile)
			return err
		}
		_, err := fmt.Fprintln(w, "CI=true: nothing was written.")
		return err
	})
}

// deviceLogin runs the device flow through the server: it shows where to
// approve the login, then waits for the approval.
func deviceLogin(ctx context.Context, ios IOStreams, c *client.Client) (client.Token, error) {
	da, err := c.DeviceAuthorization(ctx)
	if err != nil {
		return client.Token{}, err
	}
	link := da.VerificationURIComplete
	if link == "" {
		link = da.VerificationURI
	}
	fmt.Fprintf(ios.ErrOut, "To log in, open %s\nand confirm the code %s. Waiting for the approval...\n", link, da.UserCode)
	return c.DeviceLogin(ctx, da)
}
