package agent

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/store"
)

// relayTarget is an HTTP server the relay tests call through the agent.
func relayTarget(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func relayClient(t *testing.T, e *env, tenant, id string) *RelayClient {
	t.Helper()
	c, err := e.hub.Relay(tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRelayRoundTrip(t *testing.T) {
	e := newEnv(t)
	e.startAgent("prod", newFakeExec())
	e.waitHub("prod connects", e.connected("prod"))
	target := relayTarget(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Echo-Method", r.Method)
		w.Header().Set("X-Echo-Auth", r.Header.Get("Authorization"))
		w.Header().Set("X-Echo-Relayed-By", r.Header.Get(RelayedByHeader))
		w.WriteHeader(http.StatusAccepted)
		w.Write(append([]byte("got "), b...))
	})
	req, _ := http.NewRequestWithContext(t.Context(), "POST", target.URL+"/hook?x=1", strings.NewReader(`{"a":1}`))
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := relayClient(t, e, store.DefaultTenant, "prod").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || string(body) != `got {"a":1}` {
		t.Errorf("response %d %q", resp.StatusCode, body)
	}
	for k, want := range map[string]string{"X-Echo-Method": "POST", "X-Echo-Auth": "Bearer s3cret", "X-Echo-Relayed-By": "prod"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestRelayLimits(t *testing.T) {
	// A 10 MiB response is one message on the stream, which must cross
	// within three heartbeat intervals: not the 150 ms of the other tests
	// on a busy machine.
	e := newEnvHeartbeat(t, 2*time.Second)
	e.startAgent("prod", newFakeExec())
	e.waitHub("prod connects", e.connected("prod"))
	hits := make(chan string, 10)
	cancelled := make(chan struct{}, 1)
	target := relayTarget(t, func(w http.ResponseWriter, r *http.Request) {
		hits <- r.URL.Path
		switch r.URL.Path {
		case "/big":
			w.Write(bytes.Repeat([]byte("x"), MaxRelayResponseBody+1))
		case "/limit":
			w.Write(bytes.Repeat([]byte("x"), MaxRelayResponseBody))
		case "/slow":
			select {
			case <-r.Context().Done():
				cancelled <- struct{}{}
			case <-time.After(10 * time.Second):
			}
		}
	})
	c := relayClient(t, e, store.DefaultTenant, "prod")

	// A request body over the limit is refused before it leaves the server.
	req, _ := http.NewRequest("POST", target.URL+"/upload", bytes.NewReader(make([]byte, MaxRelayRequestBody+1)))
	if _, err := c.Do(req); err == nil || !strings.Contains(err.Error(), "over the 1 MiB limit") {
		t.Errorf("request body over the limit: err = %v", err)
	}
	// A response body at the limit comes back whole; one byte more fails.
	req, _ = http.NewRequest("GET", target.URL+"/limit", nil)
	if resp, err := c.Do(req); err != nil || resp.ContentLength != MaxRelayResponseBody {
		t.Errorf("response body at the limit: %v, %v", resp, err)
	}
	req, _ = http.NewRequest("GET", target.URL+"/big", nil)
	if _, err := c.Do(req); err == nil || !strings.Contains(err.Error(), "over the 10 MiB limit") {
		t.Errorf("response body over the limit: err = %v", err)
	}
	// The request's deadline is the agent's too: the call fails at it and
	// is abandoned on the agent's side. Which side's message arrives first
	// (the agent's "no answer within" or the caller's own deadline) is a
	// race both ways legitimately win on a loaded machine; either says no
	// answer came.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "GET", target.URL+"/slow", nil)
	start := time.Now()
	if _, err := c.Do(req); err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Errorf("slow call: err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("slow call took %s to fail", d)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Error("the agent did not abandon the slow call")
	}
	close(hits)
	var paths []string
	for p := range hits {
		paths = append(paths, p)
	}
	if got := strings.Join(paths, " "); got != "/limit /big /slow" {
		t.Errorf("calls that reached the target: %s", got)
	}
}

func TestRelayNeedsTheAgentOfTheTenant(t *testing.T) {
	e := newEnv(t)
	target := relayTarget(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the target was called: %s", r.URL)
	})
	req, _ := http.NewRequest("GET", target.URL, nil)
	if _, err := relayClient(t, e, store.DefaultTenant, "prod").Do(req); err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Errorf("no agent: err = %v", err)
	}
	e.startAgent("prod", newFakeExec())
	e.waitHub("prod connects", e.connected("prod"))
	req, _ = http.NewRequest("GET", target.URL, nil)
	if _, err := relayClient(t, e, "other-tenant", "prod").Do(req); err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Errorf("another tenant's agent: err = %v", err)
	}
	if _, err := e.hub.Relay(store.DefaultTenant, "no/such"); err == nil {
		t.Error("an invalid identifier was accepted")
	}
	req, _ = http.NewRequest("GET", "file:///etc/passwd", nil)
	if _, err := relayClient(t, e, store.DefaultTenant, "prod").Do(req); err == nil {
		t.Error("a file URL was relayed")
	}
}
