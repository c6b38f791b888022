package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/sortie-cd/sortie/client"
)

// environment is everything the client commands read from the process
// environment, read once per command run. Packages below cli never read it.
type environment struct {
	Server       string // SORTIE_SERVER
	ClientID     string // SORTIE_CLIENT_ID, else ARMORY_CLIENT_ID
	ClientSecret string // SORTIE_CLIENT_SECRET, else ARMORY_CLIENT_SECRET
	Token        string // SORTIE_TOKEN: a token to use as is
	// CI (CI=true) keeps credentials and tokens in memory: nothing is
	// written to the config file.
	CI bool
	// ConfigPath is SORTIE_CONFIG, else <user config dir>/sortie/config.yaml.
	ConfigPath string
	// GitHubOutput and GitHubStepSummary are GitHub Actions' files.
	GitHubOutput, GitHubStepSummary string
}

func readEnvironment() environment {
	get := func(names ...string) string {
		for _, n := range names {
			if v := strings.TrimSpace(os.Getenv(n)); v != "" {
				return v
			}
		}
		return ""
	}
	e := environment{
		Server:            get("SORTIE_SERVER", "ARMORY_ADDR"),
		ClientID:          get("SORTIE_CLIENT_ID", "ARMORY_CLIENT_ID", "ARMORY_CLIENTID"),
		ClientSecret:      get("SORTIE_CLIENT_SECRET", "ARMORY_CLIENT_SECRET", "ARMORY_CLIENTSECRET"),
		Token:             get("SORTIE_TOKEN", "ARMORY_AUTHTOKEN", "ARMORY_AUTH_TOKEN"),
		CI:                strings.EqualFold(get("CI"), "true") || get("CI") == "1",
		ConfigPath:        get("SORTIE_CONFIG"),
		GitHubOutput:      get("GITHUB_OUTPUT"),
		GitHubStepSummary: get("GITHUB_STEP_SUMMARY"),
	}
	e.applyGlobals()
	if e.ConfigPath == "" {
		if dir, err := os.UserConfigDir(); err == nil {
			e.ConfigPath = filepath.Join(dir, "sortie", "config.yaml")
		}
	}
	return e
}

// configFile is config.yaml: where `sortie login` keeps the server, the
// client credentials and the cached token (mode 0600).
type configFile struct {
	Server       string    `yaml:"server,omitempty"`
	ClientID     string    `yaml:"client_id,omitempty"`
	ClientSecret string    `yaml:"client_secret,omitempty"`
	Token        string    `yaml:"token,omitempty"`
	TokenExpiry  time.Time `yaml:"token_expiry,omitempty"`
	// A user's session ('sortie login --username' or '--sso'): who, and
	// the refresh token that gets the next token (replaced at each use).
	Username     string `yaml:"username,omitempty"`
	Tenant       string `yaml:"tenant,omitempty"`
	RefreshToken string `yaml:"refresh_token,omitempty"`
}

// loadConfigFile reads path; a missing file is an empty config.
func loadConfigFile(path string) (configFile, error) {
	var c configFile
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read the config file: %w", err)
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		// yaml's message may quote a value of the file, which may be the
		// secret: only its line is shown.
		where := ""
		if m := yamlLine.FindString(err.Error()); m != "" {
			where = " (" + m + ")"
		}
		return c, fmt.Errorf("the config file %s is not valid%s; fix it, or run 'sortie logout' and log in again", path, where)
	}
	return c, nil
}

var yamlLine = regexp.MustCompile(`line \d+`)

// save writes c to path, readable by its owner only, atomically.
func (c configFile) save(path string) error {
	if path == "" {
		return errors.New("no config directory: set SORTIE_CONFIG or HOME")
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode the config: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create the config directory: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".config-*.yaml")
	if err != nil {
		return fmt.Errorf("write the config file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write the config file: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write the config file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write the config file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write the config file: %w", err)
	}
	return nil
}

// connOptions are the flags every command that calls the server has.
type connOptions struct {
	Server string
}

func (o *connOptions) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.Server, "server", "", "the server's URL (default: SORTIE_SERVER, then the one 'sortie login' saved)")
}

// connection is the resolved way to reach a server: flags over SORTIE_*
// environment over the config file.
type connection struct {
	Server                 string
	ClientID, ClientSecret string
	// Tenant is the tenant a credential's tokens are asked for ('login
	// --tenant'); empty: the credential's own.
	Tenant string
	Token  client.Token
	// cache is set when the credentials are the config file's: new tokens
	// are then written back to it.
	cache bool
	env   environment
	file  configFile
}

func resolveConnection(o connOptions) (connection, error) {
	env := readEnvironment()
	file, err := loadConfigFile(env.ConfigPath)
	if err != nil {
		return connection{}, err
	}
	c := connection{env: env, file: file, Server: firstOf(o.Server, env.Server, file.Server)}
	if c.Server == "" {
		return c, errors.New("not logged in: run 'sortie login --server URL ...' (or give --server or SORTIE_SERVER, with SORTIE_CLIENT_ID and SORTIE_CLIENT_SECRET)")
	}
	switch {
	case env.Token != "":
		c.Token = client.Token{AccessToken: env.Token}
	case env.ClientID != "" || env.ClientSecret != "":
		if env.ClientID == "" || env.ClientSecret == "" {
			return c, errors.New("set both SORTIE_CLIENT_ID and SORTIE_CLIENT_SECRET, or neither")
		}
		c.ClientID, c.ClientSecret = env.ClientID, env.ClientSecret
	case sameServer(c.Server, file.Server) && file.RefreshToken != "":
		// A user's session: the refresh token gets new tokens.
		c.Token = client.Token{AccessToken: file.Token, Expiry: file.TokenExpiry, RefreshToken: file.RefreshToken}
		c.cache = !env.CI
		return c, nil
	case sameServer(c.Server, file.Server):
		c.ClientID, c.ClientSecret = file.ClientID, file.ClientSecret
	case file.ClientID != "" || file.RefreshToken != "":
		// The saved secret is for the saved server only: never send it
		// elsewhere.
		return c, fmt.Errorf("the saved credentials are for %s, not %s: run 'sortie login --server %s ...', or set SORTIE_CLIENT_ID and SORTIE_CLIENT_SECRET", file.Server, c.Server, c.Server)
	default:
		return c, errors.New("not logged in: run 'sortie login --server URL --client-id ID --client-secret SECRET' (or set SORTIE_CLIENT_ID and SORTIE_CLIENT_SECRET)")
	}
	if c.ClientID != "" && c.ClientID == file.ClientID && sameServer(c.Server, file.Server) {
		c.Tenant = file.Tenant
		c.cache = !env.CI
		if file.Token != "" && env.Token == "" {
			c.Token = client.Token{AccessToken: file.Token, Expiry: file.TokenExpiry}
		}
	}
	return c, nil
}

// client builds the API client; new tokens go back to the config file when
// it holds these credentials (and CI is not set).
func (c connection) client(ios IOStreams) (*client.Client, error) {
	o := client.Options{
		Server: c.Server, ClientID: c.ClientID, ClientSecret: c.ClientSecret, Tenant: c.Tenant,
		Token: c.Token,
	}
	if c.cache {
		o.OnToken = func(t client.Token) {
			f := c.file
			f.Token, f.TokenExpiry = t.AccessToken, t.Expiry.UTC()
			if f.RefreshToken != "" {
				// Rotation: the one used is dead, keep its successor.
				f.RefreshToken = t.RefreshToken
			}
			if err := f.save(c.env.ConfigPath); err != nil {
				fmt.Fprintf(ios.ErrOut, "warning: could not cache the token: %v\n", err)
			}
		}
	}
	return newClient(o)
}

// newAPIClient resolves the connection and returns its client.
func newAPIClient(ios IOStreams, o connOptions) (*client.Client, error) {
	conn, err := resolveConnection(o)
	if err != nil {
		return nil, err
	}
	return conn.client(ios)
}

// apiCommand is how a command that prints data starts: check -o, then get
// the client.
func apiCommand(ios IOStreams, output string, o connOptions) (*client.Client, error) {
	if err := checkOutput(output); err != nil {
		return nil, err
	}
	return newAPIClient(ios, o)
}

func sameServer(a, b string) bool {
	return strings.TrimRight(a, "/") == strings.TrimRight(b, "/")
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
