package sso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/sortie-cd/sortie/auth"
)

// Config is the server's single sign-on configuration.
type Config struct {
	// Issuer is the provider's issuer URL (discovery is at
	// Issuer/.well-known/openid-configuration); required.
	Issuer string
	// ClientID and ClientSecret are Sortie's client at the provider; the
	// same client serves the console's code flow and the CLI's device
	// flow. Required.
	ClientID, ClientSecret string
	// RedirectURL is the console's callback, <public URL>/login/sso/callback.
	RedirectURL string
	// Scopes asked for besides openid; nil means profile and email.
	Scopes []string
	// GroupsClaim names the ID token claim holding the user's groups;
	// empty means "groups".
	GroupsClaim string
	// Mappings give groups a tenant and roles: a user gets the roles of
	// every mapping of its groups, which must all name one tenant. A user
	// with no mapped group is refused.
	Mappings []Mapping
	// Name is shown on the console's button; empty means the issuer's host.
	Name string
	// HTTPClient talks to the provider; nil means one with a 30 s timeout.
	HTTPClient *http.Client
}

// Mapping is one group's tenant and roles.
type Mapping struct {
	Group  string
	Tenant string
	Roles  []string
}

// ParseMapping reads "GROUP=TENANT:ROLE[,ROLE...]", the server flag's form.
func ParseMapping(s string) (Mapping, error) {
	group, rest, ok := strings.Cut(s, "=")
	tenant, roles, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || group == "" || tenant == "" || roles == "" {
		return Mapping{}, fmt.Errorf("group mapping %q: want GROUP=TENANT:ROLE[,ROLE...]", s)
	}
	m := Mapping{Group: group, Tenant: tenant}
	for _, r := range strings.Split(roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			m.Roles = append(m.Roles, r)
		}
	}
	return m, nil
}

// Client is single sign-on with one provider. Discovery happens on first
// use and is retried until it succeeds, so a provider that is down when
// Sortie starts delays logins, not the server.
type Client struct {
	cfg Config
	hc  *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
	// used holds the device codes already exchanged, until they expire:
	// a code gives one login, even where the provider would answer again.
	used map[string]time.Time
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	switch {
	case cfg.Issuer == "" || cfg.ClientID == "" || cfg.ClientSecret == "":
		return nil, errors.New("sso: an issuer URL, a client id and a client secret are required")
	case len(cfg.Mappings) == 0:
		return nil, errors.New("sso: map at least one group to a tenant and roles, or nobody can log in")
	}
	if cfg.Scopes == nil {
		cfg.Scopes = []string{"profile", "email"}
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if cfg.Name == "" {
		if u, err := url.Parse(cfg.Issuer); err == nil {
			cfg.Name = u.Host
		}
	}
	c := &Client{cfg: cfg, hc: cfg.HTTPClient}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 30 * time.Second}
	}
	return c, nil
}

// Name is the provider's name for the console's button.
func (c *Client) Name() string { return c.cfg.Name }

func (c *Client) discover(ctx context.Context) (*oidc.Provider, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.provider, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, c.hc), c.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("sso: discovery at %s: %w", c.cfg.Issuer, err)
	}
	c.provider = p
	return p, nil
}

func (c *Client) oauth2(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID: c.cfg.ClientID, ClientSecret: c.cfg.ClientSecret, RedirectURL: c.cfg.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: append([]string{oidc.ScopeOpenID}, c.cfg.Scopes...),
	}
}

// AuthCodeURL is the provider's authorization URL for the console's code
// flow with PKCE (S256). Discovery failing leaves an URL of the console's
// own that explains it.
func (c *Client) AuthCodeURL(state, nonce, verifier string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := c.discover(ctx)
	if err != nil {
		return "/login/sso/callback?state=" + url.QueryEscape(state) + "&error=provider_unreachable&error_description=" + url.QueryEscape("the identity provider could not be reached; try again later")
	}
	return c.oauth2(p).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
}

// Exchange redeems the console's authorization code and returns the
// verified identity.
func (c *Client) Exchange(ctx context.Context, code, verifier, nonce string) (auth.Identity, error) {
	p, err := c.discover(ctx)
	if err != nil {
		return auth.Identity{}, err
	}
	tok, err := c.oauth2(p).Exchange(oidc.ClientContext(ctx, c.hc), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return auth.Identity{}, fmt.Errorf("sso: redeem the authorization code: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return auth.Identity{}, errors.New("sso: the provider's answer has no ID token")
	}
	return c.identity(ctx, p, raw, nonce)
}

// identity verifies an ID token and maps it.
func (c *Client) identity(ctx context.Context, p *oidc.Provider, raw, nonce string) (auth.Identity, error) {
	idt, err := p.Verifier(&oidc.Config{ClientID: c.cfg.ClientID}).Verify(oidc.ClientContext(ctx, c.hc), raw)
	if err != nil {
		return auth.Identity{}, fmt.Errorf("sso: verify the ID token: %w", err)
	}
	if nonce != "" && idt.Nonce != nonce {
		return auth.Identity{}, errors.New("sso: the ID token's nonce is not this login's")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return auth.Identity{}, fmt.Errorf("sso: ID token claims: %w", err)
	}
	return c.Map(idt.Issuer, idt.Subject, claims)
}

var notUsername = regexp.MustCompile(`[^a-z0-9._@+-]+`)

// Map turns verified claims into an identity: the username from
// preferred_username, else email, else the subject; the tenant and roles
// from the groups claim and the mappings.
func (c *Client) Map(issuer, subject string, claims map[string]any) (auth.Identity, error) {
	str := func(k string) string { s, _ := claims[k].(string); return s }
	id := auth.Identity{Issuer: issuer, Subject: subject, Name: str("name")}
	for _, cand := range []string{str("preferred_username"), str("email"), "sso-" + subject} {
		u := strings.Trim(notUsername.ReplaceAllString(strings.ToLower(cand), "-"), "-._@+")
		if cand != "" && auth.CheckUsername(u) == nil {
			id.Username = u
			break
		}
	}
	var groups []string
	switch g := claims[c.cfg.GroupsClaim].(type) {
	case []any:
		for _, v := range g {
			if s, ok := v.(string); ok {
				groups = append(groups, s)
			}
		}
	case string:
		groups = []string{g}
	}
	for _, m := range c.cfg.Mappings {
		if !slices.Contains(groups, m.Group) {
			continue
		}
		if id.Tenant != "" && id.Tenant != m.Tenant {
			return auth.Identity{}, &auth.InvalidError{Message: fmt.Sprintf("your groups map to tenants %s and %s; an administrator must map them to one", id.Tenant, m.Tenant)}
		}
		id.Tenant = m.Tenant
		for _, r := range m.Roles {
			if !slices.Contains(id.Roles, r) {
				id.Roles = append(id.Roles, r)
			}
		}
	}
	if id.Tenant == "" {
		return auth.Identity{}, &auth.InvalidError{Message: fmt.Sprintf("none of your groups (claim %q) is mapped to a Sortie tenant; ask an administrator", c.cfg.GroupsClaim)}
	}
	slices.Sort(id.Roles)
	return id, nil
}

// DeviceAuthorization starts a device login at the provider
// (auth.SSO).
func (c *Client) DeviceAuthorization(ctx context.Context) (auth.DeviceAuthorization, error) {
	p, err := c.discover(ctx)
	if err != nil {
		return auth.DeviceAuthorization{}, err
	}
	if p.Endpoint().DeviceAuthURL == "" {
		return auth.DeviceAuthorization{}, errors.New("sso: the provider offers no device authorization endpoint")
	}
	da, err := c.oauth2(p).DeviceAuth(oidc.ClientContext(ctx, c.hc))
	if err != nil {
		return auth.DeviceAuthorization{}, fmt.Errorf("sso: device authorization: %w", err)
	}
	out := auth.DeviceAuthorization{DeviceCode: da.DeviceCode, UserCode: da.UserCode, VerificationURI: da.VerificationURI,
		VerificationURIComplete: da.VerificationURIComplete, Interval: da.Interval}
	if !da.Expiry.IsZero() {
		out.ExpiresIn = int64(time.Until(da.Expiry).Seconds())
	}
	return out, nil
}

// PollDevice asks the provider's token endpoint once about a device code
// (auth.SSO). x/oauth2's DeviceAccessToken polls in a loop; Sortie polls
// once per request of the CLI, which keeps the pace.
func (c *Client) PollDevice(ctx context.Context, deviceCode string) (auth.Identity, error) {
	p, err := c.discover(ctx)
	if err != nil {
		return auth.Identity{}, err
	}
	form := url.Values{"grant_type": {auth.GrantDeviceCode}, "device_code": {deviceCode}, "client_id": {c.cfg.ClientID}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Endpoint().TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return auth.Identity{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(c.cfg.ClientID), url.QueryEscape(c.cfg.ClientSecret))
	resp, err := c.hc.Do(req)
	if err != nil {
		return auth.Identity{}, fmt.Errorf("sso: device token: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		IDToken string `json:"id_token"`
		Error   string `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(b, &body); err != nil {
		return auth.Identity{}, fmt.Errorf("sso: device token: %d, not JSON", resp.StatusCode)
	}
	switch body.Error {
	case "":
	case "authorization_pending":
		return auth.Identity{}, auth.ErrAuthorizationPending
	case "slow_down":
		return auth.Identity{}, auth.ErrSlowDown
	case "access_denied":
		return auth.Identity{}, auth.ErrAccessDenied
	case "expired_token":
		return auth.Identity{}, auth.ErrExpiredToken
	default:
		return auth.Identity{}, fmt.Errorf("sso: device token: the provider answered %d %s", resp.StatusCode, body.Error)
	}
	if resp.StatusCode != http.StatusOK || body.IDToken == "" {
		return auth.Identity{}, fmt.Errorf("sso: device token: %d without an ID token", resp.StatusCode)
	}
	if !c.useOnce(deviceCode) {
		return auth.Identity{}, auth.ErrExpiredToken
	}
	return c.identity(ctx, p, body.IDToken, "")
}

// useOnce records a device code's use, reporting false when it was used.
func (c *Client) useOnce(code string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.used == nil {
		c.used = map[string]time.Time{}
	}
	for k, exp := range c.used {
		if now.After(exp) {
			delete(c.used, k)
		}
	}
	if _, ok := c.used[code]; ok {
		return false
	}
	c.used[code] = now.Add(time.Hour)
	return true
}
