package cli

import (
	"context"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/sortie-cd/sortie/auth/sso"
	"github.com/sortie-cd/sortie/auth/sso/ssotest"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/server"
)

// `sortie login --sso` against a real OpenID Connect provider (the
// zitadel/oidc example server, built from the module proxy): the device
// flow through Sortie, approved on the provider's own page; the user is
// provisioned just in time with the roles its groups map to, which the
// API then reports for the CLI's cached token.
func TestLoginSSODeviceFlow(t *testing.T) {
	dir := t.TempDir()
	isolateEnv(t, dir)
	p := ssotest.Start(t, []ssotest.Client{{ID: "sortie-cli", Secret: "cli-secret", Kind: "device"}}, []ssotest.User{
		{ID: "u1", Username: "dana", Password: "dana-password", FirstName: "Dana", LastName: "Ops", Email: "dana@example.test", Groups: []string{"ops", "leads"}},
		{ID: "u2", Username: "erin", Password: "erin-password", Email: "erin@example.test", Groups: []string{"marketing"}},
	})
	srv := clienttest.Start(t, server.Config{DataDir: filepath.Join(dir, "data"), SSO: &sso.Config{
		Issuer: p.Issuer, ClientID: "sortie-cli", ClientSecret: "cli-secret",
		Mappings: []sso.Mapping{{Group: "ops", Tenant: "main", Roles: []string{"deployer"}}, {Group: "leads", Tenant: "main", Roles: []string{"release-manager"}}},
	}})
	ctx := context.Background()
	code := regexp.MustCompile(`open (\S+)\s+and confirm the code (\S+)\.`)

	login := func(user, password string) result {
		t.Helper()
		b := &bgRun{out: newNotifyBuffer(), errOut: newNotifyBuffer(), done: make(chan struct{})}
		go func() {
			defer close(b.done)
			b.code = Main(ctx, []string{"login", "--server", srv.URL, "--sso"}, IOStreams{Out: b.out, ErrOut: b.errOut})
		}()
		b.errOut.waitFor(t, code, b.done)
		m := code.FindStringSubmatch(b.errOut.String())
		if err := p.ApproveDevice(ctx, m[1], m[2], user, password); err != nil {
			t.Fatal(err)
		}
		<-b.done
		return result{code: b.code, out: b.out.String(), errOut: b.errOut.String()}
	}

	r := login("dana", "dana-password")
	if r.code != 0 || !regexp.MustCompile(`Logged in to .* as user dana, tenant main, roles deployer, release-manager\.`).MatchString(r.out) {
		t.Fatalf("login --sso: %d\n%s\n%s", r.code, r.out, r.errOut)
	}
	// The cached session answers the API as dana, with the mapped roles.
	conn, err := resolveConnection(connOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := conn.client(IOStreams{})
	if err != nil {
		t.Fatal(err)
	}
	acct, err := c.Account(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if acct.Username != "dana" || acct.Tenant != "main" || !slices.Equal(acct.Roles, []string{"deployer", "release-manager"}) {
		t.Errorf("account of the SSO session: %+v", acct)
	}
	// dana was provisioned just in time, marked as the provider's.
	admin, _ := client.New(client.Options{Server: srv.URL, ClientID: srv.Credentials.ClientID, ClientSecret: srv.Credentials.ClientSecret})
	users, err := admin.ListUsers(ctx)
	if err != nil || len(users) != 1 || users[0].Username != "dana" || users[0].SSO != p.Issuer || users[0].HasPassword {
		t.Errorf("users after the SSO login: %+v, %v", users, err)
	}
	// erin's groups map to nothing: refused, with the reason.
	r = login("erin", "erin-password")
	if r.code == 0 || !regexp.MustCompile(`none of your groups`).MatchString(r.errOut) {
		t.Errorf("erin's login: %d\n%s\n%s", r.code, r.out, r.errOut)
	}
}
