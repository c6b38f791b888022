package agent

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/sortie-cd/sortie/agent/agentpb"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/leaktest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
)

// mute is a server that welcomes the agent and then never says anything
// again, as a server behind a dead network path would.
type mute struct {
	agentpb.UnimplementedAgentServer
	mu      sync.Mutex
	streams int
	auth    []string
	conns   chan struct{}
}

func (m *mute) Connect(stream agentpb.Agent_ConnectServer) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	m.mu.Lock()
	m.streams++
	m.auth = append(m.auth, md.Get("authorization")...)
	m.mu.Unlock()
	if _, err := stream.Recv(); err != nil {
		return err
	}
	if err := stream.Send(&agentpb.ServerMessage{Msg: &agentpb.ServerMessage_Welcome{Welcome: &agentpb.Welcome{Tenant: "main", HeartbeatIntervalMs: 20}}}); err != nil {
		return err
	}
	m.conns <- struct{}{}
	<-stream.Context().Done()
	return nil
}

// The agent ends a stream on which the server went silent, and dials
// again.
func TestAgentDropsASilentServer(t *testing.T) {
	m := &mute{conns: make(chan struct{}, 4)}
	gs := grpc.NewServer()
	agentpb.RegisterAgentServer(gs, m)
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+auth.TokenPath, func(w http.ResponseWriter, r *http.Request) {
		if id, secret, ok := r.BasicAuth(); !ok || id != "agent-1" || secret != "s3cret" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"tok-1","token_type":"Bearer","expires_in":900}`))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Protocols: serverProtocols(), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if IsGRPC(r) {
			gs.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { gs.Stop(); srv.Close() })

	a, err := New(Options{ServerURL: "http://" + ln.Addr().String(), AgentID: "prod", ClientID: "agent-1", ClientSecret: "s3cret",
		Executor: func(string) runner.Executor { return newFakeExec() }, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for i := range 2 {
		select {
		case <-m.conns:
		case <-time.After(10 * time.Second):
			t.Fatalf("stream %d did not come", i+1)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, h := range m.auth {
		if h != "Bearer tok-1" {
			t.Errorf("authorization metadata %q", h)
		}
	}
	if !strings.HasPrefix(a.tokens.TokenURL, "http://127.0.0.1:") {
		t.Errorf("token URL %s", a.tokens.TokenURL)
	}
}

func TestAgentHealthEndpoints(t *testing.T) {
	e := newEnv(t)
	x := newFakeExec()
	a, stop := e.startAgent("prod", x)
	e.waitHub("prod connects", e.connected("prod"))
	// A command's round trip: the agent has taken the Welcome by then.
	ch := e.execute(t.Context(), job("prod", "c1"))
	waitStarted(t, x, "c1")
	x.gate("c1") <- pipeline.CommandResult{Success: true}
	waitResult(t, ch)
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz while connected: %d", code)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "sortie_agent_connected 1") {
		t.Errorf("/metrics: %d\n%s", code, body)
	}
	stop()
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz after stop: %d", code)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz after stop: %d", code)
	}
}

// said is a log handler that closes a channel when a message is logged.
type said struct {
	slog.Handler
	msg  string
	once sync.Once
	ch   chan struct{}
}

func (h *said) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.msg) {
		h.once.Do(func() { close(h.ch) })
	}
	return nil
}

func (h *said) Enabled(context.Context, slog.Level) bool { return true }

func (h *said) WithAttrs([]slog.Attr) slog.Handler { return h }

// An agent told to stop cancels its commands and returns only once they
// have: nothing of it runs on.
func TestRunWaitsForItsCommands(t *testing.T) {
	e := newEnv(t)
	x := &stubbornExec{fakeExec: newFakeExec(), stopped: make(chan struct{}), release: make(chan struct{})}
	waiting := &said{Handler: slog.DiscardHandler, msg: "stopping: waiting", ch: make(chan struct{})}
	cid, secret := e.credential(pipeline.RoleAgent)
	_, stop := e.startAgentAs("prod", cid, secret, x, slog.New(waiting))
	e.waitHub("prod connects", e.connected("prod"))
	_ = e.execute(t.Context(), job("prod", "c1"))
	waitStarted(t, x.fakeExec, "c1")
	returned := make(chan struct{})
	go func() { stop(); close(returned) }()
	<-x.stopped // the command saw its cancellation, and takes a moment
	select {
	case <-returned:
		t.Fatal("Run returned while its command still ran")
	case <-waiting.ch:
	case <-time.After(10 * time.Second):
		t.Fatal("Run neither returned nor waited for its command")
	}
	close(x.release)
	<-returned
	leaktest.Check(t, "github.com/sortie-cd/sortie/agent.(*Agent)")
}

// A command's context has the server's deadline less a margin, or none.
func TestCommandContext(t *testing.T) {
	ctx, cancel := commandContext(0)
	if _, ok := ctx.Deadline(); ok {
		t.Error("a command without a timeout got a deadline")
	}
	cancel()
	if ctx.Err() == nil {
		t.Error("cancel did not end the command's context")
	}
	before := time.Now()
	ctx, cancel = commandContext(10_000)
	defer cancel()
	d, ok := ctx.Deadline()
	if want := before.Add(9500 * time.Millisecond); !ok || d.Before(want) || d.After(want.Add(time.Second)) {
		t.Errorf("deadline %v (%v), want about %v: the server's 10 s less 5 %%", d, ok, want)
	}
}
