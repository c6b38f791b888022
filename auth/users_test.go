package auth_test

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/store"
)

type userTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	Error        string `json:"error"`
	Description  string `json:"error_description"`
}

func userFixture(t *testing.T, opts auth.Options) *fixture {
	t.Helper()
	f := newFixture(t, auth.Options{})
	opts.Users, opts.Audit, opts.Tenants = f.store, f.store, f.store
	f.build(t, opts)
	return f
}

func post(t *testing.T, f *fixture, addr string, form url.Values) (int, userTokens) {
	t.Helper()
	w := tokenRequest(f.svc.TokenHandler(), addr, form, "", "")
	var b userTokens
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		t.Fatalf("%d %q: %v", w.Code, w.Body, err)
	}
	return w.Code, b
}

func passwordForm(username, password, tenant string) url.Values {
	v := url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}
	if tenant != "" {
		v.Set("tenant", tenant)
	}
	return v
}

func TestPasswordGrant(t *testing.T) {
	f := userFixture(t, auth.Options{})
	ctx := t.Context()
	if err := f.store.CreateTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	const pw = "correct horse battery"
	if _, err := f.svc.CreateUser(ctx, "main", "alice", "Alice A.", pw, []string{"deployer"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateUser(ctx, "acme", "bob", "", pw+"!", []string{"viewer"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateUser(ctx, "main", "nopass", "", "", []string{"viewer"}); err != nil {
		t.Fatal(err)
	}

	code, b := post(t, f, "192.0.2.1:1", passwordForm("alice", pw, ""))
	if code != 200 || b.AccessToken == "" || !strings.HasPrefix(b.RefreshToken, "sortie_rt_") || b.ExpiresIn != int64(auth.DefaultTTL/time.Second) {
		t.Fatalf("login: %d %+v", code, b)
	}
	p, err := f.svc.Verify(b.AccessToken)
	if err != nil || p.ClientID != "user:alice" || p.Name != "Alice A." || p.Tenant != "main" || !slices.Equal(p.Roles, []string{"deployer"}) {
		t.Fatalf("alice's token: %+v, %v", p, err)
	}
	if u, ok := p.Username(); !ok || u != "alice" {
		t.Errorf("Username() = %q, %v", u, ok)
	}
	entries, err := f.store.ListAudit(ctx, "main", store.AuditFilter{Action: "login"})
	if err != nil || len(entries) != 1 || entries[0].Actor != "alice" || entries[0].ClientID != "user:alice" || entries[0].Remote != "192.0.2.1" {
		t.Errorf("audit of the login: %+v, %v", entries, err)
	}

	// bob is acme's: the tenant parameter picks it.
	if code, b := post(t, f, "192.0.2.1:1", passwordForm("bob", pw+"!", "acme")); code != 200 {
		t.Errorf("bob in acme: %d %+v", code, b)
	}
	// Every refusal reads the same.
	var bodies []string
	for name, form := range map[string]url.Values{
		"wrong password":        passwordForm("alice", pw+"x", ""),
		"unknown user":          passwordForm("carol", pw, ""),
		"another tenant's user": passwordForm("bob", pw+"!", ""),
		"no password set":       passwordForm("nopass", pw, ""),
		"unknown tenant":        passwordForm("alice", pw, "nowhere"),
	} {
		code, b := post(t, f, "192.0.2.2:1", form)
		if code != 400 || b.Error != "invalid_grant" || b.AccessToken != "" {
			t.Errorf("%s: %d %+v", name, code, b)
		}
		bodies = append(bodies, b.Description)
	}
	slices.Sort(bodies)
	if len(slices.Compact(slices.Clone(bodies))) != 1 {
		t.Errorf("refusals differ: %q", bodies)
	}
}

func TestPasswordGrantLimitsFailuresPerUser(t *testing.T) {
	f := userFixture(t, auth.Options{ClientLimit: auth.Limit{Rate: 1.0 / 60, Burst: 2}})
	const pw = "correct horse battery"
	if _, err := f.svc.CreateUser(t.Context(), "main", "alice", "", pw, []string{"deployer"}); err != nil {
		t.Fatal(err)
	}
	for i, addr := range []string{"192.0.2.2:1", "192.0.2.2:2"} {
		if code, _ := post(t, f, addr, passwordForm("alice", "guess-guess-guess", "")); code != 400 {
			t.Fatalf("failure %d: %d", i, code)
		}
	}
	// The right password too is refused from that address once the
	// failures are spent.
	w := tokenRequest(f.svc.TokenHandler(), "192.0.2.2:3", passwordForm("alice", pw, ""), "", "")
	if w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("after the burst: %d %s", w.Code, w.Body)
	}
	f.clock.Advance(time.Minute)
	if code, b := post(t, f, "192.0.2.2:3", passwordForm("alice", pw, "")); code != 200 {
		t.Errorf("a minute later: %d %+v", code, b)
	}
}

func TestRefreshTokens(t *testing.T) {
	f := userFixture(t, auth.Options{RefreshTTL: time.Hour})
	ctx := t.Context()
	const pw = "correct horse battery"
	if _, err := f.svc.CreateUser(ctx, "main", "alice", "", pw, []string{"deployer"}); err != nil {
		t.Fatal(err)
	}
	login := func() string {
		t.Helper()
		code, b := post(t, f, "192.0.2.1:1", passwordForm("alice", pw, ""))
		if code != 200 {
			t.Fatalf("login: %d %+v", code, b)
		}
		return b.RefreshToken
	}
	refresh := func(tok string) (int, userTokens) {
		return post(t, f, "192.0.2.1:1", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}})
	}
	first := login()

	// Rotation: a refresh token is used once; the new roles apply.
	if err := f.svc.SetUserRoles(ctx, "main", "alice", []string{"viewer"}); err != nil {
		t.Fatal(err)
	}
	code, b := refresh(first)
	if code != 200 || b.RefreshToken == "" || b.RefreshToken == first {
		t.Fatalf("refresh: %d %+v", code, b)
	}
	if p, err := f.svc.Verify(b.AccessToken); err != nil || !slices.Equal(p.Roles, []string{"viewer"}) || p.ClientID != "user:alice" {
		t.Errorf("refreshed token: %+v, %v", p, err)
	}
	if code, b := refresh(first); code != 400 || b.Error != "invalid_grant" {
		t.Errorf("the used token again: %d %+v", code, b)
	}
	second := b.RefreshToken

	// Revocation (RFC 7009): 200 whatever the token.
	for _, tok := range []string{second, "sortie_rt_nothing.x", "junk"} {
		r := httptest.NewRequest("POST", auth.RevokePath, strings.NewReader(url.Values{"token": {tok}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = "192.0.2.1:1"
		w := httptest.NewRecorder()
		f.svc.RevokeHandler().ServeHTTP(w, r)
		if w.Code != 200 {
			t.Errorf("revoke %q: %d %s", tok, w.Code, w.Body)
		}
	}
	if code, _ := refresh(second); code != 400 {
		t.Errorf("a revoked token: %d", code)
	}

	// Expiry.
	third := login()
	f.clock.Advance(time.Hour + time.Second)
	if code, _ := refresh(third); code != 400 {
		t.Errorf("an expired token: %d", code)
	}

	// A new password and a deleted user end every session.
	fourth := login()
	if err := f.svc.SetPassword(ctx, "main", "alice", pw+" again"); err != nil {
		t.Fatal(err)
	}
	if code, _ := refresh(fourth); code != 400 {
		t.Errorf("a token from before the new password: %d", code)
	}
	if code, _ := post(t, f, "192.0.2.1:1", passwordForm("alice", pw, "")); code != 400 {
		t.Errorf("the old password: %d", code)
	}
	code, b = post(t, f, "192.0.2.1:1", passwordForm("alice", pw+" again", ""))
	if code != 200 {
		t.Fatalf("the new password: %d %+v", code, b)
	}
	if err := f.svc.DeleteUser(ctx, "main", "alice"); err != nil {
		t.Fatal(err)
	}
	if code, _ := refresh(b.RefreshToken); code != 400 {
		t.Errorf("a deleted user's token: %d", code)
	}
	// A tampered secret half is refused and spends the token.
	fifth := func() string {
		if _, err := f.svc.CreateUser(ctx, "main", "alice", "", pw, []string{"viewer"}); err != nil {
			t.Fatal(err)
		}
		return login()
	}()
	if code, _ := refresh(fifth[:len(fifth)-2] + "xx"); code != 400 {
		t.Errorf("a tampered token: %d", code)
	}
}

func TestUserValidation(t *testing.T) {
	f := userFixture(t, auth.Options{})
	ctx := t.Context()
	var inv *auth.InvalidError
	for _, tc := range []struct{ username, password string }{
		{"Alice", "correct horse battery"},
		{"al ice", "correct horse battery"},
		{"alice", "short"},
		{"alice", strings.Repeat("x", auth.MaxPasswordLen+1)},
	} {
		if _, err := f.svc.CreateUser(ctx, "main", tc.username, "", tc.password, []string{"viewer"}); !errors.As(err, &inv) {
			t.Errorf("CreateUser(%q, %d chars) = %v, want an InvalidError", tc.username, len(tc.password), err)
		}
	}
	if _, err := f.svc.CreateUser(ctx, "main", "alice", "", "correct horse battery", []string{"viewer"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateUser(ctx, "main", "alice", "", "correct horse battery", []string{"viewer"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a second alice: %v", err)
	}
	if err := f.svc.ChangePassword(ctx, "main", "alice", "wrong password!", "a new long password"); !errors.Is(err, auth.ErrWrongPassword) {
		t.Errorf("ChangePassword with a wrong current one: %v", err)
	}
	if err := f.svc.ChangePassword(ctx, "main", "alice", "correct horse battery", "a new long password"); err != nil {
		t.Errorf("ChangePassword: %v", err)
	}
}
