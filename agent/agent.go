package agent

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sortie-cd/sortie/agent/agentpb"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/egress"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/tracing"
)

// Default backoff bounds of the agent's reconnect loop.
const (
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
)

// DefaultResultTTL is how long the agent keeps a finished command's result
// for a repeat of the command.
const DefaultResultTTL = 30 * time.Minute

// Options configure an Agent.
type Options struct {
	// ServerURL is the server's base URL: https://host[:port], or http://
	// when the host is loopback. Required.
	ServerURL string
	// AgentID is the identifier the agent registers under: the account
	// targets name. Required.
	AgentID string
	// ClientID and ClientSecret are the agent's client credential (role
	// agent). Required.
	ClientID, ClientSecret string
	// RootCAs verify the server's certificate; nil means the system's.
	RootCAs *x509.CertPool
	// Executor returns the executor for the tenant the server names in its
	// Welcome (the tenant of the credential). Required.
	Executor func(tenant string) runner.Executor
	// ClusterVersion reports the cluster's version for Hello; nil means
	// none.
	ClusterVersion func(ctx context.Context) (string, error)
	// Version is the agent's version.
	Version string
	// Log: nil discards.
	Log *slog.Logger
	// Metrics: nil means a new registry (served by Handler).
	Metrics *prometheus.Registry
	// MinBackoff and MaxBackoff bound the reconnect delay; zero means the
	// defaults.
	MinBackoff, MaxBackoff time.Duration
	// ResultTTL: zero means DefaultResultTTL.
	ResultTTL time.Duration
	// ServiceProxy, when set, carries relayed requests for a Service's
	// in-cluster name (NAME.NAMESPACE.svc): the cluster's API server's
	// service proxy, so that preview URLs and relayed calls reach Services
	// wherever the agent runs.
	ServiceProxy http.RoundTripper
	// Tracer, when set, traces each command the server sent with a trace
	// context: a span in the pipeline's trace, a child of the server's
	// command span, around its execution (whose Kubernetes calls are
	// children when the executor's client carries tracing.Transport). Nil
	// traces nothing.
	Tracer trace.TracerProvider
	// RelayAllow are the address ranges relayed calls may reach although
	// the egress policy refuses them by default (loopback, link-local,
	// cloud metadata, unspecified; see package egress): --relay-allow.
	// Nil allows none of them.
	RelayAllow []netip.Prefix
}

// Agent is the cluster's end of the connection: it dials out to the server,
// keeps one stream open (reconnecting with jittered exponential backoff),
// and runs the commands that arrive on it.
type Agent struct {
	o        Options
	log      *slog.Logger
	instance string
	client   agentpb.AgentClient
	cc       *grpc.ClientConn
	tokens   *clientcredentials.Config
	httpc    *http.Client
	relayc   *http.Client // makes relayed calls
	// relayEgress is where relayed calls may connect.
	relayEgress *egress.Policy
	reg         *prometheus.Registry
	m           agentMetrics

	mu       sync.Mutex
	sess     *session // the accepted stream, nil while disconnected
	execs    map[string]*execution
	relays   map[string]context.CancelFunc // relayed calls running, by id
	tenant   string
	executor runner.Executor

	// wg counts the goroutines a Run started for commands and relayed
	// calls; Run returns only once they have.
	wg sync.WaitGroup
}

type session struct {
	stream agentpb.Agent_ConnectClient
	sendMu sync.Mutex
}

func (s *session) send(m *agentpb.AgentMessage) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.stream.Send(m)
}

// execution is one command id the agent has run or runs.
type execution struct {
	cancel    context.CancelFunc
	cancelled bool
	target    string        // tenant/pipeline/target of the command
	done      chan struct{} // closed when the executor returned
	finished  time.Time     // zero while running
	result    []byte
}

// New checks o and returns an Agent; Run connects it.
func New(o Options) (*Agent, error) {
	if o.AgentID == "" || !idPattern.MatchString(o.AgentID) {
		return nil, fmt.Errorf("agent: identifier %q is not valid: use letters, digits, '.', '_' or '-', at most 63", o.AgentID)
	}
	if o.ClientID == "" || o.ClientSecret == "" {
		return nil, errors.New("agent: client credentials are required (SORTIE_CLIENT_ID and SORTIE_CLIENT_SECRET, or --credentials-file)")
	}
	if o.Executor == nil {
		return nil, errors.New("agent: Options need an Executor")
	}
	u, err := url.Parse(o.ServerURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("agent: server URL %q: want https://host[:port]", o.ServerURL)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("agent: server URL %q: the agent protocol is served at the server's root; remove the path", o.ServerURL)
	}
	var tc credentials.TransportCredentials
	tlsConfig := &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}
	port := u.Port()
	switch u.Scheme {
	case "https":
		tc = credentials.NewTLS(tlsConfig)
		if port == "" {
			port = "443"
		}
	case "http":
		if !loopback(u.Hostname()) {
			return nil, fmt.Errorf("agent: server URL %q: plaintext http is allowed only to a loopback address; use https", o.ServerURL)
		}
		tc = insecure.NewCredentials()
		if port == "" {
			port = "80"
		}
	default:
		return nil, fmt.Errorf("agent: server URL %q: want https:// (or http:// to loopback)", o.ServerURL)
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.ResultTTL <= 0 {
		o.ResultTTL = DefaultResultTTL
	}
	pol := relayPolicy(o.RelayAllow)
	a := &Agent{o: o, log: o.Log, execs: map[string]*execution{}, relays: map[string]context.CancelFunc{}, relayc: pol.Client(0), relayEgress: pol, reg: o.Metrics}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.log = a.log.With("agent", o.AgentID)
	if a.reg == nil {
		a.reg = prometheus.NewRegistry()
	}
	if a.m, err = newAgentMetrics(a.reg); err != nil {
		return nil, err
	}
	a.instance = crand.Text()
	// grpc's default dialer honours HTTPS_PROXY and NO_PROXY; so does the
	// token request's transport.
	a.cc, err = grpc.NewClient(net.JoinHostPort(u.Hostname(), port), grpc.WithTransportCredentials(tc),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage)))
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a.client = agentpb.NewAgentClient(a.cc)
	base := *u
	base.Path = ""
	a.tokens = &clientcredentials.Config{
		ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		TokenURL:  base.String() + auth.TokenPath,
		AuthStyle: oauth2.AuthStyleInHeader,
	}
	a.httpc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy: http.ProxyFromEnvironment, TLSClientConfig: tlsConfig, ForceAttemptHTTP2: true,
	}}
	return a, nil
}

// loopback reports whether host is a loopback name or address.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// LoadCAFile reads PEM certificates for Options.RootCAs.
func LoadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("agent: CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// Connected reports whether the server has accepted the agent's stream.
func (a *Agent) Connected() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sess != nil
}

// Run keeps the agent connected until ctx ends; it returns nil then.
// Commands and relayed calls still running when ctx ends are cancelled,
// and Run returns once they have returned: nothing of the agent runs on.
func (a *Agent) Run(ctx context.Context) error {
	defer a.cc.Close()
	reconnect(ctx, a.o.MinBackoff, a.o.MaxBackoff, a.session, func(err error, d time.Duration) {
		a.m.reconnects.Inc()
		a.log.Warn("not connected to the server; retrying", "err", err, "retry_in", d.Round(time.Millisecond))
	})
	if n := a.cancelAll(); n > 0 {
		a.log.Info("stopping: waiting for the cancelled commands and relayed calls to return", "running", n)
	}
	a.wg.Wait()
	a.httpc.CloseIdleConnections()
	a.relayc.CloseIdleConnections()
	return nil
}

// session runs one stream: it returns whether the server accepted it, and
// why it ended.
func (a *Agent) session(ctx context.Context) (bool, error) {
	tok, err := a.token(ctx)
	if err != nil {
		return false, err
	}
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sctx = metadata.AppendToOutgoingContext(sctx, "authorization", "Bearer "+tok.AccessToken)
	stream, err := a.client.Connect(sctx)
	if err != nil {
		return false, err
	}
	hello := &agentpb.Hello{AgentId: a.o.AgentID, AgentVersion: a.o.Version, Instance: a.instance}
	if a.o.ClusterVersion != nil {
		if v, err := a.o.ClusterVersion(ctx); err == nil {
			hello.ClusterVersion = v
		} else {
			a.log.Warn("cannot read the cluster's version", "err", err)
		}
	}
	if err := stream.Send(&agentpb.AgentMessage{Msg: &agentpb.AgentMessage_Hello{Hello: hello}}); err != nil {
		return false, recvErr(stream, err)
	}
	first, err := stream.Recv()
	if err != nil {
		return false, refusal(err)
	}
	w := first.GetWelcome()
	if w == nil {
		return false, errors.New("the server did not answer Hello with Welcome")
	}
	interval := time.Duration(w.GetHeartbeatIntervalMs()) * time.Millisecond
	if interval <= 0 {
		interval = DefaultHeartbeat
	}
	s := &session{stream: stream}
	a.accepted(s, w.GetTenant())
	a.log.Info("connected to the server", "tenant", w.GetTenant(), "server_version", w.GetServerVersion())
	defer a.disconnected(s)

	var mu sync.Mutex
	last := time.Now()
	heard := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
	// The session's own goroutines (heartbeat, token renewals) end with it.
	var running sync.WaitGroup
	defer func() {
		cancel(nil)
		running.Wait()
	}()
	running.Go(func() {
		err := heartbeat(sctx, interval, "server", time.Now, heard, func() error {
			return s.send(&agentpb.AgentMessage{Msg: &agentpb.AgentMessage_Heartbeat{Heartbeat: &agentpb.Heartbeat{SentUnixMs: time.Now().UnixMilli()}}})
		})
		if err != nil {
			cancel(err)
		}
	})
	for {
		m, err := stream.Recv()
		if err != nil {
			if cause := context.Cause(sctx); cause != nil && ctx.Err() == nil {
				return true, cause
			}
			return true, err
		}
		mu.Lock()
		last = time.Now()
		mu.Unlock()
		switch m := m.Msg.(type) {
		case *agentpb.ServerMessage_Command:
			a.command(m.Command)
		case *agentpb.ServerMessage_Cancel:
			a.cancel(m.Cancel.GetId())
		case *agentpb.ServerMessage_RelayRequest:
			a.wg.Go(func() { a.relay(ctx, s, m.RelayRequest) })
		case *agentpb.ServerMessage_RelayCancel:
			a.cancelRelay(m.RelayCancel.GetId())
		case *agentpb.ServerMessage_RenewToken:
			running.Go(func() { a.renew(sctx, s) })
		}
	}
}

// renew answers the server's RenewToken with a new token of the agent's
// credential, so that the stream goes on past the expiry of the one it was
// opened with. Without one the server ends the stream at that expiry, and
// the agent reconnects.
func (a *Agent) renew(ctx context.Context, s *session) {
	tok, err := a.token(ctx)
	if err == nil {
		err = s.send(&agentpb.AgentMessage{Msg: &agentpb.AgentMessage_Token{Token: &agentpb.Token{AccessToken: tok.AccessToken}}})
	}
	switch {
	case err == nil:
		a.m.renewals.Inc()
	case ctx.Err() == nil: // else the stream has ended anyway
		a.log.Warn("cannot renew the stream's token; the server ends the stream when the token expires", "err", err)
	}
}

// token gets a new access token of the agent's credential.
func (a *Agent) token(ctx context.Context) (*oauth2.Token, error) {
	tok, err := a.tokens.Token(context.WithValue(ctx, oauth2.HTTPClient, a.httpc))
	if err != nil {
		return nil, fmt.Errorf("get a token from %s: %w", a.tokens.TokenURL, err)
	}
	return tok, nil
}

// recvErr returns the stream's status after a failed Send (Send only says
// io.EOF).
func recvErr(stream agentpb.Agent_ConnectClient, err error) error {
	if _, rerr := stream.Recv(); rerr != nil {
		return refusal(rerr)
	}
	return err
}

// refusal words a refused stream for the log.
func refusal(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.AlreadyExists, codes.PermissionDenied, codes.InvalidArgument, codes.Unauthenticated:
		return fmt.Errorf("the server refused the agent: %s", st.Message())
	}
	return err
}

func (a *Agent) accepted(s *session, tenant string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sess = s
	if a.executor == nil || a.tenant != tenant {
		a.tenant, a.executor = tenant, a.o.Executor(tenant)
	}
	a.m.connected.Set(1)
	a.m.connects.Inc()
}

func (a *Agent) disconnected(s *session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sess == s {
		a.sess = nil
		a.m.connected.Set(0)
	}
}

// deliver sends a result on the current stream. With no stream it is
// dropped: the server sends the command again once reconnected, and gets
// the kept result then.
func (a *Agent) deliver(id string, result []byte) {
	a.mu.Lock()
	s := a.sess
	a.mu.Unlock()
	if s == nil {
		return
	}
	if err := s.send(&agentpb.AgentMessage{Msg: &agentpb.AgentMessage_Result{Result: &agentpb.Result{CommandId: id, Result: result}}}); err != nil {
		a.log.Info("send result failed; the server will ask again", "command", id, "err", err)
	}
}

// command starts a command, or, for an id it knows, attaches to the running
// execution (whose result goes to the stream current when it ends) or
// returns the kept result.
func (a *Agent) command(cmd *agentpb.Command) {
	id := cmd.GetId()
	a.mu.Lock()
	a.expire()
	if ex, ok := a.execs[id]; ok && !ex.cancelled {
		finished, result := !ex.finished.IsZero(), ex.result
		a.mu.Unlock()
		state := "running"
		if finished {
			state = "finished"
		}
		a.m.repeats.WithLabelValues(state).Inc()
		a.log.Info("command delivered again", "command", id, "state", state)
		if finished {
			a.deliver(id, result)
		}
		return
	}
	executor, tenant := a.executor, a.tenant
	var wj wireJob
	if err := json.Unmarshal(cmd.GetJob(), &wj); err != nil {
		a.mu.Unlock()
		a.finish(id, nil, pipeline.CommandResult{CommandID: id, Message: fmt.Sprintf("agent %s: the command does not decode: %v", a.o.AgentID, err)})
		return
	}
	ctx, cancel := commandContext(cmd.GetTimeoutMs())
	ctx, span := a.span(ctx, cmd.GetTraceparent(), wj)
	ex := &execution{cancel: cancel, target: wj.Tenant + "/" + wj.Command.Pipeline + "/" + wj.Command.Target, done: make(chan struct{})}
	job := runner.Job{Tenant: wj.Tenant, Command: wj.Command, Spec: wj.Spec, Target: wj.Target, Report: a.reporter(id, ex)}
	// A rollback supersedes whatever else of its target still runs: the
	// server no longer waits for it, and its Cancel may come after the
	// rollback, or the execution may take a moment to stop. It is
	// cancelled here, and the rollback starts once it has returned, so
	// that no write of it lands after the rollback's.
	var superseded []chan struct{}
	if wj.Command.Kind == pipeline.CmdRollback {
		for _, o := range a.execs {
			if o.target == ex.target && o.done != nil && o.finished.IsZero() {
				o.cancelled = true
				o.cancel()
				superseded = append(superseded, o.done)
			}
		}
	}
	a.execs[id] = ex
	a.mu.Unlock()
	a.m.running.Inc()
	a.wg.Go(func() {
		defer cancel()
		start := time.Now()
		log := a.log.With("tenant", tenant, "pipeline", job.Command.Pipeline, "target", job.Command.Target, "command", id, "kind", job.Command.Kind)
		if len(superseded) > 0 {
			log.Info("waiting for the superseded commands of the target to stop", "commands", len(superseded))
			for _, done := range superseded {
				select {
				case <-done:
				case <-ctx.Done():
				}
			}
		}
		log.Info("running command")
		res := executor.Execute(ctx, job)
		res.CommandID = id
		endSpan(span, res)
		a.m.running.Dec()
		a.m.commands.WithLabelValues(string(job.Command.Kind), fmt.Sprint(res.Success)).Inc()
		log.Info("command done", "success", res.Success, "message", res.Message, "duration", time.Since(start).Round(time.Millisecond))
		// After the log line, so that the log shows a superseded command
		// done before the rollback that waited for it runs.
		close(ex.done)
		a.finish(id, ex, res)
	})
}

// span starts the agent's span for a command, a child of the server's
// span that traceparent names; ctx and a non-recording span when either
// side does not trace.
func (a *Agent) span(ctx context.Context, traceparent string, wj wireJob) (context.Context, trace.Span) {
	parent := tracing.Parse(traceparent)
	if a.o.Tracer == nil || !parent.IsValid() {
		return ctx, trace.SpanFromContext(context.Background())
	}
	c := wj.Command
	return a.o.Tracer.Tracer(tracing.Instrumentation).Start(trace.ContextWithRemoteSpanContext(ctx, parent), "agent "+string(c.Kind),
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			attribute.String("sortie.agent", a.o.AgentID), attribute.String("sortie.command", c.ID),
			attribute.String("sortie.command.kind", string(c.Kind)), attribute.String("sortie.target", c.Target)))
}

func endSpan(span trace.Span, res pipeline.CommandResult) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.Bool("sortie.success", res.Success), attribute.Bool("sortie.transient", res.Transient))
	if !res.Success {
		span.SetStatus(otelcodes.Error, res.Message) // what the pipeline's log shows
	}
	span.End()
}

// commandContext is the context of one execution: its own, since a command
// outlives the stream it came on, ending a little before the server's
// deadline (ms, none when 0) so that the agent's precise failure (which pods
// are not Ready, and why) gets there first.
func commandContext(ms int64) (context.Context, context.CancelFunc) {
	if ms <= 0 {
		return context.WithCancel(context.Background())
	}
	d := time.Duration(ms) * time.Millisecond
	return context.WithTimeout(context.Background(), d-min(d/20, time.Second))
}

// finish keeps a command's result and sends it; a cancelled execution, or
// one that failed transiently (the server retries it), is forgotten instead,
// so that a later repeat runs it afresh.
func (a *Agent) finish(id string, ex *execution, res pipeline.CommandResult) {
	b, _ := json.Marshal(res)
	a.mu.Lock()
	if ex != nil && ex.cancelled {
		if a.execs[id] == ex {
			delete(a.execs, id)
		}
		a.mu.Unlock()
		return
	}
	if ex == nil {
		ex = &execution{cancel: func() {}}
		a.execs[id] = ex
	}
	ex.finished, ex.result = time.Now(), b
	if res.Transient {
		// The server runs a transient failure again: a repeat must run
		// afresh, not get this result back.
		delete(a.execs, id)
	}
	a.mu.Unlock()
	a.deliver(id, b)
}

// cancel stops a running command the server no longer waits for.
func (a *Agent) cancel(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ex, ok := a.execs[id]; ok && ex.finished.IsZero() {
		ex.cancelled = true
		ex.cancel()
		a.log.Info("command cancelled by the server", "command", id)
	}
}

// cancelAll cancels every running command, and says how many commands and
// relayed calls (which end with Run's context) still run.
func (a *Agent) cancelAll() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, ex := range a.execs {
		if ex.finished.IsZero() && !ex.cancelled {
			ex.cancelled = true
			ex.cancel()
			n++
		}
	}
	return n + len(a.relays)
}

// expire forgets results older than the TTL. Runs under a.mu.
func (a *Agent) expire() {
	cutoff := time.Now().Add(-a.o.ResultTTL)
	for id, ex := range a.execs {
		if !ex.finished.IsZero() && ex.finished.Before(cutoff) {
			delete(a.execs, id)
		}
	}
}

// Handler serves /healthz (the process runs), /readyz (the server accepted
// the stream) and /metrics.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !a.Connected() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not connected to the server")
			return
		}
		fmt.Fprintln(w, "connected")
	})
	mux.Handle("GET /metrics", promhttpHandler(a.reg))
	return mux
}
