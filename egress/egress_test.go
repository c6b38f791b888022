package egress_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/sortie-cd/sortie/egress"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		ip   string
		want string
	}{
		{"127.0.0.1", egress.ReasonLoopback},
		{"127.8.9.10", egress.ReasonLoopback},
		{"::1", egress.ReasonLoopback},
		{"::ffff:127.0.0.1", egress.ReasonLoopback},
		{"64:ff9b::7f00:1", egress.ReasonLoopback},
		{"169.254.169.254", egress.ReasonMetadata},
		{"::ffff:169.254.169.254", egress.ReasonMetadata},
		{"fd00:ec2::254", egress.ReasonMetadata},
		{"100.100.100.200", egress.ReasonMetadata},
		{"169.254.1.1", egress.ReasonLinkLocal},
		{"fe80::1", egress.ReasonLinkLocal},
		{"0.0.0.0", egress.ReasonUnspecified},
		{"0.1.2.3", egress.ReasonUnspecified},
		{"::", egress.ReasonUnspecified},
		{"224.0.0.1", egress.ReasonMulticast},
		{"255.255.255.255", egress.ReasonMulticast},
		{"ff02::1", egress.ReasonMulticast},
		// Private ranges are the normal in-cluster targets.
		{"10.0.0.1", ""},
		{"172.16.5.4", ""},
		{"192.168.1.1", ""},
		{"fd00::1", ""},
		{"100.64.0.1", ""},
		{"93.184.216.34", ""},
		{"2001:db8::1", ""},
	} {
		if got := egress.Classify(netip.MustParseAddr(c.ip)); got != c.want {
			t.Errorf("Classify(%s) = %q, want %q", c.ip, got, c.want)
		}
	}
}

func TestPolicyCheck(t *testing.T) {
	self := netip.MustParseAddrPort("127.0.0.1:8080")
	p := &egress.Policy{Allow: egress.Loopback, Self: []netip.AddrPort{self}, AllowFlag: "sortie server --egress-allow"}
	ap := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	if err := p.Check(ap("127.0.0.1:9090")); err != nil {
		t.Errorf("an allowed loopback address: %v", err)
	}
	if err := p.Check(ap("[::ffff:127.0.0.1]:8080")); !egress.IsDenied(err) || !strings.Contains(err.Error(), egress.ReasonSelf) {
		t.Errorf("the server's own address (mapped), allowed range or not: %v", err)
	}
	err := p.Check(ap("169.254.169.254:80"))
	if !egress.IsDenied(err) || !strings.Contains(err.Error(), "sortie server --egress-allow 169.254.169.254/32") {
		t.Errorf("metadata: %v, want a refusal that names the flag", err)
	}
	if err := (&egress.Policy{}).Check(ap("127.0.0.1:9090")); !egress.IsDenied(err) {
		t.Errorf("the zero policy allows loopback: %v", err)
	}
	if err := (&egress.Policy{}).Check(ap("10.1.2.3:443")); err != nil {
		t.Errorf("the zero policy refuses a private address: %v", err)
	}
}

func TestParseAllow(t *testing.T) {
	got, err := egress.ParseAllow([]string{"127.0.0.0/8, ::1", "10.1.2.3/8"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8"}
	if len(got) != len(want) {
		t.Fatalf("ParseAllow = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("item %d = %s, want %s", i, got[i], want[i])
		}
	}
	if _, err := egress.ParseAllow([]string{"localhost"}); err == nil || !strings.Contains(err.Error(), `"localhost" is not a CIDR range`) {
		t.Errorf("a name: %v", err)
	}
}

func TestListenAddrs(t *testing.T) {
	got, err := egress.ListenAddrs(netip.MustParseAddrPort("0.0.0.0:8080"))
	if err != nil {
		t.Fatal(err)
	}
	p := &egress.Policy{Allow: egress.Loopback, Self: got}
	if err := p.Check(netip.MustParseAddrPort("127.0.0.1:8080")); !egress.IsDenied(err) {
		t.Errorf("a listener on 0.0.0.0:8080 is reached at 127.0.0.1:8080: %v", err)
	}
	if err := p.Check(netip.MustParseAddrPort("127.0.0.1:8081")); err != nil {
		t.Errorf("another port: %v", err)
	}
}

// stand-in listens on ip (any 127/8 address reaches the loopback device on
// Linux) and answers h.
func standIn(t *testing.T, ip string, h http.Handler) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	s := httptest.NewUnstartedServer(h)
	s.Listener.Close()
	s.Listener = ln
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func get(t *testing.T, c *http.Client, ctx context.Context, u string) (string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), nil
}

func TestClientRefusesAtConnect(t *testing.T) {
	target := standIn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "internal") }))
	// A name that resolves to loopback: only the dialed address tells.
	byName := strings.Replace(target.URL, "127.0.0.1", "localhost", 1)
	c := (&egress.Policy{AllowFlag: "--egress-allow"}).Client(0)
	for _, u := range []string{target.URL, byName} {
		body, err := get(t, c, t.Context(), u)
		var d *egress.DeniedError
		if !errors.As(err, &d) || d.Reason != egress.ReasonLoopback || body != "" {
			t.Errorf("GET %s = %q, %v; want a loopback refusal", u, body, err)
		}
	}
	allowed := (&egress.Policy{Allow: egress.Loopback}).Client(0)
	if body, err := get(t, allowed, t.Context(), byName); err != nil || body != "internal" {
		t.Errorf("allowed: %q, %v", body, err)
	}
}

func TestRedirects(t *testing.T) {
	inner := standIn(t, "127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "inner") }))
	outer := standIn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/same" {
			http.Redirect(w, r, "/end", http.StatusFound)
			return
		}
		if r.URL.Path == "/end" {
			io.WriteString(w, "outer")
			return
		}
		http.Redirect(w, r, inner.URL+"/x", http.StatusFound)
	}))
	only := &egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	if _, err := get(t, only.Client(0), t.Context(), outer.URL); !egress.IsDenied(err) {
		t.Errorf("a redirect from an allowed host to a refused one: %v", err)
	}
	all := (&egress.Policy{Allow: egress.Loopback}).Client(0)
	if body, err := get(t, all, t.Context(), outer.URL); err != nil || body != "inner" {
		t.Errorf("a redirect, both allowed: %q, %v", body, err)
	}
	secret := egress.WithScope(t.Context(), egress.Scope{Secret: true})
	if _, err := get(t, all, secret, outer.URL); !egress.IsDenied(err) || !strings.Contains(err.Error(), "carries a secret") {
		t.Errorf("a request with a secret redirected to another host: %v", err)
	}
	if body, err := get(t, all, secret, outer.URL+"/same"); err != nil || body != "outer" {
		t.Errorf("a request with a secret redirected on its host: %q, %v", body, err)
	}
}

func TestScope(t *testing.T) {
	var s egress.Scope
	s.Add("plain", nil)
	s.Add("slack", []string{"hooks.slack.com", "*.example.com", "api.internal:8443"})
	if !s.Secret || len(s.Restricted) != 1 {
		t.Fatalf("scope = %+v", s)
	}
	for u, ok := range map[string]bool{
		"https://hooks.slack.com/services/x":   true,
		"https://HOOKS.slack.com./x":           true,
		"http://a.b.example.com/":              true,
		"https://example.com/":                 false,
		"https://api.internal:8443/":           true,
		"https://api.internal/":                false,
		"https://evil.test/?h=hooks.slack.com": false,
	} {
		pu, _ := url.Parse(u)
		if err := s.Check(pu); (err == nil) != ok {
			t.Errorf("Check(%s) = %v, want allowed %v", u, err, ok)
		}
	}
	pu, _ := url.Parse("https://evil.test/path?token=x")
	err := s.Check(pu)
	if err == nil || !strings.Contains(err.Error(), "evil.test:443") || !strings.Contains(err.Error(), "secret slack") || strings.Contains(err.Error(), "token") {
		t.Errorf("refusal = %v: want the host and the secret's name, never the path or query", err)
	}
	s.Add("other", []string{"hooks.slack.com"})
	pu, _ = url.Parse("https://x.example.com/")
	if err := s.Check(pu); err == nil {
		t.Error("two restricted secrets: a host only one allows is allowed")
	}
	for _, bad := range []string{"", "https://x.com", "x.com/path", "*", "a.*.com", "x.com:99999", "user@x.com", "a.com\x00b.com", "a .com"} {
		if egress.ValidateHost(bad) == nil {
			t.Errorf("ValidateHost(%q) accepted it", bad)
		}
	}
	for _, good := range []string{"x.com", "*.x.com", "x.com:8443", "10.0.0.1", "[::1]:80", "::1"} {
		if err := egress.ValidateHost(good); err != nil {
			t.Errorf("ValidateHost(%q) = %v", good, err)
		}
	}
}
