package console_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sortie-cd/sortie/auth/sso"
	"github.com/sortie-cd/sortie/auth/sso/ssotest"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/server"
)

// Single sign-on in Chromium against a real OpenID Connect provider (the
// zitadel/oidc example server): the console's button, the provider's own
// login page, the code flow with PKCE back to the console, a session whose
// principal has the roles the user's groups map to (checked through the
// API with the session's token), and the user provisioned just in time.
func TestSSOCodeFlowInBrowser(t *testing.T) {
	addr := ssotest.FreeAddr(t)
	issuer := "http://" + addr + "/"
	srv := clienttest.Start(t, server.Config{DataDir: filepath.Join(t.TempDir(), "data"), SSO: &sso.Config{
		Issuer: issuer, ClientID: "sortie-web", ClientSecret: "web-secret", Name: "Example IdP",
		Mappings: []sso.Mapping{{Group: "ops", Tenant: "main", Roles: []string{"deployer"}}, {Group: "leads", Tenant: "main", Roles: []string{"release-manager"}}},
	}})
	ssotest.StartOn(t, addr, []ssotest.Client{{ID: "sortie-web", Secret: "web-secret", Kind: "web", RedirectURIs: []string{srv.URL + "/login/sso/callback"}}},
		[]ssotest.User{{ID: "u1", Username: "dana", Password: "dana-password", FirstName: "Dana", LastName: "Ops", Email: "dana@example.test", Groups: []string{"ops", "leads"}}})

	ctx := browser(t)
	do(t, ctx, "log in with single sign-on",
		chromedp.Navigate(srv.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#login-sso")),
		clickLoad("#login-sso"),
		// The provider's own login page.
		chromedp.WaitVisible(chromedp.CSS("input[name=password]")),
		chromedp.SendKeys(chromedp.CSS("input[name=username]"), "dana"),
		chromedp.SendKeys(chromedp.CSS("input[name=password]"), "dana-password"),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		// Back in the console, signed in.
		chromedp.WaitVisible(chromedp.CSS("#filters")),
	)
	if got := text(t, ctx, "header"); !strings.Contains(got, "dana") {
		t.Errorf("the header does not name dana: %q", got)
	}
	// The session's token is a Sortie token of dana with the mapped roles.
	cookies, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cookies, "sortie_session") {
		t.Error("the session cookie is readable by scripts")
	}
	token := sessionToken(t, ctx, srv.URL)
	c, _ := client.New(client.Options{Server: srv.URL, Token: client.Token{AccessToken: token}})
	acct, err := c.Account(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if acct.Username != "dana" || acct.Tenant != "main" || !slices.Equal(acct.Roles, []string{"deployer", "release-manager"}) {
		t.Errorf("the console session's principal: %+v", acct)
	}
}

// sessionToken reads the HttpOnly session cookie through the DevTools
// protocol, as only the browser itself can.
func sessionToken(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
	if err != nil {
		t.Fatalf("cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == "sortie_session" {
			if !c.HTTPOnly {
				t.Error("the session cookie is not HttpOnly")
			}
			return c.Value
		}
	}
	t.Fatal("no session cookie after the login")
	return ""
}
