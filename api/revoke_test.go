package api_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// ended waits for the server to end the stream, failing the test when an
// event comes first or the read's deadline (openStream's) passes.
func (c *sseClient) ended() {
	c.t.Helper()
	for {
		line, err := c.r.ReadString('\n')
		switch {
		case errors.Is(err, io.EOF):
			return
		case err != nil:
			c.t.Fatalf("the stream did not end: %v", err)
		case strings.HasPrefix(line, "id: "):
			c.t.Fatalf("an event after the stream should have ended: %q", line)
		}
	}
}

// TestEventStreamsEndWhenTheCredentialChanges reproduces issue 16 item 5
// for the API: a viewer's event streams were checked once, so deleting
// its credential or changing its roles left them open for good. Now both
// streams (tenant and pipeline) end at once, the token they were opened
// with is refused, and another viewer's stream goes on.
func TestEventStreamsEndWhenTheCredentialChanges(t *testing.T) {
	for name, change := range map[string]func(h *harness, admin, id string) response{
		"deleted": func(h *harness, admin, id string) response {
			return h.do("DELETE", "/api/v1/credentials/"+id, admin, nil)
		},
		"roles changed": func(h *harness, admin, id string) response {
			return h.do("PUT", "/api/v1/credentials/"+id+"/roles", admin, api.SetRolesRequest{Roles: []string{pipeline.RoleDeployer}})
		},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, func(o *api.Options) { o.Heartbeat = time.Hour })
			admin, _ := h.token(store.DefaultTenant, pipeline.RoleTenantAdmin)
			tok, c := h.token(store.DefaultTenant, pipeline.RoleViewer)
			bystander, _ := h.token(store.DefaultTenant, pipeline.RoleViewer)
			h.runner.add(samplePipeline(store.DefaultTenant, "p1", time.Now()))
			tenant := h.openStream("/api/v1/events", tok)
			one := h.openStream("/api/v1/pipelines/p1/events", tok)
			other := h.openStream("/api/v1/events", bystander)

			if resp := change(h, admin, c.ClientID); resp.status >= 300 {
				t.Fatalf("%s: %d %s", name, resp.status, resp.body)
			}
			tenant.ended()
			one.ended()
			resp := h.do("GET", "/api/v1/events", tok, nil, "Accept", "text/event-stream")
			if resp.status != 401 || !strings.Contains(string(resp.body), auth.ErrTokenRevoked.Error()) {
				t.Errorf("the stream again with the same token: %d %s, want 401 saying it was revoked", resp.status, resp.body)
			}
			h.runner.publish(event(store.DefaultTenant, "p1", 1, time.Now()))
			if ev := other.nextEvent(); ev.id != "p1:1" {
				t.Errorf("another viewer's stream: %+v, want event p1:1", ev)
			}
		})
	}
}

// TestEventStreamEndsAtTokenExpiry: tokens live 2 s here; the stream ends
// when its token expires (by the server's clock, which stands still here:
// only the stream's timer runs), not before.
func TestEventStreamEndsAtTokenExpiry(t *testing.T) {
	h := newHarnessAuth(t, auth.Options{TTL: 2 * time.Second}, func(o *api.Options) { o.Heartbeat = time.Hour })
	tok, _ := h.token(store.DefaultTenant, pipeline.RoleViewer)
	opened := time.Now()
	h.openStream("/api/v1/events", tok).ended()
	// Token expiries are whole seconds: this one is 1 to 2 s after the
	// server's time, and the stream's timer runs that long.
	if d := time.Since(opened); d < time.Second {
		t.Errorf("the stream ended %s after it opened, before its token expired", d)
	}
}

// TestEventStreamsEndWhenTheirRoleIsRedefined: a stream of a principal
// holding a custom role was checked against that role's grants when it
// opened. Redefining the role without read ends it; opening it again is
// refused (403), while a holder of another role streams on.
func TestEventStreamsEndWhenTheirRoleIsRedefined(t *testing.T) {
	h := newHarness(t, func(o *api.Options) { o.Heartbeat = time.Hour })
	org, _ := h.token(store.DefaultTenant, pipeline.RoleOrganizationAdmin)
	apply := func(roles ...api.RoleConfig) {
		t.Helper()
		if resp := h.do("PUT", "/api/v1/config", org, api.Config{Tenants: []api.TenantConfig{{Name: store.DefaultTenant, Roles: roles}}}); resp.status != 200 {
			t.Fatalf("apply: %d %s", resp.status, resp.body)
		}
	}
	apply(api.RoleConfig{Name: "watchers", Grants: []string{"read"}}, api.RoleConfig{Name: "auditors", Grants: []string{"read"}})
	watcher, _ := h.token(store.DefaultTenant, "watchers")
	auditor, _ := h.token(store.DefaultTenant, "auditors")
	h.runner.add(samplePipeline(store.DefaultTenant, "p1", time.Now()))
	watching := h.openStream("/api/v1/events", watcher)
	auditing := h.openStream("/api/v1/events", auditor)

	apply(api.RoleConfig{Name: "watchers", Grants: []string{"approve"}}, api.RoleConfig{Name: "auditors", Grants: []string{"read"}})
	watching.ended()
	if resp := h.do("GET", "/api/v1/events", watcher, nil, "Accept", "text/event-stream"); resp.status != 403 {
		t.Errorf("the stream again without read: %d %s, want 403", resp.status, resp.body)
	}
	h.runner.publish(event(store.DefaultTenant, "p1", 1, time.Now()))
	if ev := auditing.nextEvent(); ev.id != "p1:1" {
		t.Errorf("a holder of an unchanged role: %+v, want event p1:1", ev)
	}
}

// TestClientFollowsThroughARoleChange: the stream of a credential whose
// roles change is cut, and the API's own client carries on unaided: it
// reconnects with Last-Event-ID, is refused the revoked token, gets a new
// one with its credential, and misses no event.
func TestClientFollowsThroughARoleChange(t *testing.T) {
	h := newHarness(t, func(o *api.Options) { o.Heartbeat = time.Hour })
	admin, _ := h.token(store.DefaultTenant, pipeline.RoleTenantAdmin)
	c, secret, err := h.auth.CreateCredential(t.Context(), store.DefaultTenant, "watcher", []string{pipeline.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(client.Options{Server: h.srv.URL, ClientID: c.ClientID, ClientSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	h.runner.add(samplePipeline(store.DefaultTenant, "p1", time.Now()))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	events, reconnects, done := make(chan store.Event, 16), make(chan error, 16), make(chan error, 1)
	go func() {
		done <- cl.FollowTenant(ctx, "", client.FollowOptions{OnReconnect: func(err error) { reconnects <- err }},
			func(ev store.Event) error { events <- ev; return nil })
	}()
	next := func(what string) store.Event {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case err := <-done:
			t.Fatalf("the client stopped following before %s: %v", what, err)
		case <-ctx.Done():
			t.Fatalf("no event: %s", what)
		}
		return store.Event{}
	}
	<-h.runner.subscribed
	emit := func(seq int64) {
		ev := event(store.DefaultTenant, "p1", seq, time.Now())
		h.runner.record(ev)
		h.runner.publish(ev)
	}
	emit(1)
	if ev := next("event 1"); ev.Seq != 1 {
		t.Fatalf("first event: %+v", ev)
	}
	if resp := h.do("PUT", "/api/v1/credentials/"+c.ClientID+"/roles", admin, api.SetRolesRequest{Roles: []string{pipeline.RoleDeployer}}); resp.status != 200 {
		t.Fatalf("set roles: %d %s", resp.status, resp.body)
	}
	select {
	case <-reconnects:
	case <-ctx.Done():
		t.Fatal("the stream was not cut when the credential's roles changed")
	}
	emit(2) // while the client is away: it comes in the replay
	if ev := next("event 2, after the reconnect"); ev.Seq != 2 {
		t.Errorf("after the reconnect: %+v, want event 2", ev)
	}
	<-h.runner.subscribed
	emit(3)
	if ev := next("event 3, live again"); ev.Seq != 3 {
		t.Errorf("live again: %+v, want event 3", ev)
	}
}
