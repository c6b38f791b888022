package auth_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/store"
)

// TestRefusedAndRefreshLoginsAreAudited reproduces issue 16 item 15 for
// logins: failed logins and refresh-token logins left no audit entry.
// Each is now recorded with who was tried, from where and why it failed,
// in the tenant it names (the default tenant when it names none that
// exists), never with the secret, password or token tried.
func TestRefusedAndRefreshLoginsAreAudited(t *testing.T) {
	f := userFixture(t, auth.Options{})
	ctx := t.Context()
	if err := f.store.CreateTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	c, _ := f.credential(t, "acme", "deployer")
	const pw = "correct horse battery"
	if _, err := f.svc.CreateUser(ctx, "acme", "alice", "", pw, []string{"deployer"}); err != nil {
		t.Fatal(err)
	}
	const addr = "192.0.2.44:1234"
	client := func(id, secret string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	}
	refresh := func(tok string) url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}}
	}
	tried := []string{"wrong-secret-never-recorded", "wrong password never recorded", "sortie_rt_forged.never-recorded-never-recorded-never-recorded-x"}
	for _, form := range []url.Values{
		client(c.ClientID, tried[0]),
		client("no-such-client", tried[0]),
		passwordForm("alice", tried[1], "acme"),
		passwordForm("bob", tried[1], "acme"),
		passwordForm("alice", tried[1], "no-such-tenant"),
		refresh(tried[2]),
	} {
		if w := tokenRequest(f.svc.TokenHandler(), addr, form, "", ""); w.Code == 200 {
			t.Fatalf("%v: %d", form, w.Code)
		}
	}
	code, b := post(t, f, addr, passwordForm("alice", pw, "acme"))
	if code != 200 {
		t.Fatalf("login: %d", code)
	}
	if code, _ := post(t, f, addr, refresh(b.RefreshToken)); code != 200 {
		t.Fatalf("refresh: %d", code)
	}

	type entry struct {
		Actor, ClientID, Remote string
		Objects                 []string
	}
	entries := func(tenant, action string) []entry {
		t.Helper()
		es, err := f.store.ListAudit(ctx, tenant, store.AuditFilter{Action: action})
		if err != nil {
			t.Fatal(err)
		}
		var out []entry
		for i := len(es) - 1; i >= 0; i-- { // oldest first
			e := es[i]
			for _, secret := range append(tried, pw, b.RefreshToken) {
				if strings.Contains(strings.Join(append(e.Objects, e.Actor, e.ClientID), " "), secret) {
					t.Errorf("an audit entry holds what was tried: %+v", e)
				}
			}
			out = append(out, entry{e.Actor, e.ClientID, e.Remote, e.Objects})
		}
		return out
	}
	const remote = "192.0.2.44"
	if diff := cmp.Diff([]entry{
		{"ci", c.ClientID, remote, []string{c.ClientID, "wrong secret"}},
		{"alice", "user:alice", remote, []string{"user:alice", "wrong password"}},
		{"bob", "user:bob", remote, []string{"user:bob", "unknown user"}},
	}, entries("acme", auth.ActionLoginFailed)); diff != "" {
		t.Errorf("refused logins in acme (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]entry{
		{"", "no-such-client", remote, []string{"no-such-client", "unknown client id"}},
		{"alice", "user:alice", remote, []string{"user:alice", "unknown user"}},
		{"", "", remote, []string{"refresh_token", "bad refresh token"}},
	}, entries(store.DefaultTenant, auth.ActionLoginFailed)); diff != "" {
		t.Errorf("refused logins naming no tenant of theirs, in main (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]entry{
		{"alice", "user:alice", remote, []string{"user:alice"}},
		{"alice", "user:alice", remote, []string{"user:alice", "refresh_token"}},
	}, entries("acme", "login")); diff != "" {
		t.Errorf("logins in acme (-want +got):\n%s", diff)
	}
}
