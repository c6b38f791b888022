package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// sseClient reads a Server-Sent Events response one event at a time.
type sseClient struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

type sseEvent struct {
	id      string
	data    store.Event
	comment string
}

// openStream connects; the test's deadline bounds every read, so a missing
// event fails the test instead of hanging it.
func (h *harness) openStream(path, token string, header ...string) *sseClient {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.t.Context(), 20*time.Second)
	h.t.Cleanup(cancel)
	resp := h.send(ctx, "GET", path, token, nil, append([]string{"Accept", "text/event-stream"}, header...)...)
	h.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		h.t.Fatalf("stream: %d %v", resp.StatusCode, resp.Header)
	}
	return &sseClient{t: h.t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next event or comment, skipping the retry hint.
func (c *sseClient) next() sseEvent {
	c.t.Helper()
	var ev sseEvent
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading the stream: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.id != "" || ev.comment != "" {
				return ev
			}
		case strings.HasPrefix(line, ":"):
			ev.comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(line[6:]), &ev.data); err != nil {
				c.t.Fatalf("data %q: %v", line, err)
			}
		case strings.HasPrefix(line, "retry: "):
		default:
			c.t.Fatalf("unexpected line %q", line)
		}
	}
}

// nextEvent skips heartbeats.
func (c *sseClient) nextEvent() sseEvent {
	c.t.Helper()
	for {
		if ev := c.next(); ev.comment == "" {
			return ev
		}
	}
}

func ids(c *sseClient, n int) []string {
	c.t.Helper()
	var out []string
	for range n {
		out = append(out, c.nextEvent().id)
	}
	return out
}

func event(tenant, pid string, seq int64, at time.Time) store.Event {
	return store.Event{Tenant: tenant, Pipeline: pid, Seq: seq, At: at, Type: "status", Data: json.RawMessage(`{"status":"RUNNING"}`)}
}

func TestEventsAsJSON(t *testing.T) {
	h := newHarness(t)
	tok, _ := h.token(store.DefaultTenant, pipeline.RoleViewer)
	h.runner.add(samplePipeline(store.DefaultTenant, "p1", time.Now()))
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	for i := int64(1); i <= 3; i++ {
		h.runner.record(event(store.DefaultTenant, "p1", i, t0.Add(time.Duration(i)*time.Second)))
	}
	resp := h.do("GET", "/api/v1/pipelines/p1/events?after=1", tok, nil)
	var list api.EventList
	if err := json.Unmarshal(resp.body, &list); err != nil || resp.status != 200 {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
	want := []store.Event{event("", "p1", 2, t0.Add(2*time.Second)), event("", "p1", 3, t0.Add(3*time.Second))}
	if diff := cmp.Diff(want, list.Events); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if resp := h.do("GET", "/api/v1/pipelines/p1/events?after=3", tok, nil); string(resp.body) != `{"events":[]}`+"\n" {
		t.Errorf("none after 3: %s", resp.body)
	}
	for _, bad := range []string{"after=-1", "after=x"} {
		if resp := h.do("GET", "/api/v1/pipelines/p1/events?"+bad, tok, nil); resp.status != 400 {
			t.Errorf("%s: %d", bad, resp.status)
		}
	}
}

// TestPipelineStreamReplaysThenGoesLive checks that nothing is lost or
// repeated between the replay and the live events: an event appended while
// the replay is read arrives once, a cursor in Last-Event-ID is honoured,
// and events the subscription dropped are read back from the store.
func TestPipelineStreamReplaysThenGoesLive(t *testing.T) {
	h := newHarness(t, func(o *api.Options) { o.Heartbeat = time.Hour })
	tok, _ := h.token(store.DefaultTenant, pipeline.RoleViewer)
	h.runner.add(samplePipeline(store.DefaultTenant, "p1", time.Now()))
	h.runner.add(samplePipeline(store.DefaultTenant, "p2", time.Now()))
	t0 := time.Now()
	for i := int64(1); i <= 3; i++ {
		h.runner.record(event(store.DefaultTenant, "p1", i, t0))
	}
	// Event 4 is appended (and published) after the stream subscribed and
	// while it reads the replay: it is in both.
	h.runner.duringReplay = func() {
		ev := event(store.DefaultTenant, "p1", 4, t0)
		h.runner.record(ev)
		h.runner.publish(ev)
	}
	c := h.openStream("/api/v1/pipelines/p1/events?after=0", tok, "Last-Event-ID", "1")
	if got := ids(c, 3); !cmp.Equal(got, []string{"2", "3", "4"}) {
		t.Fatalf("replay: %v", got)
	}

	// Live: another pipeline's event and a repeat are not sent; a new
	// one is.
	h.runner.publish(event(store.DefaultTenant, "p2", 9, t0))
	h.runner.publish(event(store.DefaultTenant, "p1", 4, t0))
	h.runner.publish(event(store.DefaultTenant, "p1", 5, t0))
	if ev := c.nextEvent(); ev.id != "5" || ev.data.Pipeline != "p1" || ev.data.Seq != 5 || ev.data.Type != "status" {
		t.Fatalf("live: %+v", ev)
	}
	// 6 and 7 were appended but the subscription dropped them: seeing 8,
	// the stream reads them back.
	h.runner.record(event(store.DefaultTenant, "p1", 6, t0))
	h.runner.record(event(store.DefaultTenant, "p1", 7, t0))
	ev8 := event(store.DefaultTenant, "p1", 8, t0)
	h.runner.record(ev8)
	h.runner.publish(ev8)
	if got := ids(c, 3); !cmp.Equal(got, []string{"6", "7", "8"}) {
		t.Fatalf("gap: %v", got)
	}
}

func TestStreamHeartbeat(t *testing.T) {
	h := newHarness(t, func(o *api.Options) { o.Heartbeat = time.Millisecond })
	tok, _ := h.token(store.DefaultTenant, pipeline.RoleViewer)
	h.runner.add(samplePipeline(store.DefaultTenant, "p1", time.Now()))
	c := h.openStream("/api/v1/pipelines/p1/events", tok)
	if ev := c.next(); ev.comment != "heartbeat" {
		t.Errorf("first thing on an idle stream: %+v", ev)
	}
}

func TestStreamRefusesABadCursor(t *testing.T) {
	h := newHarness(t)
	tok, _ := h.token(store.DefaultTenant, pipeline.RoleViewer)
	h.runner.add(samplePipeline(store.DefaultTenant, "p1", time.Now()))
	for path, lei := range map[string]string{
		"/api/v1/pipelines/p1/events": "p1:3",
		"/api/v1/events":              "3",
	} {
		resp := h.do("GET", path, tok, nil, "Accept", "text/event-stream", "Last-Event-ID", lei)
		if resp.status != 400 || resp.errors(t).Errors[0].Code != api.CodeInvalid {
			t.Errorf("%s with Last-Event-ID %s: %d %s", path, lei, resp.status, resp.body)
		}
	}
}

// TestTenantStream checks the tenant-wide stream: every pipeline of the
// caller's tenant and none of another's, ids "pipeline:seq", and a resume
// from Last-Event-ID that replays what was recorded after that event.
func TestTenantStream(t *testing.T) {
	h := newHarness(t, func(o *api.Options) { o.Heartbeat = time.Hour })
	tok, _ := h.token(store.DefaultTenant, pipeline.RoleViewer)
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	for _, id := range []string{"p1", "p2"} {
		sp := samplePipeline(store.DefaultTenant, id, t0)
		sp.UpdatedAt = t0.Add(time.Hour)
		h.runner.add(sp)
	}
	h.runner.add(samplePipeline(otherTenant, "q1", t0))
	// History: p1:1 (t0+1s), p2:1 (t0+2s), p1:2 (t0+3s), p2:2 (t0+4s).
	h.runner.record(event(store.DefaultTenant, "p1", 1, t0.Add(1*time.Second)))
	h.runner.record(event(store.DefaultTenant, "p2", 1, t0.Add(2*time.Second)))
	h.runner.record(event(store.DefaultTenant, "p1", 2, t0.Add(3*time.Second)))
	h.runner.record(event(store.DefaultTenant, "p2", 2, t0.Add(4*time.Second)))

	// The client last saw p2:1: it missed p1:2 and p2:2.
	c := h.openStream("/api/v1/events", tok, "Last-Event-ID", "p2:1")
	if got := ids(c, 2); !cmp.Equal(got, []string{"p1:2", "p2:2"}) {
		t.Fatalf("replay: %v", got)
	}
	h.runner.publish(event(otherTenant, "q1", 1, t0.Add(5*time.Second)))
	h.runner.publish(event(store.DefaultTenant, "p2", 2, t0.Add(4*time.Second))) // a repeat
	h.runner.publish(event(store.DefaultTenant, "p1", 3, t0.Add(6*time.Second)))
	if got := ids(c, 1); !cmp.Equal(got, []string{"p1:3"}) {
		t.Fatalf("live: %v", got)
	}

	// Without Last-Event-ID: live only.
	c2 := h.openStream("/api/v1/events", tok)
	<-h.runner.subscribed // c's
	<-h.runner.subscribed // c2's: it listens now
	h.runner.publish(event(store.DefaultTenant, "p2", 3, t0.Add(7*time.Second)))
	if got := ids(c2, 1); !cmp.Equal(got, []string{"p2:3"}) {
		t.Fatalf("fresh stream: %v", got)
	}
}
