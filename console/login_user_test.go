package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/server"
)

var csrfValue = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// formClient is a cookie-keeping HTTP client that does not follow redirects.
func formClient(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, b *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := b.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// A local user logs in to the console with the username and password form,
// through a real server: the token endpoint's password grant in process.
func TestConsolePasswordLogin(t *testing.T) {
	srv := clienttest.Start(t, server.Config{})
	admin, _ := client.New(client.Options{Server: srv.URL, ClientID: srv.Credentials.ClientID, ClientSecret: srv.Credentials.ClientSecret})
	const pw = "console password 123"
	if _, err := admin.CreateUser(context.Background(), api.CreateUserRequest{Username: "carol", Password: pw, Roles: []string{"viewer"}}); err != nil {
		t.Fatal(err)
	}
	login := func(b *http.Client, password string) *http.Response {
		t.Helper()
		_, page := get(t, b, srv.URL+"/login")
		if !strings.Contains(page, `action="/login/password"`) || strings.Contains(page, `id="login-sso"`) {
			t.Fatalf("the login page has no password form, or an SSO button without SSO:\n%s", page)
		}
		m := csrfValue.FindStringSubmatch(page)
		if m == nil {
			t.Fatal("no CSRF token on the login page")
		}
		resp, err := b.PostForm(srv.URL+"/login/password", url.Values{"csrf": {m[1]}, "username": {"carol"}, "password": {password}, "next": {"/settings/credentials"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	b := formClient(t)
	if resp := login(b, "wrong password!!"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("wrong password: %d", resp.StatusCode)
	}
	resp := login(b, pw)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/settings/credentials" {
		t.Fatalf("login: %d %v", resp.StatusCode, resp.Header)
	}
	resp, page := get(t, b, srv.URL+"/")
	if resp.StatusCode != 200 || !strings.Contains(page, "carol") {
		t.Errorf("the list page after login: %d, carol not shown", resp.StatusCode)
	}
	// A form posted without the login page's CSRF cookie is refused.
	resp, err := formClient(t).PostForm(srv.URL+"/login/password", url.Values{"csrf": {"x"}, "username": {"carol"}, "password": {pw}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("login without the CSRF cookie: %d", resp.StatusCode)
	}
	// The login is in the audit log.
	entries, err := admin.ListAudit(context.Background(), client.AuditOptions{Action: "login", Actor: "carol"})
	if err != nil || len(entries) != 1 {
		t.Errorf("audit of carol's logins: %+v, %v", entries, err)
	}
}

// TestLoginNeverRedirectsOffSite logs in to a real server with a next
// parameter crafted to leave the site (the attack of issue 16 item 10:
// "/%09/evil.example" once passed), through both login forms: the redirect
// after a good login stays on this site every time.
func TestLoginNeverRedirectsOffSite(t *testing.T) {
	srv := clienttest.Start(t, server.Config{})
	for _, next := range []string{"/\t/evil.example", "//evil.example", "/\\evil.example", "https://evil.example/", "/%09/evil.example", "javascript:alert(1)", "/\r\n/evil.example"} {
		b := formClient(t)
		_, page := get(t, b, srv.URL+"/login?next="+url.QueryEscape(next))
		m := csrfValue.FindStringSubmatch(page)
		if m == nil {
			t.Fatal("no CSRF token on the login page")
		}
		resp, err := b.PostForm(srv.URL+"/login", url.Values{"csrf": {m[1]}, "client_id": {srv.Credentials.ClientID}, "client_secret": {srv.Credentials.ClientSecret}, "next": {next}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		u, err := url.Parse(loc)
		if resp.StatusCode != http.StatusSeeOther || err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(loc, "/") ||
			strings.HasPrefix(loc, "//") || strings.ContainsAny(loc, "\\\t\r\n") {
			t.Errorf("login with next=%q: %d, redirected to %q, want a path on this site", next, resp.StatusCode, loc)
		}
	}
}
