package console_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sortie-cd/sortie/server"
	"github.com/sortie-cd/sortie/tlstest"
)

// TestConsoleOverTLS: Chromium logs in to the console of a server serving
// TLS with a certificate of a private CA (trusted by its public key's hash,
// as the test cannot add a CA to Chromium's store), over HTTP/2; the
// session cookie is Secure and the answers carry HSTS.
func TestConsoleOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir)
	leaf := ca.Issue(t, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	s := startServerWith(t, func(c *server.Config) { c.TLSCertFile, c.TLSKeyFile = leaf.CertFile, leaf.KeyFile })
	if !strings.HasPrefix(s.url, "https://") {
		t.Fatalf("server URL %s", s.url)
	}
	ctx := browser(t, chromedp.Flag("ignore-certificate-errors-spki-list", leaf.SPKI))
	login(t, ctx, s, s.adminID, s.adminSK)
	proto, err := chromedp.Run(ctx, chromedp.Evaluate[string](`performance.getEntriesByType('navigation')[0].nextHopProtocol`))
	if err != nil || proto != "h2" {
		t.Errorf("the page came over %q (%v), want h2", proto, err)
	}
	if got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.protocol`)); err != nil || got != "https:" {
		t.Errorf("location.protocol %q (%v)", got, err)
	}
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{s.url}})
	if err != nil {
		t.Fatalf("cookies: %v", err)
	}
	found := false
	for _, c := range res.Cookies {
		if c.Name == "sortie_session" {
			found = true
			if !c.Secure || !c.HTTPOnly {
				t.Errorf("the session cookie over https: Secure %v, HttpOnly %v; want both", c.Secure, c.HTTPOnly)
			}
		}
	}
	if !found {
		t.Fatal("no session cookie after the login")
	}
}
