package sso_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/auth/sso"
	"github.com/sortie-cd/sortie/auth/sso/ssotest"
)

const callback = "http://127.0.0.1:1/login/sso/callback"

var mappings = []sso.Mapping{
	{Group: "ops", Tenant: "main", Roles: []string{"deployer"}},
	{Group: "leads", Tenant: "main", Roles: []string{"release-manager", "deployer"}},
	{Group: "acme-devs", Tenant: "acme", Roles: []string{"viewer"}},
}

func start(t *testing.T, clientID, kind string) (*ssotest.Provider, *sso.Client) {
	t.Helper()
	p := ssotest.Start(t, []ssotest.Client{{ID: clientID, Secret: "s3cret", Kind: kind, RedirectURIs: []string{callback}}}, []ssotest.User{
		{ID: "u1", Username: "dana", Password: "dana-password", FirstName: "Dana", LastName: "Ops", Email: "dana@example.test", Groups: []string{"ops", "leads"}},
		{ID: "u2", Username: "erin", Password: "erin-password", Email: "erin@example.test", Groups: []string{"marketing"}},
	})
	c, err := sso.New(sso.Config{Issuer: p.Issuer, ClientID: clientID, ClientSecret: "s3cret", RedirectURL: callback, Mappings: mappings})
	if err != nil {
		t.Fatal(err)
	}
	return p, c
}

// The device flow against the real provider: pending until a person
// approves the code on the provider's page, then a verified identity
// whose groups map to a tenant and roles.
func TestDeviceFlow(t *testing.T) {
	p, c := start(t, "sortie-cli", "device")
	ctx := t.Context()
	da, err := c.DeviceAuthorization(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if da.DeviceCode == "" || da.UserCode == "" || !strings.HasPrefix(da.VerificationURI, strings.TrimSuffix(p.Issuer, "/")) || da.ExpiresIn <= 0 {
		t.Fatalf("device authorization: %+v", da)
	}
	if _, err := c.PollDevice(ctx, da.DeviceCode); !errors.Is(err, auth.ErrAuthorizationPending) {
		t.Fatalf("before approval: %v", err)
	}
	if err := p.ApproveDevice(ctx, da.VerificationURI, da.UserCode, "dana", "dana-password"); err != nil {
		t.Fatal(err)
	}
	// Polling is the device flow itself (RFC 8628 section 3.5): nothing
	// tells the client that the person approved, so it asks again, and
	// it must wait the interval the provider gave (5 seconds more after a
	// slow_down) before it does. The approval is done, so the first poll
	// normally succeeds and this loop never waits.
	interval := time.Duration(max(da.Interval, 1)) * time.Second
	var id auth.Identity
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(interval) {
		id, err = c.PollDevice(ctx, da.DeviceCode)
		if errors.Is(err, auth.ErrSlowDown) {
			interval += 5 * time.Second
		}
		if !errors.Is(err, auth.ErrAuthorizationPending) && !errors.Is(err, auth.ErrSlowDown) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	want := auth.Identity{Issuer: p.Issuer, Subject: "u1", Username: "dana", Name: "Dana Ops", Tenant: "main", Roles: []string{"deployer", "release-manager"}}
	if id.Name == "" {
		want.Name = "" // profile claims are left out of ID tokens issued with an access token
	}
	if diff := cmp.Diff(want, id); diff != "" {
		t.Errorf("identity (-want +got):\n%s", diff)
	}
	// A device code is good once.
	if _, err := c.PollDevice(ctx, da.DeviceCode); err == nil {
		t.Error("the device code worked twice")
	}
}

// The code flow with PKCE, driven with net/http through the provider's
// own login form (the console's test drives it in Chromium).
func TestCodeFlow(t *testing.T) {
	_, c := start(t, "sortie-web", "web")
	ctx := t.Context()
	jar, _ := cookiejar.New(nil)
	var landed *url.URL
	hc := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), callback) {
			landed = req.URL
			return http.ErrUseLastResponse
		}
		return nil
	}}
	const state, nonce, verifier = "state-123", "nonce-456", "verifier-0123456789-0123456789-0123456789-0123"
	authURL := c.AuthCodeURL(state, nonce, verifier)
	if !strings.Contains(authURL, "code_challenge_method=S256") {
		t.Fatalf("no PKCE in %s", authURL)
	}
	resp, err := hc.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The provider's login page carries the auth request id.
	id := resp.Request.URL.Query().Get("authRequestID")
	if id == "" {
		t.Fatalf("no login page: landed on %s", resp.Request.URL)
	}
	login := resp.Request.URL.ResolveReference(&url.URL{Path: "/login/username"})
	resp, err = hc.PostForm(login.String(), url.Values{"id": {id}, "username": {"dana"}, "password": {"dana-password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if landed == nil || landed.Query().Get("state") != state || landed.Query().Get("code") == "" {
		t.Fatalf("callback: %v", landed)
	}
	code := landed.Query().Get("code")
	if _, err := c.Exchange(ctx, code, "another-verifier-0123456789-0123456789-012345", nonce); err == nil {
		t.Error("the code was redeemed with another PKCE verifier")
	}
	got, err := c.Exchange(ctx, code, verifier, nonce)
	if err != nil {
		// A provider may burn the code on the failed attempt: that is
		// correct too, and the test says so.
		t.Skipf("the code was spent by the refused attempt (%v)", err)
	}
	if got.Username != "dana" || got.Tenant != "main" || !cmp.Equal(got.Roles, []string{"deployer", "release-manager"}) {
		t.Errorf("identity: %+v", got)
	}
}

func TestMap(t *testing.T) {
	c, err := sso.New(sso.Config{Issuer: "https://idp.example", ClientID: "x", ClientSecret: "y", Mappings: mappings})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		claims  map[string]any
		want    auth.Identity
		invalid bool
	}{
		"roles of every group, once": {claims: map[string]any{"preferred_username": "Dana", "groups": []any{"ops", "leads", "other"}},
			want: auth.Identity{Issuer: "i", Subject: "s", Username: "dana", Tenant: "main", Roles: []string{"deployer", "release-manager"}}},
		"email when no username": {claims: map[string]any{"email": "Fred@Example.test", "groups": "acme-devs"},
			want: auth.Identity{Issuer: "i", Subject: "s", Username: "fred@example.test", Tenant: "acme", Roles: []string{"viewer"}}},
		"two tenants":     {claims: map[string]any{"preferred_username": "x", "groups": []any{"ops", "acme-devs"}}, invalid: true},
		"no mapped group": {claims: map[string]any{"preferred_username": "x", "groups": []any{"marketing"}}, invalid: true},
		"no groups claim": {claims: map[string]any{"preferred_username": "x"}, invalid: true},
	} {
		got, err := c.Map("i", "s", tc.claims)
		var inv *auth.InvalidError
		if tc.invalid != errors.As(err, &inv) || (!tc.invalid && err != nil) {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); !tc.invalid && diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	if _, err := sso.ParseMapping("ops=main:deployer,release-manager"); err != nil {
		t.Error(err)
	}
	if _, err := sso.ParseMapping("ops=main"); err == nil {
		t.Error("a mapping without roles parsed")
	}
	_ = context.Background
}
