package agent

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sortie-cd/sortie/egress"
	"github.com/sortie-cd/sortie/store"
)

// relayGet relays GET u through agent prod with the scope s.
func relayGet(t *testing.T, e *env, u string, s egress.Scope) (string, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(egress.WithScope(t.Context(), s), "GET", u, nil)
	resp, err := relayClient(t, e, store.DefaultTenant, "prod").Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), nil
}

// Without --relay-allow the agent refuses to connect to loopback, and
// says which flag allows it.
func TestRelayRefusesLoopbackByDefault(t *testing.T) {
	e := newEnv(t)
	e.relayAllow = nil
	e.startAgent("prod", newFakeExec())
	e.waitHub("prod connects", e.connected("prod"))
	hits := 0
	target := relayTarget(t, func(w http.ResponseWriter, _ *http.Request) { hits++; io.WriteString(w, "internal") })
	body, err := relayGet(t, e, target.URL+"/admin", egress.Scope{})
	if !egress.IsDenied(err) || hits != 0 || body != "" {
		t.Fatalf("relay to loopback = %q, %v (%d hits); want an egress refusal", body, err, hits)
	}
	for _, want := range []string{"refused by the egress policy", "loopback", "sortie agent --relay-allow 127.0.0.1/32"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// A relayed call holding a secret follows no redirect to another host, and
// one holding a host-restricted secret goes only to its hosts: the server
// refuses the first hop, the agent every next one.
func TestRelayScope(t *testing.T) {
	e := newEnv(t)
	e.startAgent("prod", newFakeExec())
	e.waitHub("prod connects", e.connected("prod"))
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "other host") }))
	other.Listener.Close()
	other.Listener = ln
	other.Start()
	t.Cleanup(other.Close)
	target := relayTarget(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/away" {
			http.Redirect(w, r, other.URL+"/x", http.StatusFound)
			return
		}
		io.WriteString(w, "target")
	})
	if body, err := relayGet(t, e, target.URL+"/away", egress.Scope{}); err != nil || body != "other host" {
		t.Errorf("a redirect without a secret: %q, %v", body, err)
	}
	if _, err := relayGet(t, e, target.URL+"/away", egress.Scope{Secret: true}); !egress.IsDenied(err) || !strings.Contains(err.Error(), "carries a secret") {
		t.Errorf("a redirect of a call with a secret to another host: %v", err)
	}
	host := strings.TrimPrefix(target.URL, "http://")
	restricted := egress.Scope{Secret: true, Restricted: []egress.Restriction{{Secret: "tok", Hosts: []string{host}}}}
	if body, err := relayGet(t, e, target.URL+"/here", restricted); err != nil || body != "target" {
		t.Errorf("to the secret's allowed host: %q, %v", body, err)
	}
	restricted.Secret = false // only the restriction stops the redirect
	if _, err := relayGet(t, e, target.URL+"/away", restricted); err == nil || !strings.Contains(err.Error(), "not an allowed host of secret tok") {
		t.Errorf("a redirect away from the secret's allowed host: %v", err)
	}
	if _, err := relayGet(t, e, other.URL+"/x", restricted); err == nil || !strings.Contains(err.Error(), "not an allowed host of secret tok") {
		t.Errorf("straight to another host: %v", err)
	}
}
