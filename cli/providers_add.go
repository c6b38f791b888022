package cli

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/analysis"
	"github.com/sortie-cd/sortie/api"
)

// ProvidersAddOptions are the inputs of `sortie providers add`.
type ProvidersAddOptions struct {
	Conn connOptions
	Name string
	Type string
	URL  string
	// Auth is none, basic or bearer (Prometheus); empty means none.
	Auth           string
	Username       string
	UsernameSecret string
	PasswordSecret string
	TokenSecret    string
	// Agent relays Prometheus queries through that agent.
	Agent                string
	APIKeySecret         string
	ApplicationKeySecret string
	AccountID            int64
	Output               string
}

func newProvidersAddCmd(ios IOStreams) *cobra.Command {
	opts := ProvidersAddOptions{}
	cmd := &cobra.Command{
		Use:   "add NAME --type prometheus|datadog|newrelic [--url URL] [flags]",
		Short: "Add a metric provider",
		Long: strings.TrimSpace(`
Add a metric provider under NAME, the name deployment files give as
metricProviderName or analysis.defaultMetricProviderName.

  prometheus  --url (required); --auth none (default), basic (--username or
              --username-secret, and --password-secret) or bearer
              (--token-secret); --agent to query through an agent, for a
              Prometheus only the cluster reaches.
  datadog     --api-key-secret and --application-key-secret; --url is the
              API site (default ` + analysis.DefaultDatadogURL + `).
  newrelic    --api-key-secret and --account-id; --url is the NerdGraph
              endpoint (default ` + analysis.DefaultNewRelicURL + `).

Secrets are named, not given: set them first with 'sortie secrets set'.
A provider is replaced by deleting it and adding it again.`),
		Example: strings.TrimSpace(`
  sortie providers add prom --type prometheus --url http://prometheus.monitoring:9090 --agent prod-cluster
  sortie providers add prom --type prometheus --url https://prom.example.com --auth bearer --token-secret prom-token
  sortie providers add dd --type datadog --api-key-secret dd-api --application-key-secret dd-app
  sortie providers add nr --type newrelic --api-key-secret nr-key --account-id 1234567`),
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			return runProvidersAdd(cmd.Context(), ios, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Type, "type", "", "prometheus, datadog or newrelic (required)")
	f.StringVar(&opts.URL, "url", "", "Prometheus's base URL; Datadog's API site; New Relic's NerdGraph endpoint")
	f.StringVar(&opts.Auth, "auth", "", "Prometheus authentication: none, basic or bearer")
	f.StringVar(&opts.Username, "username", "", "basic auth user name")
	f.StringVar(&opts.UsernameSecret, "username-secret", "", "basic auth: the secret holding the user name")
	f.StringVar(&opts.PasswordSecret, "password-secret", "", "basic auth: the secret holding the password")
	f.StringVar(&opts.TokenSecret, "token-secret", "", "bearer auth: the secret holding the token")
	f.StringVar(&opts.Agent, "agent", "", "Prometheus: query through this agent")
	f.StringVar(&opts.APIKeySecret, "api-key-secret", "", "Datadog, New Relic: the secret holding the API key")
	f.StringVar(&opts.ApplicationKeySecret, "application-key-secret", "", "Datadog: the secret holding the application key")
	f.Int64Var(&opts.AccountID, "account-id", 0, "New Relic: the account NRQL queries run in")
	opts.Conn.bind(cmd)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

// config is the provider the flags describe. Flag combinations are checked
// here, in flag names; what each type needs is the server's to say.
func (opts ProvidersAddOptions) config() (analysis.Config, error) {
	c := analysis.Config{Name: opts.Name, Type: opts.Type, URL: opts.URL, AgentIdentifier: opts.Agent,
		APIKeySecret: opts.APIKeySecret, ApplicationKeySecret: opts.ApplicationKeySecret, AccountID: opts.AccountID}
	switch opts.Type {
	case analysis.TypePrometheus, analysis.TypeDatadog, analysis.TypeNewRelic:
	case "":
		return c, usageErrorf("--type is required: %s, %s or %s", analysis.TypePrometheus, analysis.TypeDatadog, analysis.TypeNewRelic)
	default:
		return c, usageErrorf("--type must be %s, %s or %s, not %q", analysis.TypePrometheus, analysis.TypeDatadog, analysis.TypeNewRelic, opts.Type)
	}
	basic := map[string]string{"--username": opts.Username, "--username-secret": opts.UsernameSecret, "--password-secret": opts.PasswordSecret}
	bearer := map[string]string{"--token-secret": opts.TokenSecret}
	stray := func(flags map[string]string, auth string) error {
		for _, name := range slices.Sorted(maps.Keys(flags)) {
			if flags[name] != "" {
				return usageErrorf("%s needs --auth %s", name, auth)
			}
		}
		return nil
	}
	switch opts.Auth {
	case "", analysis.AuthNone:
		if err := stray(basic, analysis.AuthBasic); err != nil {
			return c, err
		}
		if err := stray(bearer, analysis.AuthBearer); err != nil {
			return c, err
		}
		if opts.Auth != "" {
			c.Auth = &analysis.Auth{Type: analysis.AuthNone}
		}
	case analysis.AuthBasic:
		if err := stray(bearer, analysis.AuthBearer); err != nil {
			return c, err
		}
		if (opts.Username == "") == (opts.UsernameSecret == "") || opts.PasswordSecret == "" {
			return c, usageErrorf("--auth basic needs --username or --username-secret (one of them), and --password-secret")
		}
		c.Auth = &analysis.Auth{Type: analysis.AuthBasic, Username: opts.Username, UsernameSecret: opts.UsernameSecret, PasswordSecret: opts.PasswordSecret}
	case analysis.AuthBearer:
		if err := stray(basic, analysis.AuthBasic); err != nil {
			return c, err
		}
		if opts.TokenSecret == "" {
			return c, usageErrorf("--auth bearer needs --token-secret")
		}
		c.Auth = &analysis.Auth{Type: analysis.AuthBearer, TokenSecret: opts.TokenSecret}
	default:
		return c, usageErrorf("--auth must be none, basic or bearer, not %q", opts.Auth)
	}
	return c, nil
}

func runProvidersAdd(ctx context.Context, ios IOStreams, opts ProvidersAddOptions) error {
	cfg, err := opts.config()
	if err != nil {
		return err
	}
	c, err := apiCommand(ios, opts.Output, opts.Conn)
	if err != nil {
		return err
	}
	p, err := c.CreateProvider(ctx, cfg)
	if err != nil {
		return err
	}
	return writeData(ios.Out, opts.Output, p, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "Added metric provider %s: %s.\n", p.Name, providerSummary(p))
		return err
	})
}

// providerSummary is a provider's settings in a few words: type, where,
// how it authenticates (secrets by name), through which agent.
func providerSummary(p *api.ProviderView) string {
	parts := []string{p.Type}
	if url := providerURL(p); url != "" {
		parts = append(parts, "at "+url)
	}
	if a := providerAuth(p); a != "" {
		parts = append(parts, a)
	}
	if p.AgentIdentifier != "" {
		parts = append(parts, "through agent "+p.AgentIdentifier)
	}
	if p.AccountID != 0 {
		parts = append(parts, fmt.Sprintf("account %d", p.AccountID))
	}
	return strings.Join(parts, ", ")
}

// providerURL is where the provider's queries go, defaults included.
func providerURL(p *api.ProviderView) string {
	switch {
	case p.URL != "":
		return p.URL
	case p.Type == analysis.TypeDatadog:
		return analysis.DefaultDatadogURL
	case p.Type == analysis.TypeNewRelic:
		return analysis.DefaultNewRelicURL
	}
	return ""
}

// providerAuth names the provider's credentials: secrets by name only.
func providerAuth(p *api.ProviderView) string {
	var secrets []string
	kind := ""
	if a := p.Auth; a != nil {
		switch a.Type {
		case analysis.AuthBasic:
			kind = "basic auth"
			if a.Username != "" {
				kind += " as " + a.Username
			}
			secrets = append(secrets, a.UsernameSecret, a.PasswordSecret)
		case analysis.AuthBearer:
			kind = "bearer auth"
			secrets = append(secrets, a.TokenSecret)
		}
	}
	if p.APIKeySecret != "" || p.ApplicationKeySecret != "" {
		kind = "keys"
		secrets = append(secrets, p.APIKeySecret, p.ApplicationKeySecret)
	}
	var named []string
	for _, s := range secrets {
		if s != "" {
			named = append(named, s)
		}
	}
	switch len(named) {
	case 0:
	case 1:
		kind += " from secret " + named[0]
	default:
		kind += " from secrets " + strings.Join(named, ", ")
	}
	return kind
}
