package replicas_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/agent"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/internal/proctest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/plan"
	"github.com/sortie-cd/sortie/replicas"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/secrets"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/postgres"
	"github.com/sortie-cd/sortie/store/postgres/pgtest"
)

// These tests run several replicas in one process, each with its own
// PostgreSQL connections, agent hub, token endpoint and listener, on one
// real PostgreSQL database, and real agents (package agent) over real gRPC
// through a balancer the test points at one replica or another. The
// agents' executor is a test double: the cluster side is not what is
// under test here (server/pge2e runs the real one).

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const heartbeat = 200 * time.Millisecond

type group struct {
	t    testing.TB
	url  string
	keys string // one signing-key folder: a token of one replica is good on all
	lb   *proctest.Balancer
	// master is the master key every replica's secrets.Service has (the
	// sealer of relayed calls).
	master []byte
}

type replica struct {
	name   string
	st     *postgres.Store
	auth   *auth.Service
	hub    *agent.Hub
	node   *replicas.Node
	addr   string
	server *http.Server
	once   sync.Once
}

func newGroup(t testing.TB) *group {
	master, err := secrets.ParseKey(secrets.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	g := &group{t: t, url: pgtest.Database(t), keys: filepath.Join(t.TempDir(), "keys"), master: master}
	g.lb = proctest.NewBalancer(t)
	return g
}

func (g *group) replica(name string) *replica {
	t := g.t
	t.Helper()
	st, err := postgres.Open(t.Context(), g.url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.LoadKeys(g.keys)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{name: name, st: st, addr: ln.Addr().String()}
	if r.auth, err = auth.New(auth.Options{Credentials: st, Keys: keys, Issuer: "http://" + g.lb.Addr, AddrLimit: auth.Limit{Rate: 1000, Burst: 1000}}); err != nil {
		t.Fatal(err)
	}
	if r.hub, err = agent.NewHub(agent.HubOptions{Auth: r.auth, HeartbeatInterval: heartbeat, Bindings: st}); err != nil {
		t.Fatal(err)
	}
	sec, err := secrets.New(t.Context(), secrets.Options{Store: st, MasterKey: g.master})
	if err != nil {
		t.Fatal(err)
	}
	if r.node, err = replicas.Start(t.Context(), replicas.Options{Store: st, Hub: r.hub, Replica: name, RecordEvery: heartbeat, Sealer: sec}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+auth.TokenPath, r.auth.TokenHandler())
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	r.server = &http.Server{Handler: r.hub.Handler(mux), Protocols: &p}
	go r.server.Serve(ln)
	t.Cleanup(r.stop)
	return r
}

// stop ends the replica as a crash would for its peers: every connection
// drops at once. (Its process lives on, so its agent_streams rows are
// cleared; what a dead one leaves there goes stale after MissedRecords.)
func (r *replica) stop() {
	r.once.Do(func() {
		r.server.Close()
		r.hub.Close()
		r.node.Close()
		r.st.Close()
	})
}

// crash ends the replica as SIGKILL would for the others: its database
// connections close first, so it writes nothing more (no answer, and its
// record of the streams it held stays until it goes stale), then every
// connection drops.
func (r *replica) crash() {
	r.once.Do(func() {
		r.st.Close()
		r.server.Close()
		r.hub.Close()
		r.node.Close()
	})
}

// exec is the agents' executor: each command reports once, then blocks
// until the test releases it (or answers at once when instant).
type exec struct {
	instant bool
	mu      sync.Mutex
	runs    map[string]int
	started chan string
	release chan pipeline.CommandResult
	ended   chan string
}

func newExec() *exec {
	return &exec{runs: map[string]int{}, started: make(chan string, 64), release: make(chan pipeline.CommandResult, 1), ended: make(chan string, 8)}
}

func (x *exec) Execute(ctx context.Context, job runner.Job) pipeline.CommandResult {
	id := job.Command.ID
	x.mu.Lock()
	x.runs[id]++
	x.mu.Unlock()
	if job.Report != nil {
		_ = job.Report(ctx, store.Event{Type: "applied", Data: json.RawMessage(`{"command":"` + id + `"}`)})
	}
	if x.instant {
		w := job.Command.Weight
		if job.Command.Kind != pipeline.CmdSetWeight {
			w = 100
		}
		return pipeline.CommandResult{CommandID: id, Success: true, AchievedWeight: w, Message: "done"}
	}
	x.started <- id
	select {
	case r := <-x.release:
		return r
	case <-ctx.Done():
		x.ended <- id
		return pipeline.CommandResult{Message: ctx.Err().Error()}
	}
}

func (x *exec) HasAccount(string, string) bool { return true }

func (x *exec) count(id string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.runs[id]
}

// agentOn starts an agent through the balancer (pointed at r now).
func (g *group) agentOn(r *replica, id string, x runner.Executor) { g.agentWith(r, id, x, nil) }

// agentWith is agentOn with the agent's relayed calls allowed to reach
// relayAllow.
func (g *group) agentWith(r *replica, id string, x runner.Executor, relayAllow []netip.Prefix) {
	t := g.t
	t.Helper()
	g.lb.Point(r.addr)
	c, secret, err := r.auth.CreateCredential(t.Context(), store.DefaultTenant, "agent "+id, []string{pipeline.RoleAgent})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Options{ServerURL: "http://" + g.lb.Addr, AgentID: id, ClientID: c.ClientID, ClientSecret: secret,
		Executor: func(string) runner.Executor { return x }, Version: "v-test", MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		RelayAllow: relayAllow})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitConnected(t, r, id)
}

func waitConnected(t testing.TB, r *replica, id string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		changed := r.hub.Changed()
		if r.hub.HasAccount(store.DefaultTenant, id) {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("agent %s did not connect to replica %s", id, r.name)
		}
	}
}

func job(account, id string, reports *[]store.Event, mu *sync.Mutex) runner.Job {
	return runner.Job{
		Tenant:  store.DefaultTenant,
		Command: pipeline.Command{ID: id, Kind: pipeline.CmdSetWeight, Pipeline: "p1", Target: "prod", Account: account, Weight: 25},
		Spec:    &pipeline.Spec{Application: "web"},
		Target:  &plan.Target{Application: "web", Pipeline: "p1", Name: "prod", Account: account},
		Report: func(_ context.Context, ev store.Event) error {
			mu.Lock()
			*reports = append(*reports, ev)
			mu.Unlock()
			return nil
		},
	}
}

type answer struct{ r pipeline.CommandResult }

func execute(ctx context.Context, n *replicas.Node, j runner.Job) <-chan answer {
	ch := make(chan answer, 1)
	go func() { ch <- answer{n.Execute(ctx, j)} }()
	return ch
}

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// TestCommandToAgentOnAnotherReplica: replica A, which drives the
// pipeline, sends a command to the agent whose stream replica B holds; the
// agent runs it once, its report and then its result come back to A, and
// A sees the agent as connected and lists it.
func TestCommandToAgentOnAnotherReplica(t *testing.T) {
	g := newGroup(t)
	a, b := g.replica("a"), g.replica("b")
	x := newExec()
	g.agentOn(b, "east", x)
	if a.hub.HasAccount(store.DefaultTenant, "east") {
		t.Fatal("the agent's stream is on A too")
	}
	g.waitFor("A knows the agent", func() bool { return a.node.HasAccount(store.DefaultTenant, "east") })
	if l := a.node.List(store.DefaultTenant); len(l) != 1 || l[0].ID != "east" || l[0].ClientID == "" {
		t.Errorf("A lists %+v, want the agent east", l)
	}

	var mu sync.Mutex
	var reports []store.Event
	got := execute(t.Context(), a.node, job("east", "c1", &reports, &mu))
	if id := receive(t, x.started, "the command to start on the agent"); id != "c1" {
		t.Fatalf("started %s", id)
	}
	x.release <- pipeline.CommandResult{Success: true, AchievedWeight: 25, Message: "weight 25"}
	r := receive(t, got, "the result on A").r
	if !r.Success || r.AchievedWeight != 25 || r.CommandID != "c1" {
		t.Errorf("result %+v", r)
	}
	mu.Lock()
	if len(reports) != 1 || reports[0].Type != "applied" || !strings.Contains(string(reports[0].Data), "c1") {
		t.Errorf("reports on A: %+v, want the agent's one applied", reports)
	}
	mu.Unlock()
	if n := x.count("c1"); n != 1 {
		t.Errorf("the agent ran c1 %d times", n)
	}
	if _, err := a.st.GetAgentCommand(t.Context(), store.DefaultTenant, "c1"); err == nil {
		t.Error("the answered command is still in agent_commands")
	}
}

// TestReplicaHoldingTheStreamDies: the replica holding the agent's stream
// goes away mid-command; the agent reconnects to another, which delivers
// the unanswered command again; the agent attaches it to the execution
// still running, so the command runs once and its result reaches the owner.
func TestReplicaHoldingTheStreamDies(t *testing.T) {
	g := newGroup(t)
	a, b, c := g.replica("a"), g.replica("b"), g.replica("c")
	x := newExec()
	g.agentOn(b, "east", x)

	var mu sync.Mutex
	var reports []store.Event
	got := execute(t.Context(), a.node, job("east", "c1", &reports, &mu))
	receive(t, x.started, "the command to start on the agent")
	g.lb.Point(c.addr)
	b.stop()
	waitConnected(t, c, "east")
	x.release <- pipeline.CommandResult{Success: true, AchievedWeight: 25}
	r := receive(t, got, "the result on A").r
	if !r.Success || r.AchievedWeight != 25 {
		t.Errorf("result %+v", r)
	}
	if n := x.count("c1"); n != 1 {
		t.Errorf("the agent ran c1 %d times, want once", n)
	}
}

// TestOwnerGivesUp: when the owner's context ends (the engine gave up on
// the command) the agent, on another replica, is told to stop it.
func TestOwnerGivesUp(t *testing.T) {
	g := newGroup(t)
	a, b := g.replica("a"), g.replica("b")
	x := newExec()
	g.agentOn(b, "east", x)
	ctx, cancel := context.WithCancel(t.Context())
	var mu sync.Mutex
	var reports []store.Event
	got := execute(ctx, a.node, job("east", "c1", &reports, &mu))
	receive(t, x.started, "the command to start on the agent")
	cancel()
	if r := receive(t, got, "Execute to return").r; r.Success {
		t.Errorf("result %+v", r)
	}
	if id := receive(t, x.ended, "the agent's execution to be cancelled"); id != "c1" {
		t.Errorf("cancelled %s", id)
	}
}

// TestEventsOfAnotherReplica: a pipeline driven by replica A, its
// commands run by an agent connected to replica B; B's runner, whose
// subscriber watches the tenant, gets every event of it as A saves them
// (pushed by NOTIFY, read from the store past the last seq), in order and
// once each, up to the end.
func TestEventsOfAnotherReplica(t *testing.T) {
	g := newGroup(t)
	a, b := g.replica("a"), g.replica("b")
	g.agentOn(b, "instant", &exec{instant: true, runs: map[string]int{}})
	ra := runner.New(runner.Options{Store: a.st, Executor: a.node, Feed: a.node.Feed()})
	defer ra.Close()
	rb := runner.New(runner.Options{Store: b.st, Executor: b.node, Feed: b.node.Feed()})
	defer rb.Close()
	live := rb.Subscribe(t.Context(), store.DefaultTenant)
	g.waitFor("A knows the agent", func() bool { return a.node.HasAccount(store.DefaultTenant, "instant") })

	res, err := ra.Start(t.Context(), pipeline.Principal{Name: "test", Roles: []string{pipeline.RoleDeployer}}, store.DefaultTenant, runner.StartRequest{
		FileName: "deploy.yml", File: deployFile, Manifests: map[string]string{"web.yml": webManifest},
	})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	applied, wantApplied := 0, 0
	for {
		var ev store.Event
		select {
		case ev = <-live:
		case <-time.After(30 * time.Second):
			t.Fatalf("B got events %v, then nothing more", seqs)
		}
		if ev.Pipeline != res.PipelineID {
			continue
		}
		seqs = append(seqs, ev.Seq)
		if ev.Type == "applied" {
			applied++
		}
		p, err := b.st.GetPipeline(t.Context(), store.DefaultTenant, res.PipelineID)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Status.Terminal() {
			continue
		}
		stored, err := b.st.Events(t.Context(), store.DefaultTenant, res.PipelineID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != pipeline.StatusSucceeded {
			t.Fatalf("pipeline %s", p.Status)
		}
		if len(seqs) >= len(stored) {
			for _, e := range stored {
				if e.Type == "applied" {
					wantApplied++
				}
			}
			break
		}
	}
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("B got seqs %v, want 1, 2, 3, ... each once", seqs)
		}
	}
	if applied == 0 || applied != wantApplied {
		t.Errorf("%d agent reports among B's events, the store has %d", applied, wantApplied)
	}
	t.Logf("B received all %d events live", len(seqs))
}

const deployFile = `version: v1
kind: kubernetes
application: web
targets:
  prod:
    account: instant
    namespace: test
    strategy: canary
manifests:
  - path: web.yml
strategies:
  canary:
    canary:
      steps:
        - setWeight: 50
        - setWeight: 100
`

const webManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: registry.example/web:1
`

// waitFor re-checks cond each time a replica records its agent streams.
func (g *group) waitFor(what string, cond func() bool) {
	g.t.Helper()
	pgtest.UntilNotified(g.t, g.url, postgres.ChannelStreams, what, cond)
}

// BenchmarkCommandRoundTrip: one command from its Execute to the agent and
// its result back, with the agent's executor answering at once: through
// the hub of the server holding the stream (one server, in memory), and
// from replica A to the agent on replica B through PostgreSQL.
func BenchmarkCommandRoundTrip(b *testing.B) {
	g := newGroup(b)
	ra, rb := g.replica("a"), g.replica("b")
	g.agentOn(rb, "east", &exec{instant: true, runs: map[string]int{}})
	g.waitFor("A knows the agent", func() bool { return ra.node.HasAccount(store.DefaultTenant, "east") })
	var mu sync.Mutex
	var reports []store.Event
	for _, bc := range []struct {
		name string
		exec runner.Executor
	}{{"hub", rb.hub}, {"routed", ra.node}} {
		b.Run(bc.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				j := job("east", fmt.Sprintf("%s-%d", bc.name, i), &reports, &mu)
				if r := bc.exec.Execute(b.Context(), j); !r.Success {
					b.Fatalf("result %+v", r)
				}
				mu.Lock()
				reports = reports[:0]
				mu.Unlock()
			}
		})
	}
}
