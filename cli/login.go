package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/client"
)

// LoginOptions are the inputs of `sortie login`.
type LoginOptions struct {
	Server          string
	ClientID        string
	ClientSecret    string
	CredentialsFile string
	Output          string
	// Username logs a local user in with its password (prompted without
	// echo, or one line of standard input), in Tenant (empty: main).
	Username, Tenant string
	// SSO logs in through the server's OpenID Connect provider with the
	// device flow.
	SSO bool
}

func newLoginCmd(ios IOStreams) *cobra.Command {
	opts := LoginOptions{}
	cmd := &cobra.Command{
		Use:   "login --server URL --client-id ID --client-secret SECRET | --credentials-file PATH | --username NAME | --sso",
		Short: "Log the CLI in to a Sortie server: client credentials, a user's password, or single sign-on",
		Long: strings.TrimSpace(`
Log in to a Sortie server with a client credential: its id and secret, or
the admin-credentials.json file a new server writes into its data directory.
The credential is checked by getting a token, then saved with the token in
the config file (<user config dir>/sortie/config.yaml, readable by you only;
SORTIE_CONFIG names another file). Later commands refresh the token before
it expires.

Each value comes from its flag, else from the environment (SORTIE_SERVER,
SORTIE_CLIENT_ID, SORTIE_CLIENT_SECRET; ARMORY_CLIENT_ID and
ARMORY_CLIENT_SECRET are accepted too). With CI=true nothing is written:
set those variables in each CI step instead.

The secret is never printed.

A person logs in as a user instead: --username NAME (a local account; the
password is read from a prompt that does not echo, or from the first line of
standard input; --tenant names the account's tenant, default main), or --sso
(single sign-on: open the link shown, log in at the identity provider and
approve the code; the server maps your groups to a tenant and roles). The
config file then keeps a refresh token, never the password: later commands
use it to get new tokens (each use replaces it), until it is revoked by
'sortie logout', a new password, or the user's deletion.`),
		Example: strings.TrimSpace(`
  sortie login --credentials-file ~/.local/share/sortie/admin-credentials.json
  sortie login --server https://sortie.example.com --client-id 01J... --client-secret "$SECRET"
  sortie login --server https://sortie.example.com --username alice
  sortie login --server https://sortie.example.com --sso`),
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runLogin(cmd.Context(), ios, opts) },
	}
	f := cmd.Flags()
	f.StringVar(&opts.Server, "server", "", "the server's URL (SORTIE_SERVER)")
	f.StringVar(&opts.ClientID, "client-id", "", "the client id (SORTIE_CLIENT_ID)")
	f.StringVar(&opts.ClientSecret, "client-secret", "", "the client secret (SORTIE_CLIENT_SECRET); '-' reads it from standard input")
	f.StringVar(&opts.CredentialsFile, "credentials-file", "", "a credentials file as the server writes it (admin-credentials.json)")
	f.StringVar(&opts.Username, "username", "", "log in as this local user (password from a no-echo prompt or standard input)")
	f.StringVarP(&opts.Tenant, "tenant", "e", "", "the tenant: a user's (default main), or one an organization admin's credential acts in (Armory's -e/--envName)")
	f.BoolVar(&opts.SSO, "sso", false, "log in through the server's single sign-on (device flow)")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

// loginResult is what `sortie login -o json` prints.
type loginResult struct {
	Server      string    `json:"server"`
	ClientID    string    `json:"clientId"`
	Name        string    `json:"name,omitempty"`
	Tenant      string    `json:"tenant,omitempty"`
	Roles       []string  `json:"roles"`
	TokenExpiry time.Time `json:"tokenExpiry,omitzero"`
	// ConfigFile is where the credentials were saved; empty with CI=true.
	ConfigFile string `json:"configFile,omitempty"`
}

func runLogin(ctx context.Context, ios IOStreams, opts LoginOptions) error {
	if err := checkOutput(opts.Output); err != nil {
		return err
	}
	env := readEnvironment()
	if opts.Username != "" || opts.SSO {
		return runUserLogin(ctx, ios, env, opts)
	}
	var fromFile auth.CredentialsFile
	if opts.CredentialsFile != "" {
		if opts.ClientID != "" || opts.ClientSecret != "" {
			return usageErrorf("give either --credentials-file or --client-id and --client-secret, not both")
		}
		b, err := os.ReadFile(opts.CredentialsFile)
		if err != nil {
			return fmt.Errorf("read the credentials file: %w", err)
		}
		if err := json.Unmarshal(b, &fromFile); err != nil || fromFile.ClientID == "" || fromFile.ClientSecret == "" {
			// Never quote the file: it holds a secret.
			return fmt.Errorf("%s is not a credentials file (a JSON object with server, client_id and client_secret)", opts.CredentialsFile)
		}
	}
	if opts.ClientSecret == "-" {
		b, err := io.ReadAll(io.LimitReader(ios.In, 4096))
		if err != nil {
			return fmt.Errorf("read the client secret from standard input: %w", err)
		}
		opts.ClientSecret = strings.TrimSpace(string(b))
	}
	server := firstOf(opts.Server, fromFile.Server, env.Server)
	id := firstOf(opts.ClientID, fromFile.ClientID, env.ClientID)
	secret := firstOf(opts.ClientSecret, fromFile.ClientSecret, env.ClientSecret)
	switch {
	case server == "":
		return usageErrorf("give the server's URL with --server (or SORTIE_SERVER)")
	case id == "" || secret == "":
		return usageErrorf("give --client-id and --client-secret (or SORTIE_CLIENT_ID and SORTIE_CLIENT_SECRET), or --credentials-file")
	}
	// --tenant (Armory's -e/--envName): an organization admin's
	// credential acting in another tenant; the token is for that one.
	c, err := newClient(client.Options{Server: server, ClientID: id, ClientSecret: secret, Tenant: opts.Tenant})
	if err != nil {
		return usageErrorf("%v", err)
	}
	tok, err := c.FetchToken(ctx)
	if err != nil {
		if client.StatusOf(err) == 401 {
			return fmt.Errorf("login to %s refused: unknown client id or wrong client secret", c.Server())
		}
		if opts.Tenant != "" && client.StatusOf(err) == 400 {
			return fmt.Errorf("login to %s in tenant %s refused: only an organization admin's credential acts in another tenant, and only in one that exists: %w", c.Server(), opts.Tenant, err)
		}
		return fmt.Errorf("login to %s: %w", c.Server(), err)
	}
	res := loginResult{Server: c.Server(), ClientID: id, Roles: []string{}, TokenExpiry: tok.Expiry.UTC()}
	if who, err := client.IdentityOf(tok); err == nil {
		res.Name, res.Tenant = who.Name, who.Tenant
		if who.Roles != nil {
			res.Roles = who.Roles
		}
	}
	if !env.CI {
		cfg := configFile{Server: c.Server(), ClientID: id, ClientSecret: secret, Tenant: opts.Tenant, Token: tok.AccessToken, TokenExpiry: tok.Expiry.UTC()}
		if err := cfg.save(env.ConfigPath); err != nil {
			return err
		}
		res.ConfigFile = env.ConfigPath
	}
	return writeData(ios.Out, opts.Output, res, func(w io.Writer) error {
		who := res.ClientID
		if res.Name != "" {
			who = fmt.Sprintf("%q (%s)", res.Name, res.ClientID)
		}
		fmt.Fprintf(w, "Logged in to %s as %s", res.Server, who)
		if res.Tenant != "" {
			fmt.Fprintf(w, ", tenant %s, roles %s", res.Tenant, strings.Join(res.Roles, ", "))
		}
		fmt.Fprintln(w, ".")
		if res.ConfigFile != "" {
			_, err := fmt.Fprintf(w, "Credentials saved to %s (readable by you only).\n", res.ConfigFile)
			return err
		}
		_, err := fmt.Fprintln(w, "CI=true: nothing was written; set SORTIE_SERVER, SORTIE_CLIENT_ID and SORTIE_CLIENT_SECRET in each step that calls the server.")
		return err
	})
}

// LogoutOptions are the inputs of `sortie logout`.
type LogoutOptions struct{}

func newLogoutCmd(ios IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Forget the saved server, credentials and token",
		Long: strings.TrimSpace(`
Delete the config file 'sortie login' wrote, with its client credentials and
cached token. A user's session is revoked on the server first (its refresh
token stops working). A client credential stays valid on the server: delete
it there with 'sortie credentials delete ID' if it should stop working.`),
		Example: "  sortie logout",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runLogout(cmd.Context(), ios, LogoutOptions{}) },
	}
}

func runLogout(ctx context.Context, ios IOStreams, _ LogoutOptions) error {
	env := readEnvironment()
	if env.ConfigPath == "" {
		return errors.New("no config directory: set SORTIE_CONFIG or HOME")
	}
	if f, err := loadConfigFile(env.ConfigPath); err == nil && f.RefreshToken != "" && f.Server != "" {
		// End the session on the server too; a server out of reach only
		// leaves a refresh token that expires by itself.
		if c, err := newClient(client.Options{Server: f.Server, Token: client.Token{RefreshToken: f.RefreshToken}}); err == nil {
			if err := c.Revoke(ctx); err != nil {
				fmt.Fprintf(ios.ErrOut, "warning: could not revoke the session on %s: %v\n", f.Server, err)
			}
		}
	}
	err := os.Remove(env.ConfigPath)
	if errors.Is(err, os.ErrNotExist) {
		_, err = fmt.Fprintf(ios.Out, "Not logged in (no %s).\n", env.ConfigPath)
		return err
	}
	if err != nil {
		return fmt.Errorf("remove the config file: %w", err)
	}
	_, err = fmt.Fprintf(ios.Out, "Logged out: removed %s.\n", env.ConfigPath)
	return err
}
