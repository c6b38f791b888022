package replicas_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sortie-cd/sortie/agent"
	"github.com/sortie-cd/sortie/egress"
	"github.com/sortie-cd/sortie/store"
)

// inside stands for a service in the agent's cluster: it answers with
// what it got, and checks while it answers what the database holds of the
// call in flight (the call's row, its headers and body sealed).
type inside struct {
	t   *testing.T
	url string // the group's database
	mu  sync.Mutex
	got []string // relayed-by, authorization and body of each call
	// rows are the sealed calls in agent_relays while a call is answered,
	// read while look is set.
	rows [][]byte
	look bool
}

func (in *inside) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	in.mu.Lock()
	look := in.look
	in.mu.Unlock()
	if !look {
		io.WriteString(w, "pong: "+string(b))
		return
	}
	conn, err := pgx.Connect(r.Context(), in.url)
	if err != nil {
		in.t.Errorf("inside: %v", err)
		return
	}
	defer conn.Close(r.Context())
	rows, err := conn.Query(r.Context(), `SELECT call FROM agent_relays`)
	if err != nil {
		in.t.Errorf("inside: %v", err)
		return
	}
	var sealed [][]byte
	for rows.Next() {
		var c []byte
		if err := rows.Scan(&c); err != nil {
			in.t.Errorf("inside: %v", err)
		}
		sealed = append(sealed, c)
	}
	rows.Close()
	in.mu.Lock()
	in.got = append(in.got, r.Header.Get(agent.RelayedByHeader)+" "+r.Header.Get("Authorization")+" "+string(b))
	in.rows = append(in.rows, sealed...)
	in.mu.Unlock()
	w.Header().Set("X-Answer", "yes")
	w.WriteHeader(http.StatusTeapot)
	io.WriteString(w, "pong: "+string(b))
}

// noRelaysLeft checks that agent_relays is empty: each call's owner
// deleted its row before its Do returned.
func noRelaysLeft(t *testing.T, url, when string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var left int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM agent_relays`).Scan(&left); err != nil || left != 0 {
		t.Errorf("agent_relays %s: %d rows (%v), want none", when, left, err)
	}
}

func relayed(t *testing.T, d interface {
	Do(*http.Request) (*http.Response, error)
}, url, body string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer s3cret-token")
	resp, err := d.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b), nil
}

// TestRelayThroughAgentOnAnotherReplica: replica A relays an HTTP call
// (a webhook's, a Prometheus query's) through an agent whose stream
// replica B holds: the call goes through the database to B, which sends
// it to the agent, and the agent's answer comes back to A. The call's
// headers and body are sealed in the database (a secret in them is not
// there in clear), its row is gone afterwards, an egress refusal of the
// agent comes back as one, and an agent connected nowhere fails at once.
// It logs the round trip routed and local.
func TestRelayThroughAgentOnAnotherReplica(t *testing.T) {
	g := newGroup(t)
	a, b := g.replica("a"), g.replica("b")
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	g.agentWith(b, "east", newExec(), loopback)
	g.agentWith(b, "west", newExec(), nil) // no --relay-allow
	g.waitFor("A knows the agents", func() bool {
		return a.node.HasAccount(store.DefaultTenant, "east") && a.node.HasAccount(store.DefaultTenant, "west")
	})
	if a.hub.HasAccount(store.DefaultTenant, "east") {
		t.Fatal("the agent's stream is on A too")
	}
	in := &inside{t: t, url: g.url, look: true}
	srv := httptest.NewServer(in)
	t.Cleanup(srv.Close)

	east, err := a.node.Relay(store.DefaultTenant, "east")
	if err != nil {
		t.Fatal(err)
	}
	resp, body, err := relayed(t, east, srv.URL+"/check", "hello")
	if err != nil {
		t.Fatalf("relay from A through the agent on B: %v", err)
	}
	if resp.StatusCode != http.StatusTeapot || body != "pong: hello" || resp.Header.Get("X-Answer") != "yes" {
		t.Errorf("answer: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	in.mu.Lock()
	if !slices.Equal(in.got, []string{"east Bearer s3cret-token hello"}) {
		t.Errorf("the service got %q, want one call relayed by east with its header and body", in.got)
	}
	if len(in.rows) != 1 {
		t.Errorf("%d calls in agent_relays while the service answered, want 1", len(in.rows))
	}
	for _, c := range in.rows {
		if strings.Contains(string(c), "s3cret-token") || strings.Contains(string(c), "hello") || strings.Contains(string(c), "/check") {
			t.Errorf("a relayed call is in clear in the database: %q", c)
		}
	}
	in.mu.Unlock()
	noRelaysLeft(t, g.url, "after the answer")

	// The agent's egress refusal comes back as one, through B.
	west, err := a.node.Relay(store.DefaultTenant, "west")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = relayed(t, west, srv.URL+"/check", "hello")
	var denied *egress.DeniedError
	if !errors.As(err, &denied) || !strings.Contains(err.Error(), "relay through agent west") || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("relay to loopback through west (no --relay-allow): %v, want the agent's egress refusal", err)
	}
	// An agent connected nowhere: at once.
	nobody, err := a.node.Relay(store.DefaultTenant, "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := relayed(t, nobody, srv.URL+"/check", "hello"); err == nil || !strings.Contains(err.Error(), "the agent is not connected") {
		t.Errorf("relay through an agent connected nowhere: %v", err)
	}

	// Round trips: through B's own hub, and from A through the database.
	in.mu.Lock()
	in.look = false
	in.mu.Unlock()
	local, err := b.node.Relay(store.DefaultTenant, "east")
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	median := func(d interface {
		Do(*http.Request) (*http.Response, error)
	}) time.Duration {
		var took []time.Duration
		for range n {
			start := time.Now()
			if _, _, err := relayed(t, d, srv.URL+"/check", "x"); err != nil {
				t.Fatal(err)
			}
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		return took[n/2]
	}
	l, r := median(local), median(east)
	t.Logf("relay round trip, median of %d: local (B's hub) %v, routed (A through PostgreSQL to B) %v", n, l.Round(10*time.Microsecond), r.Round(10*time.Microsecond))
}

// TestRelayOwnerGivesUp: when the owner's context ends while the agent,
// on another replica, makes the call, the owner returns at once, the call
// is deleted, and the replica sending it stops it on the agent (the
// service sees its request end).
func TestRelayOwnerGivesUp(t *testing.T) {
	g := newGroup(t)
	a, b := g.replica("a"), g.replica("b")
	g.agentWith(b, "east", newExec(), []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	g.waitFor("A knows the agent", func() bool { return a.node.HasAccount(store.DefaultTenant, "east") })
	arrived, ended := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done() // until the agent stops the call
		close(ended)
	}))
	t.Cleanup(srv.Close)
	east, err := a.node.Relay(store.DefaultTenant, "east")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/slow", nil)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		resp, err := east.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	receive(t, arrived, "the call to reach the service")
	cancel()
	if err := receive(t, errc, "the owner's Do to return"); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("Do after its context ended: %v", err)
	}
	receive(t, ended, "the agent to stop the call")
	noRelaysLeft(t, g.url, "after the owner gave up")
}

// BenchmarkRelayRoundTrip: one relayed GET to a loopback service and its
// answer: through the hub of the replica holding the agent's stream, and
// from replica A through PostgreSQL to the agent on replica B.
func BenchmarkRelayRoundTrip(b *testing.B) {
	g := newGroup(b)
	ra, rb := g.replica("a"), g.replica("b")
	g.agentWith(rb, "east", newExec(), []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	g.waitFor("A knows the agent", func() bool { return ra.node.HasAccount(store.DefaultTenant, "east") })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	b.Cleanup(srv.Close)
	for _, bc := range []struct {
		name string
		r    *replica
	}{{"hub", rb}, {"routed", ra}} {
		b.Run(bc.name, func(b *testing.B) {
			d, err := bc.r.node.Relay(store.DefaultTenant, "east")
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				req, _ := http.NewRequestWithContext(b.Context(), "GET", srv.URL, nil)
				resp, err := d.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}

// TestRelayWhoseReplicaDies: the replica holding the agent's stream dies
// (writing nothing more) while the agent makes a call it relays for A;
// the agent reconnects to C, and A's call fails then, as a relayed call
// whose agent disconnects fails on one server, long before its deadline.
// The next call from A reaches the agent through C.
func TestRelayWhoseReplicaDies(t *testing.T) {
	g := newGroup(t)
	a, b, c := g.replica("a"), g.replica("b"), g.replica("c")
	g.agentWith(b, "east", newExec(), []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	g.waitFor("A knows the agent", func() bool { return a.node.HasAccount(store.DefaultTenant, "east") })
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			arrived <- struct{}{}
			select { // its answer would go to the dead replica
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		io.WriteString(w, "through C")
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	east, err := a.node.Relay(store.DefaultTenant, "east")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
		resp, err := east.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	receive(t, arrived, "the call to reach the service")
	g.lb.Point(c.addr)
	b.crash()
	waitConnected(t, c, "east")
	if err := receive(t, errc, "A's call to fail"); err == nil || !strings.Contains(err.Error(), "the agent disconnected before answering") {
		t.Errorf("the call whose replica died: %v", err)
	}
	_, body, err := relayed(t, east, srv.URL, "")
	if err != nil || body != "through C" {
		t.Errorf("the next call from A: %q %v", body, err)
	}
}
