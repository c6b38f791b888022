package agent

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sortie-cd/sortie/agent/agentpb"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/egress"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/plan"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/sqlite"
)

// These tests run the hub and agents over real gRPC on loopback, with real
// tokens from a real token endpoint on SQLite. The agents' executor is a
// test double (fakeExec): the Kubernetes side is tested in package kube
// and, through separate processes, in cmd/sortie's end-to-end tests.

// testHeartbeat is short so silence is noticed fast, yet three of them (the
// silence limit) must outlast a scheduling hiccup on a loaded 2-core CI
// machine: 50 ms dropped live agents there.
const testHeartbeat = 200 * time.Millisecond

type env struct {
	t      *testing.T
	hub    *Hub
	auth   *auth.Service
	url    string // http://127.0.0.1:port
	addr   string
	server *http.Server
	proxy  *proxy // when set, agents dial through it
	// relayAllow is the agents' --relay-allow: loopback, where the relay
	// tests' targets listen, unless a test says otherwise.
	relayAllow []netip.Prefix
}

// newEnv serves the hub and the token endpoint on one loopback listener,
// HTTP/1 and cleartext HTTP/2, as `sortie server` does.
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvHeartbeat(t, testHeartbeat)
}

// newEnvHeartbeat is newEnv with another heartbeat interval.
func newEnvHeartbeat(t *testing.T, heartbeat time.Duration) *env {
	t.Helper()
	return newEnvWith(t, envOptions{heartbeat: heartbeat})
}

// envOptions change newEnv's defaults.
type envOptions struct {
	heartbeat time.Duration // zero means testHeartbeat
	tokenTTL  time.Duration // zero means auth.DefaultTTL
	log       *slog.Logger  // the hub's; nil discards
}

// newEnvWith is newEnv with o.
func newEnvWith(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.heartbeat == 0 {
		o.heartbeat = testHeartbeat
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sortie.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, err := auth.LoadKeys(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, addr: ln.Addr().String(), url: "http://" + ln.Addr().String(), relayAllow: egress.Loopback}
	e.auth, err = auth.New(auth.Options{Credentials: st, Keys: keys, Issuer: e.url, TTL: o.tokenTTL,
		AddrLimit: auth.Limit{Rate: 1000, Burst: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	e.hub, err = NewHub(HubOptions{Auth: e.auth, HeartbeatInterval: o.heartbeat, Version: "test", Log: o.log})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+auth.TokenPath, e.auth.TokenHandler())
	e.server = &http.Server{Handler: e.hub.Handler(mux), Protocols: serverProtocols()}
	go e.server.Serve(ln)
	t.Cleanup(func() {
		e.hub.Close()
		e.server.Close()
	})
	return e
}

func serverProtocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	return &p
}

// credential returns a new client credential of tenant main with roles.
func (e *env) credential(roles ...string) (id, secret string) {
	e.t.Helper()
	c, secret, err := e.auth.CreateCredential(e.t.Context(), store.DefaultTenant, "test agent", roles)
	if err != nil {
		e.t.Fatal(err)
	}
	return c.ClientID, secret
}

// startAgent runs an agent until the test ends or stop is called.
func (e *env) startAgent(id string, x runner.Executor) (a *Agent, stop func()) {
	e.t.Helper()
	cid, secret := e.credential(pipeline.RoleAgent)
	return e.startAgentAs(id, cid, secret, x, nil)
}

// startAgentAs is startAgent with a given credential and log (nil
// discards).
func (e *env) startAgentAs(id, cid, secret string, x runner.Executor, log *slog.Logger) (a *Agent, stop func()) {
	e.t.Helper()
	url := e.url
	if e.proxy != nil {
		url = "http://" + e.proxy.addr
	}
	a, err := New(Options{
		ServerURL: url, AgentID: id, ClientID: cid, ClientSecret: secret,
		Executor:   func(string) runner.Executor { return x },
		Version:    "v-test",
		Log:        log,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		RelayAllow: e.relayAllow,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	e.t.Cleanup(stop)
	return a, stop
}

// waitHub waits until cond holds of the hub's connected agents.
func (e *env) waitHub(what string, cond func() bool) {
	e.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		changed := e.hub.Changed()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			e.t.Fatalf("timed out waiting until %s", what)
		}
	}
}

func (e *env) connected(id string) func() bool {
	return func() bool { return e.hub.HasAccount(store.DefaultTenant, id) }
}

// fakeExec is the agent's executor in these tests: each command blocks
// until the test releases it (or its context ends).
type fakeExec struct {
	mu      sync.Mutex
	runs    map[string]int
	started chan string
	release map[string]chan pipeline.CommandResult
	ended   chan string // command ids whose context ended first
}

func newFakeExec() *fakeExec {
	return &fakeExec{runs: map[string]int{}, started: make(chan string, 16), release: map[string]chan pipeline.CommandResult{}, ended: make(chan string, 16)}
}

func (x *fakeExec) gate(id string) chan pipeline.CommandResult {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.release[id] == nil {
		x.release[id] = make(chan pipeline.CommandResult, 1)
	}
	return x.release[id]
}

func (x *fakeExec) Execute(ctx context.Context, job runner.Job) pipeline.CommandResult {
	id := job.Command.ID
	x.mu.Lock()
	x.runs[id]++
	x.mu.Unlock()
	x.started <- id
	select {
	case r := <-x.gate(id):
		return r
	case <-ctx.Done():
		x.ended <- id
		return pipeline.CommandResult{Message: ctx.Err().Error()}
	}
}

func (x *fakeExec) HasAccount(_, account string) bool { return true }

func (x *fakeExec) count(id string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.runs[id]
}

func job(account, id string) runner.Job {
	return runner.Job{
		Tenant:  store.DefaultTenant,
		Command: pipeline.Command{ID: id, Kind: pipeline.CmdSetWeight, Pipeline: "p1", Target: "prod", Account: account, Weight: 25},
		Spec:    &pipeline.Spec{Application: "web"},
		Target:  &plan.Target{Application: "web", Pipeline: "p1", Name: "prod", Account: account},
	}
}

type executed struct{ r pipeline.CommandResult }

func (e *env) execute(ctx context.Context, j runner.Job) <-chan executed {
	ch := make(chan executed, 1)
	go func() { ch <- executed{e.hub.Execute(ctx, j)} }()
	return ch
}

func waitResult(t *testing.T, ch <-chan executed) pipeline.CommandResult {
	t.Helper()
	select {
	case r := <-ch:
		return r.r
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for the command's result")
	}
	return pipeline.CommandResult{}
}

func waitStarted(t *testing.T, x *fakeExec, want string) {
	t.Helper()
	select {
	case id := <-x.started:
		if id != want {
			t.Fatalf("started %s, want %s", id, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("command %s did not start", want)
	}
}

func TestCommandRoundTripAndAgentList(t *testing.T) {
	e := newEnv(t)
	if e.hub.HasAccount(store.DefaultTenant, "prod") {
		t.Fatal("HasAccount before any agent connected")
	}
	x := newFakeExec()
	e.startAgent("prod", x)
	e.waitHub("prod connects", e.connected("prod"))
	if e.hub.HasAccount("other", "prod") {
		t.Error("an agent of tenant main serves tenant other")
	}
	list := e.hub.List(store.DefaultTenant)
	if len(list) != 1 || list[0].ID != "prod" || list[0].Version != "v-test" || !strings.HasPrefix(list[0].RemoteAddr, "127.0.0.1:") || list[0].ConnectedAt.IsZero() {
		t.Errorf("agents: %+v", list)
	}
	if got := e.hub.List("other"); len(got) != 0 {
		t.Errorf("agents of another tenant: %+v", got)
	}

	ch := e.execute(t.Context(), job("prod", "c1"))
	waitStarted(t, x, "c1")
	x.gate("c1") <- pipeline.CommandResult{Success: true, AchievedWeight: 25, Message: "done"}
	r := waitResult(t, ch)
	if want := (pipeline.CommandResult{CommandID: "c1", Success: true, AchievedWeight: 25, Message: "done"}); r != want {
		t.Errorf("result %+v, want %+v", r, want)
	}
	// The same id again is answered from the agent's kept result.
	r = waitResult(t, e.execute(t.Context(), job("prod", "c1")))
	if !r.Success || x.count("c1") != 1 {
		t.Errorf("repeat: %+v, runs %d, want the kept result and one run", r, x.count("c1"))
	}
}

// A connection cut mid-command: the same agent process reconnects, the hub
// sends the command again, and the agent attaches it to the execution
// still running: one run, one result.
func TestReconnectResendsAndAgentAttaches(t *testing.T) {
	e := newEnv(t)
	e.proxy = newProxy(t, e.addr)
	x := newFakeExec()
	e.startAgent("prod", x)
	e.waitHub("prod connects", e.connected("prod"))

	ch := e.execute(t.Context(), job("prod", "c1"))
	waitStarted(t, x, "c1")
	e.proxy.cut()
	e.waitHub("the cut stream is gone", func() bool { return !e.hub.HasAccount(store.DefaultTenant, "prod") })
	e.waitHub("prod reconnects", e.connected("prod"))
	x.gate("c1") <- pipeline.CommandResult{Success: true, Message: "after reconnect"}
	r := waitResult(t, ch)
	if !r.Success || r.Message != "after reconnect" {
		t.Errorf("result %+v", r)
	}
	if n := x.count("c1"); n != 1 {
		t.Errorf("the command ran %d times, want once", n)
	}
}

// The agent process dies mid-command and another one starts: the command
// waits in the hub meanwhile, and runs on the new agent.
func TestCommandWaitsForAgentToComeBack(t *testing.T) {
	e := newEnv(t)
	x1 := newFakeExec()
	_, stop := e.startAgent("prod", x1)
	e.waitHub("prod connects", e.connected("prod"))
	ch := e.execute(t.Context(), job("prod", "c1"))
	waitStarted(t, x1, "c1")
	stop()
	e.waitHub("prod leaves", func() bool { return !e.hub.HasAccount(store.DefaultTenant, "prod") })

	x2 := newFakeExec()
	e.startAgent("prod", x2)
	waitStarted(t, x2, "c1")
	x2.gate("c1") <- pipeline.CommandResult{Success: true, Message: "second agent"}
	if r := waitResult(t, ch); !r.Success || r.Message != "second agent" {
		t.Errorf("result %+v", r)
	}
}

func TestCancelReachesTheAgent(t *testing.T) {
	e := newEnv(t)
	x := newFakeExec()
	e.startAgent("prod", x)
	e.waitHub("prod connects", e.connected("prod"))
	ctx, cancel := context.WithCancel(t.Context())
	ch := e.execute(ctx, job("prod", "c1"))
	waitStarted(t, x, "c1")
	cancel()
	if r := waitResult(t, ch); r.Success || !strings.Contains(r.Message, "canceled") {
		t.Errorf("result %+v", r)
	}
	select {
	case id := <-x.ended:
		if id != "c1" {
			t.Errorf("ended %s", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the agent's execution was not cancelled")
	}
	// A cancelled command is not kept: sent again, it runs again.
	ch = e.execute(t.Context(), job("prod", "c1"))
	waitStarted(t, x, "c1")
	x.gate("c1") <- pipeline.CommandResult{Success: true}
	if r := waitResult(t, ch); !r.Success {
		t.Errorf("rerun: %+v", r)
	}
}

func TestSecondAgentWithTheSameIDIsRefused(t *testing.T) {
	e := newEnv(t)
	_, stop := e.startAgent("prod", newFakeExec())
	e.waitHub("prod connects", e.connected("prod"))
	first := e.hub.List(store.DefaultTenant)[0]

	err := e.rawStream(t, "prod", pipeline.RoleAgent, "another-instance", nil)
	if status.Code(err) != codes.AlreadyExists || !strings.Contains(err.Error(), `agent "prod" is already connected`) {
		t.Fatalf("second agent: %v, want AlreadyExists naming the agent", err)
	}
	if got := e.hub.List(store.DefaultTenant); len(got) != 1 || got[0].ConnectedAt != first.ConnectedAt {
		t.Errorf("the first agent was disturbed: %+v", got)
	}
	// Once the first is gone, the second gets in.
	stop()
	e.waitHub("prod leaves", func() bool { return !e.hub.HasAccount(store.DefaultTenant, "prod") })
	x := newFakeExec()
	e.startAgent("prod", x)
	e.waitHub("the second agent connects", e.connected("prod"))
}

func TestRefusals(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, id, role string
		code           codes.Code
	}{
		{"viewer credential", "prod", pipeline.RoleViewer, codes.PermissionDenied},
		{"bad identifier", "no spaces", pipeline.RoleAgent, codes.InvalidArgument},
		{"no token", "prod", "", codes.Unauthenticated},
	} {
		err := e.rawStream(t, tc.id, tc.role, "i1", nil)
		if status.Code(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	if len(e.hub.List(store.DefaultTenant)) != 0 {
		t.Error("a refused agent is listed")
	}
}

// An agent that goes silent (no heartbeat) is dropped after
// MissedHeartbeats intervals.
func TestSilentAgentIsDropped(t *testing.T) {
	e := newEnv(t)
	err := e.rawStream(t, "prod", pipeline.RoleAgent, "i1", func(stream agentpb.Agent_ConnectClient) {
		e.waitHub("prod connects", e.connected("prod"))
	})
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "no heartbeat") {
		t.Fatalf("silent agent's stream ended with %v, want DeadlineExceeded", err)
	}
	e.waitHub("the silent agent is dropped", func() bool { return !e.hub.HasAccount(store.DefaultTenant, "prod") })
}

// rawStream opens a stream by hand, says Hello, calls welcomed (if the
// server welcomed it) and then reads until the stream ends, sending
// nothing: it returns the status the stream ended with.
func (e *env) rawStream(t *testing.T, id, role, instance string, welcomed func(agentpb.Agent_ConnectClient)) error {
	t.Helper()
	tok := ""
	if role != "" {
		tok = e.token(t, role)
	}
	return e.rawStreamToken(t, tok, id, instance, welcomed)
}

// rawStreamWith is rawStream with a given token.
func (e *env) rawStreamWith(t *testing.T, tok, id, instance string) error {
	t.Helper()
	return e.rawStreamToken(t, tok, id, instance, nil)
}

func (e *env) rawStreamToken(t *testing.T, tok, id, instance string, welcomed func(agentpb.Agent_ConnectClient)) error {
	t.Helper()
	cc, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if tok != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	stream, err := agentpb.NewAgentClient(cc).Connect(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&agentpb.AgentMessage{Msg: &agentpb.AgentMessage_Hello{Hello: &agentpb.Hello{AgentId: id, Instance: instance}}}); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	m, err := stream.Recv()
	if err != nil {
		return err
	}
	if m.GetWelcome() == nil {
		t.Fatalf("first message %v, want Welcome", m)
	}
	if welcomed != nil {
		welcomed(stream)
	}
	for {
		if _, err := stream.Recv(); err != nil {
			return err
		}
	}
}

// token issues a token of a new credential with role.
func (e *env) token(t *testing.T, role string) string {
	t.Helper()
	c, _, err := e.auth.CreateCredential(t.Context(), store.DefaultTenant, "raw", []string{role})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := e.auth.Issue(&c)
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

func TestAgentOverTLSWithCAFile(t *testing.T) {
	e := newEnv(t)
	mux := http.NewServeMux()
	mux.Handle("POST "+auth.TokenPath, e.auth.TokenHandler())
	ts := httptest.NewUnstartedServer(e.hub.Handler(mux))
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(ts.Close)
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	cid, secret := e.credential(pipeline.RoleAgent)
	// httptest's certificate names 127.0.0.1 and example.com.
	a, err := New(Options{ServerURL: ts.URL, AgentID: "tls", ClientID: cid, ClientSecret: secret, RootCAs: pool,
		Executor: func(string) runner.Executor { return newFakeExec() }, MinBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go a.Run(ctx)
	e.waitHub("the TLS agent connects", e.connected("tls"))
}

func TestPlaintextOnlyToLoopback(t *testing.T) {
	base := Options{AgentID: "a", ClientID: "c", ClientSecret: "s", Executor: func(string) runner.Executor { return newFakeExec() }}
	for url, ok := range map[string]bool{
		"http://127.0.0.1:8080":     true,
		"http://localhost:8080":     true,
		"http://[::1]:8080":         true,
		"https://sortie.example":    true,
		"http://sortie.example":     false,
		"http://10.0.0.1:8080":      false,
		"ftp://127.0.0.1":           false,
		"https://sortie.example/x/": false,
	} {
		o := base
		o.ServerURL = url
		_, err := New(o)
		if (err == nil) != ok {
			t.Errorf("%s: err = %v, want ok=%v", url, err, ok)
		}
	}
}

func TestBackoffIsJitteredAndCapped(t *testing.T) {
	lo, hi := 100*time.Millisecond, 2*time.Second
	for n := range 12 {
		d := backoff(n, lo, hi)
		ceil := min(lo<<n, hi)
		if d < ceil/2 || d > ceil {
			t.Errorf("backoff(%d) = %s, want within [%s, %s]", n, d, ceil/2, ceil)
		}
	}
}

// proxy forwards TCP connections to a backend until cut.
type proxy struct {
	addr  string
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, backend string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &proxy{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, b)
			p.mu.Unlock()
			go func() { io.Copy(b, c); b.Close() }()
			go func() { io.Copy(c, b); c.Close() }()
		}
	}()
	return p
}

// cut closes every proxied connection, as a network failure would.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// stubbornExec is a fakeExec whose command c1, once cancelled, returns
// only when released: an execution that takes a moment to stop.
type stubbornExec struct {
	*fakeExec
	stopped, release chan struct{}
}

func (x *stubbornExec) Execute(ctx context.Context, job runner.Job) pipeline.CommandResult {
	if job.Command.ID != "c1" {
		return x.fakeExec.Execute(ctx, job)
	}
	x.started <- job.Command.ID
	<-ctx.Done()
	close(x.stopped)
	<-x.release
	return pipeline.CommandResult{Message: ctx.Err().Error()}
}

// A rollback that reaches the agent while another command of its target
// still runs (its Cancel not there yet, or the execution slow to stop)
// cancels that command and starts only once it has returned.
func TestRollbackWaitsForTheSupersededCommand(t *testing.T) {
	e := newEnv(t)
	x := &stubbornExec{fakeExec: newFakeExec(), stopped: make(chan struct{}), release: make(chan struct{})}
	e.startAgent("prod", x)
	e.waitHub("prod connects", e.connected("prod"))
	_ = e.execute(t.Context(), job("prod", "c1")) // never cancelled by the hub
	waitStarted(t, x.fakeExec, "c1")
	rb := job("prod", "r1")
	rb.Command.Kind = pipeline.CmdRollback
	ch := e.execute(t.Context(), rb)
	select {
	case <-x.stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the rollback did not cancel the running command of its target")
	}
	select {
	case id := <-x.started:
		t.Fatalf("%s started before the superseded command returned", id)
	case <-time.After(200 * time.Millisecond):
	}
	close(x.release)
	waitStarted(t, x.fakeExec, "r1")
	x.gate("r1") <- pipeline.CommandResult{Success: true}
	if r := waitResult(t, ch); !r.Success {
		t.Errorf("rollback: %+v", r)
	}
}

// A transient failure crosses the stream as such, and the agent does not
// keep it: the runner's retry of the same id runs the command again.
func TestTransientResultIsRunAgain(t *testing.T) {
	e := newEnv(t)
	x := newFakeExec()
	e.startAgent("prod", x)
	e.waitHub("prod connects", e.connected("prod"))
	ch := e.execute(t.Context(), job("prod", "c1"))
	waitStarted(t, x, "c1")
	failed := pipeline.CommandResult{Message: "the API server is unavailable", Transient: true}
	x.gate("c1") <- failed
	failed.CommandID = "c1"
	if r := waitResult(t, ch); r != failed {
		t.Fatalf("result %+v, want %+v", r, failed)
	}
	ch = e.execute(t.Context(), job("prod", "c1"))
	waitStarted(t, x, "c1")
	x.gate("c1") <- pipeline.CommandResult{Success: true}
	if r := waitResult(t, ch); !r.Success || x.count("c1") != 2 {
		t.Errorf("retry: %+v after %d runs, want a success from a second run", r, x.count("c1"))
	}
}
