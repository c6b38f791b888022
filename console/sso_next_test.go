package console_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/auth/sso"
	"github.com/sortie-cd/sortie/auth/sso/ssotest"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/server"
)

// TestSSOCallbackNeverRedirectsOffSite (issue 16 item 10, the single
// sign-on side) runs the code flow against a real server and a real OpenID
// Connect provider with a plain HTTP client. The start refuses a next that
// leaves the site; and when the flow's cookie is made to carry one anyway
// (a cookie planted before the provider sends the browser back), the
// callback, which logs the user in, still sends it only to this site.
func TestSSOCallbackNeverRedirectsOffSite(t *testing.T) {
	addr := ssotest.FreeAddr(t)
	issuer := "http://" + addr + "/"
	srv := clienttest.Start(t, server.Config{DataDir: filepath.Join(t.TempDir(), "data"), SSO: &sso.Config{
		Issuer: issuer, ClientID: "sortie-web", ClientSecret: "web-secret", Name: "Example IdP",
		Mappings: []sso.Mapping{{Group: "ops", Tenant: "main", Roles: []string{"viewer"}}},
	}})
	ssotest.StartOn(t, addr, []ssotest.Client{{ID: "sortie-web", Secret: "web-secret", Kind: "web", RedirectURIs: []string{srv.URL + "/login/sso/callback"}}},
		[]ssotest.User{{ID: "u1", Username: "dana", Password: "dana-password", FirstName: "Dana", LastName: "Ops", Email: "dana@example.test", Groups: []string{"ops"}}})
	base, _ := url.Parse(srv.URL)
	for _, next := range []string{"/\t/evil.example", "//evil.example", "/\\evil.example", "https://evil.example/"} {
		jar, _ := cookiejar.New(nil)
		hc := &http.Client{Jar: jar, Timeout: 30 * time.Second}
		resp, err := hc.Get(srv.URL + "/login/sso?next=" + url.QueryEscape(next))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		authID := resp.Request.URL.Query().Get("authRequestID")
		if authID == "" {
			t.Fatalf("not at the provider's login page: %s", resp.Request.URL)
		}
		ssoURL := base.ResolveReference(&url.URL{Path: "/login/sso"})
		var planted bool
		for _, c := range jar.Cookies(ssoURL) {
			if c.Name != "sortie_sso" {
				continue
			}
			b, err := base64.RawURLEncoding.DecodeString(c.Value)
			parts := strings.Split(string(b), "\x00")
			if err != nil || len(parts) != 4 {
				t.Fatalf("the flow's cookie: %q", b)
			}
			if parts[3] != "" {
				t.Errorf("next %q was kept at the start as %q", next, parts[3])
			}
			// Plant the hostile next in the flow's own cookie.
			parts[3] = next
			jar.SetCookies(ssoURL, []*http.Cookie{{Name: "sortie_sso", Value: base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, "\x00"))), Path: "/login/sso"}})
			planted = true
		}
		if !planted {
			t.Fatal("no sortie_sso cookie after the start")
		}
		login, _ := url.Parse(issuer)
		resp, err = hc.PostForm(login.ResolveReference(&url.URL{Path: "/login/username"}).String(), url.Values{"id": {authID}, "username": {"dana"}, "password": {"dana-password"}})
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Request.URL.Path != "/login/sso/callback" || resp.StatusCode != 200 || !strings.Contains(string(page), "Signed in") {
			t.Fatalf("next %q: the flow ended at %s with %d:\n%.500s", next, resp.Request.URL, resp.StatusCode, page)
		}
		if !strings.Contains(string(page), `content="0;url=/"`) || strings.Contains(string(page), "evil.example") {
			t.Errorf("next %q: after single sign-on the page sends the browser to:\n%s", next, page)
		}
	}
}
