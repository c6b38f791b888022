package analysis

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"

	"github.com/sortie-cd/sortie/store"
)

// Provider types.
const (
	TypePrometheus = "prometheus"
	TypeDatadog    = "datadog"
	TypeNewRelic   = "newrelic"
)

// Prometheus auth types.
const (
	AuthNone   = "none"
	AuthBasic  = "basic"
	AuthBearer = "bearer"
)

// Default endpoints of the SaaS providers.
const (
	DefaultDatadogURL  = "https://api.datadoghq.com"
	DefaultNewRelicURL = "https://api.newrelic.com/graphql"
)

// Config is one metric provider of a tenant. Fields apply per Type, as
// their comments say; secrets are named, never given.
type Config struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// URL: Prometheus's base URL (required); Datadog's API site (default
	// DefaultDatadogURL); New Relic's NerdGraph endpoint (default
	// DefaultNewRelicURL).
	URL string `json:"url,omitempty"`
	// Auth (Prometheus): none when nil.
	Auth *Auth `json:"auth,omitempty"`
	// AgentIdentifier (Prometheus): query through this agent's relay, for a
	// Prometheus only the cluster can reach.
	AgentIdentifier string `json:"agentIdentifier,omitempty"`
	// APIKeySecret (Datadog, New Relic) and ApplicationKeySecret (Datadog)
	// name the secrets holding the keys.
	APIKeySecret         string `json:"apiKeySecret,omitempty"`
	ApplicationKeySecret string `json:"applicationKeySecret,omitempty"`
	// AccountID (New Relic) is the account NRQL queries run in.
	AccountID int64 `json:"accountId,omitempty"`
}

// Auth is how Prometheus is authenticated.
type Auth struct {
	Type string `json:"type"`
	// Basic: the user name (Username, or UsernameSecret naming the secret
	// that holds it) and PasswordSecret.
	Username       string `json:"username,omitempty"`
	UsernameSecret string `json:"usernameSecret,omitempty"`
	PasswordSecret string `json:"passwordSecret,omitempty"`
	// TokenSecret for bearer.
	TokenSecret string `json:"tokenSecret,omitempty"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// Validate reports every problem of c at once, in words for the user.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !nameRE.MatchString(c.Name) {
		bad("name %q must be 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", c.Name)
	}
	checkURL := func(required bool) {
		if c.URL == "" {
			if required {
				bad("url is required for a %s provider", c.Type)
			}
			return
		}
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("url %q is not an http(s) URL", c.URL)
		}
	}
	only := func(field string, set bool) {
		if set {
			bad("%s does not apply to a %s provider", field, c.Type)
		}
	}
	switch c.Type {
	case TypePrometheus:
		checkURL(true)
		if a := c.Auth; a != nil {
			switch a.Type {
			case "", AuthNone:
			case AuthBasic:
				if (a.Username == "") == (a.UsernameSecret == "") || a.PasswordSecret == "" {
					bad("basic auth needs one of username and usernameSecret, and passwordSecret")
				}
			case AuthBearer:
				if a.TokenSecret == "" {
					bad("bearer auth needs tokenSecret")
				}
			default:
				bad("auth type %q is none of none, basic, bearer", a.Type)
			}
		}
		only("apiKeySecret", c.APIKeySecret != "")
		only("applicationKeySecret", c.ApplicationKeySecret != "")
		only("accountId", c.AccountID != 0)
	case TypeDatadog:
		checkURL(false)
		if c.APIKeySecret == "" || c.ApplicationKeySecret == "" {
			bad("a datadog provider needs apiKeySecret and applicationKeySecret")
		}
		only("auth", c.Auth != nil)
		only("agentIdentifier", c.AgentIdentifier != "")
		only("accountId", c.AccountID != 0)
	case TypeNewRelic:
		checkURL(false)
		if c.APIKeySecret == "" || c.AccountID <= 0 {
			bad("a newrelic provider needs apiKeySecret and accountId")
		}
		only("auth", c.Auth != nil)
		only("agentIdentifier", c.AgentIdentifier != "")
		only("applicationKeySecret", c.ApplicationKeySecret != "")
	default:
		bad("type %q is none of %s, %s, %s", c.Type, TypePrometheus, TypeDatadog, TypeNewRelic)
	}
	return errors.Join(errs...)
}

// Stored is c as the store keeps it.
func (c *Config) Stored(tenant string) (store.MetricProvider, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return store.MetricProvider{}, err
	}
	return store.MetricProvider{Tenant: tenant, Name: c.Name, Type: c.Type, Config: b}, nil
}

// FromStored reads a stored provider's Config.
func FromStored(p *store.MetricProvider) (Config, error) {
	var c Config
	if err := json.Unmarshal(p.Config, &c); err != nil {
		return c, fmt.Errorf("metric provider %s: stored settings do not decode: %w", p.Name, err)
	}
	c.Name, c.Type = p.Name, p.Type
	return c, nil
}
