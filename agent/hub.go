package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"go.opentelemetry.io/otel/trace"

	"github.com/sortie-cd/sortie/agent/agentpb"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/plan"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/tracing"
)

// DefaultHeartbeat is how often each side of a stream sends a heartbeat
// unless HubOptions.HeartbeatInterval says otherwise. A side that hears
// nothing for MissedHeartbeats intervals ends the stream.
const DefaultHeartbeat = 10 * time.Second

// MissedHeartbeats is how many heartbeat intervals of silence end a stream.
const MissedHeartbeats = 3

// idPattern is what an agent identifier (a target's account) may look like.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Verifier checks a bearer token and bounds the life of a stream opened
// with it (to the token's expiry, or until its principal is revoked):
// *auth.Service is one.
type Verifier interface {
	Verify(token string) (auth.Principal, error)
	Stream(ctx context.Context, p auth.Principal) (context.Context, func())
}

// agentRoles may open an agent stream.
var agentRoles = []string{pipeline.RoleAgent, pipeline.RoleTenantAdmin, pipeline.RoleOrganizationAdmin}

// HubOptions configure a Hub.
type HubOptions struct {
	// Auth verifies the agents' tokens; required.
	Auth Verifier
	// HeartbeatInterval: zero means DefaultHeartbeat.
	HeartbeatInterval time.Duration
	// Version is the server's version, told to agents.
	Version string
	// Log: nil discards.
	Log *slog.Logger
	// Now is the clock of the agents list; nil means time.Now.
	Now func() time.Time
	// Bindings keeps which credential owns each agent identifier; nil
	// binds nothing (any agent credential of the tenant may register any
	// identifier).
	Bindings Bindings
}

// Bindings binds an agent identifier, in its tenant, to the credential
// that first registered it (store.Store does).
type Bindings interface {
	// BindAgent binds agentID to clientID unless it is bound already and
	// returns the client id it is bound to.
	BindAgent(ctx context.Context, tenant, agentID, clientID string, at time.Time) (string, error)
}

// Hub is the server's end of the agent connections. It accepts agent
// streams (it is a gRPC service, served by ServeHTTP), keeps the connected
// agents by tenant and identifier, and is a runner.Executor that runs each
// command on the agent named by the command's account.
type Hub struct {
	agentpb.UnimplementedAgentServer

	auth      Verifier
	bindings  Bindings
	heartbeat time.Duration
	version   string
	log       *slog.Logger
	now       func() time.Time
	grpc      *grpc.Server

	mu      sync.Mutex
	closed  bool
	conns   map[connKey]*conn
	changed chan struct{} // closed, and replaced, whenever an agent connects or leaves
	calls   map[connKey]map[*call]struct{}
	relays  map[string]relayWait // relayed HTTP calls by id
}

// connKey is a tenant and an agent identifier, or a tenant and a command id.
type connKey struct{ tenant, id string }

// conn is one connected agent stream.
type conn struct {
	tenant      string
	info        Info
	instance    string
	stream      agentpb.Agent_ConnectServer
	sendMu      sync.Mutex
	done        chan struct{} // closed when the stream has ended
	kick        chan error    // ends the stream with this status
	tokens      chan string   // renewed access tokens the agent sent
	lastMessage time.Time     // guarded by Hub.mu
}

// Info describes a connected agent.
type Info struct {
	ID             string
	Version        string
	ClusterVersion string
	ConnectedAt    time.Time
	LastHeartbeat  time.Time
	RemoteAddr     string
	// ClientID is the credential the agent connected with: the one its
	// identifier is bound to.
	ClientID string
}

// NewHub returns a Hub. Serve it with ServeHTTP (or Handler) on an HTTP/2
// server, and Close it before the server shuts down.
func NewHub(o HubOptions) (*Hub, error) {
	if o.Auth == nil {
		return nil, errors.New("agent: HubOptions need Auth")
	}
	h := &Hub{
		auth:      o.Auth,
		bindings:  o.Bindings,
		heartbeat: o.HeartbeatInterval,
		version:   o.Version,
		log:       o.Log,
		now:       o.Now,
		conns:     map[connKey]*conn{},
		changed:   make(chan struct{}),
		calls:     map[connKey]map[*call]struct{}{},
		relays:    map[string]relayWait{},
	}
	if h.heartbeat <= 0 {
		h.heartbeat = DefaultHeartbeat
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.grpc = grpc.NewServer(grpc.MaxRecvMsgSize(maxMessage))
	agentpb.RegisterAgentServer(h.grpc, h)
	return h, nil
}

// ServeHTTP serves the agent protocol. The request must be HTTP/2: over TLS,
// or cleartext HTTP/2 with prior knowledge (http.Protocols'
// UnencryptedHTTP2).
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.grpc.ServeHTTP(w, r) }

// Handler serves gRPC requests with the hub and every other request with
// next, so that agents use the API's own address.
func (h *Hub) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if IsGRPC(r) {
			h.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// IsGRPC reports whether r is a gRPC call.
func IsGRPC(r *http.Request) bool {
	return r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")
}

// Close ends every agent stream and refuses new ones. Commands waiting for
// an agent go on waiting until their context ends.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	for _, c := range h.conns {
		c.end(status.Error(codes.Unavailable, "the server is shutting down"))
	}
	h.mu.Unlock()
	h.grpc.Stop()
}

// HasAccount implements runner.Executor: an agent with that identifier is
// connected in that tenant.
func (h *Hub) HasAccount(tenant, account string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.conns[connKey{tenant, account}]
	return ok
}

// List returns the agents connected in tenant, by identifier.
func (h *Hub) List(tenant string) []Info {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Info
	for k, c := range h.conns {
		if k.tenant == tenant {
			out = append(out, c.info)
		}
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Execute implements runner.Executor: it sends the command to the agent of
// the command's account and waits for its result. While that agent is not
// connected (it never was, or it went away mid-command) it waits for it
// and sends the command again when it is back: the agent runs a command id
// once, so a repeat attaches to the running execution or returns the
// finished result. When ctx ends first, the agent is told to cancel. The
// agent's reports for the command go to job.Report, all of them before
// Execute returns the result.
func (h *Hub) Execute(ctx context.Context, job runner.Job) pipeline.CommandResult {
	r, _ := h.execute(ctx, job, true)
	return r
}

// Forward is Execute for a server that delivers another server's command
// (package replicas): when ctx ends first it returns false and tells the
// agent nothing, since the command's owner may still wait for it (the
// agent reconnected elsewhere, or this server stops); Cancel says when the
// owner gave up.
func (h *Hub) Forward(ctx context.Context, job runner.Job) (pipeline.CommandResult, bool) {
	return h.execute(ctx, job, false)
}

// Cancel tells the agent of tenant and account, when its stream is here,
// to stop command id.
func (h *Hub) Cancel(tenant, account, id string) {
	h.mu.Lock()
	cn := h.conns[connKey{tenant, account}]
	h.mu.Unlock()
	if cn != nil {
		_ = cn.send(&agentpb.ServerMessage{Msg: &agentpb.ServerMessage_Cancel{Cancel: &agentpb.Cancel{Id: id}}})
	}
}

// Connected returns every connected agent, of every tenant.
func (h *Hub) Connected() []Connected {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Connected, 0, len(h.conns))
	for k, c := range h.conns {
		out = append(out, Connected{Tenant: k.tenant, Info: c.info})
	}
	return out
}

// Connected is an agent connected in its tenant.
type Connected struct {
	Tenant string
	Info   Info
}

// EncodeJob is a job as a Command carries it to the agent (Job.Report
// does not travel), with the traceparent of ctx's span, and DecodeJob its
// reverse, giving back a context holding that span as its remote parent:
// how servers hand each other a command, so that the agent's span of a
// command another replica delivers is still in the pipeline's trace.
func EncodeJob(ctx context.Context, job runner.Job) ([]byte, error) {
	return json.Marshal(wireJob{Tenant: job.Tenant, Command: job.Command, Spec: job.Spec, Target: job.Target,
		Traceparent: tracing.Format(trace.SpanContextFromContext(ctx))})
}

// DecodeJob is EncodeJob's reverse; Report is left nil.
func DecodeJob(ctx context.Context, b []byte) (context.Context, runner.Job, error) {
	var wj wireJob
	if err := json.Unmarshal(b, &wj); err != nil {
		return ctx, runner.Job{}, fmt.Errorf("agent: decode job: %w", err)
	}
	if sc := tracing.Parse(wj.Traceparent); sc.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return ctx, runner.Job{Tenant: wj.Tenant, Command: wj.Command, Spec: wj.Spec, Target: wj.Target}, nil
}

// execute sends job to its agent and waits for the result (ok), or until
// ctx ends; cancel then says whether the agent is told to stop.
func (h *Hub) execute(ctx context.Context, job runner.Job, cancel bool) (pipeline.CommandResult, bool) {
	c := job.Command
	fail := func(format string, args ...any) (pipeline.CommandResult, bool) {
		return pipeline.CommandResult{CommandID: c.ID, Message: fmt.Sprintf(format, args...)}, false
	}
	payload, err := EncodeJob(ctx, job)
	if err != nil {
		r, _ := fail("encode command for agent %q: %v", c.Account, err)
		return r, true
	}
	cl := newCall(c.Account)
	ck := connKey{job.Tenant, c.ID}
	h.mu.Lock()
	if h.calls[ck] == nil {
		h.calls[ck] = map[*call]struct{}{}
	}
	h.calls[ck][cl] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.calls[ck], cl)
		if len(h.calls[ck]) == 0 {
			delete(h.calls, ck)
		}
		h.mu.Unlock()
	}()

	log := h.log.With("agent", c.Account, "tenant", job.Tenant, "pipeline", c.Pipeline, "target", c.Target, "command", c.ID)
	for {
		h.mu.Lock()
		cn, changed := h.conns[connKey{job.Tenant, c.Account}], h.changed
		h.mu.Unlock()
		if cn == nil {
			log.Info("waiting for agent to connect")
			select {
			case <-changed:
				continue
			case <-cl.ready:
				if r, ok := h.settle(ctx, cl, job, log); ok {
					return r, true
				}
				continue
			case <-ctx.Done():
				return fail("agent %q is not connected: %v", c.Account, context.Cause(ctx))
			}
		}
		msg := &agentpb.Command{Id: c.ID, Job: payload, Traceparent: tracing.Format(trace.SpanContextFromContext(ctx))}
		if d, ok := ctx.Deadline(); ok {
			msg.TimeoutMs = max(time.Until(d).Milliseconds(), 1)
		}
		if err := cn.send(&agentpb.ServerMessage{Msg: &agentpb.ServerMessage_Command{Command: msg}}); err != nil {
			log.Info("send command to agent failed; waiting for it to reconnect", "err", err)
		}
	wait:
		for {
			select {
			case <-cl.ready:
				if r, ok := h.settle(ctx, cl, job, log); ok {
					return r, true
				}
			case <-cn.done:
				log.Info("agent disconnected with a command in flight; sending it again when the agent is back")
				break wait
			case <-ctx.Done():
				if cancel {
					// Best effort: a stream that has ended needs no cancel.
					go cn.send(&agentpb.ServerMessage{Msg: &agentpb.ServerMessage_Cancel{Cancel: &agentpb.Cancel{Id: c.ID}}})
				}
				return fail("agent %q did not answer: %v", c.Account, context.Cause(ctx))
			}
		}
	}
}

// wireJob is runner.Job as a Command carries it. Job.Report, a func, does
// not travel: the agent's executor reports through Report messages, which
// the hub hands to the Job.Report of the command's Execute.
type wireJob struct {
	Tenant  string           `json:"tenant"`
	Command pipeline.Command `json:"command"`
	Spec    *pipeline.Spec   `json:"spec,omitempty"`
	// Target is the plan of the command's target only: an agent sees the
	// manifests and gates of the targets it runs, never another's.
	Target *plan.Target `json:"target,omitempty"`
	// Traceparent is the command span's, between servers (EncodeJob); to
	// the agent it travels in Command.traceparent.
	Traceparent string `json:"traceparent,omitempty"`
}

// Connect implements agentpb.AgentServer: one agent's stream.
func (h *Hub) Connect(stream agentpb.Agent_ConnectServer) error {
	ctx := stream.Context()
	p, err := h.authenticate(ctx)
	if err != nil {
		return err
	}
	hello, err := h.hello(stream)
	if err != nil {
		return err
	}
	remote := ""
	if pr, ok := peer.FromContext(ctx); ok && pr.Addr != nil {
		remote = pr.Addr.String()
	}
	now := h.now()
	c := &conn{
		tenant:   p.Tenant,
		instance: hello.GetInstance(),
		stream:   stream,
		done:     make(chan struct{}),
		kick:     make(chan error, 1),
		tokens:   make(chan string, 1),
		info: Info{
			ID: hello.GetAgentId(), Version: hello.GetAgentVersion(), ClusterVersion: hello.GetClusterVersion(),
			ConnectedAt: now, LastHeartbeat: now, RemoteAddr: remote, ClientID: p.ClientID,
		},
		lastMessage: now,
	}
	if err := h.bind(ctx, p, c.info.ID, now); err != nil {
		h.log.Warn("agent refused", "agent", c.info.ID, "tenant", c.tenant, "addr", remote, "client_id", p.ClientID, "err", err)
		return err
	}
	if err := h.register(c); err != nil {
		h.log.Warn("agent refused", "agent", c.info.ID, "tenant", c.tenant, "addr", remote, "err", err)
		return err
	}
	log := h.log.With("agent", c.info.ID, "tenant", c.tenant, "addr", remote)
	log.Info("agent connected", "version", c.info.Version, "cluster_version", c.info.ClusterVersion, "client_id", p.ClientID)
	err = h.serve(ctx, c, p)
	h.mu.Lock()
	if h.conns[connKey{c.tenant, c.info.ID}] == c {
		delete(h.conns, connKey{c.tenant, c.info.ID})
		h.notify()
	}
	h.mu.Unlock()
	close(c.done)
	log.Info("agent disconnected", "err", err)
	return err
}

// bind refuses an agent identifier that another credential of the tenant
// registered first: that credential's agent is the cluster's, and its
// commands and relayed secrets must not reach another.
func (h *Hub) bind(ctx context.Context, p auth.Principal, id string, now time.Time) error {
	if h.bindings == nil {
		return nil
	}
	owner, err := h.bindings.BindAgent(ctx, p.Tenant, id, p.ClientID, now)
	if err != nil {
		h.log.Error("agent binding", "agent", id, "tenant", p.Tenant, "err", err)
		return status.Error(codes.Unavailable, "the server cannot check the agent's identifier now; retry")
	}
	if owner != p.ClientID {
		return status.Errorf(codes.PermissionDenied, "agent identifier %q belongs to another credential of this tenant (client id %s); use that credential, or an admin deletes it to release the identifier", id, owner)
	}
	return nil
}

func (h *Hub) authenticate(ctx context.Context) (auth.Principal, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return auth.Principal{}, status.Error(codes.Unauthenticated, auth.ErrNoToken.Error())
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return auth.Principal{}, status.Error(codes.Unauthenticated, auth.ErrTokenInvalid.Error())
	}
	return h.verify(strings.TrimSpace(token))
}

// verify returns the principal of an agent's token, or the status that
// refuses it.
func (h *Hub) verify(token string) (auth.Principal, error) {
	p, err := h.auth.Verify(token)
	switch {
	case errors.Is(err, auth.ErrTokenExpired), errors.Is(err, auth.ErrTokenRevoked):
		return p, status.Error(codes.Unauthenticated, tokenError(err).Error())
	case err != nil:
		return p, status.Error(codes.Unauthenticated, auth.ErrTokenInvalid.Error())
	case !p.HasAnyRole(agentRoles...):
		return p, status.Errorf(codes.PermissionDenied, "credential %s may not connect an agent: give it the %s role", p.ClientID, pipeline.RoleAgent)
	}
	return p, nil
}

// tokenError is the sentinel err is (ErrTokenExpired, ErrTokenRevoked,
// ErrRoleRedefined), or ErrTokenInvalid: never the verifier's details.
func tokenError(err error) error {
	for _, e := range []error{auth.ErrTokenExpired, auth.ErrTokenRevoked, auth.ErrRoleRedefined} {
		if errors.Is(err, e) {
			return e
		}
	}
	return auth.ErrTokenInvalid
}

// renewAt is when to ask for a new token before the current one expires
// at exp: a minute ahead, or halfway for a token that lives less than two.
func (h *Hub) renewAt(exp time.Time) time.Duration {
	left := exp.Sub(h.now())
	return left - min(left/2, time.Minute)
}

// hello reads the stream's first message, which must be a valid Hello.
func (h *Hub) hello(stream agentpb.Agent_ConnectServer) (*agentpb.Hello, error) {
	type recvd struct {
		m   *agentpb.AgentMessage
		err error
	}
	ch := make(chan recvd, 1)
	go func() {
		m, err := stream.Recv()
		ch <- recvd{m, err}
	}()
	timer := time.NewTimer(MissedHeartbeats * h.heartbeat)
	defer timer.Stop()
	var r recvd
	select {
	case r = <-ch:
	case <-timer.C:
		return nil, status.Error(codes.DeadlineExceeded, "no Hello from the agent in time")
	}
	if r.err != nil {
		return nil, r.err
	}
	hello := r.m.GetHello()
	switch {
	case hello == nil:
		return nil, status.Error(codes.InvalidArgument, "the first message of an agent stream must be a Hello")
	case !idPattern.MatchString(hello.GetAgentId()):
		return nil, status.Errorf(codes.InvalidArgument, "agent identifier %q is not valid: use letters, digits, '.', '_' or '-', at most 63", hello.GetAgentId())
	}
	return hello, nil
}

// register makes c the agent of its identifier, or refuses it: one agent
// per identifier and tenant. A second process with the same identifier is
// refused while the first one's stream lives (it still heartbeats); the
// same process reconnecting (same instance) replaces its own stale stream.
func (h *Hub) register(c *conn) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return status.Error(codes.Unavailable, "the server is shutting down")
	}
	k := connKey{c.tenant, c.info.ID}
	if old := h.conns[k]; old != nil {
		silent := h.now().Sub(old.lastMessage) > MissedHeartbeats*h.heartbeat
		if old.instance != c.instance && !silent {
			return status.Errorf(codes.AlreadyExists,
				"agent %q is already connected in tenant %s (from %s since %s); a second agent with the same identifier is refused: stop the other one, or give this one another --agent-id",
				c.info.ID, c.tenant, old.info.RemoteAddr, old.info.ConnectedAt.UTC().Format(time.RFC3339))
		}
		old.end(status.Error(codes.Aborted, "replaced by a newer stream of the same agent"))
	}
	h.conns[k] = c
	h.notify()
	return nil
}

// notify wakes whoever waits for a change of the connected agents. Runs
// under h.mu.
func (h *Hub) notify() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// Changed returns a channel closed at the next connect or disconnect.
func (h *Hub) Changed() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}

// end asks c's stream to end with err.
func (c *conn) end(err error) {
	select {
	case c.kick <- err:
	default:
	}
}

func (c *conn) send(m *agentpb.ServerMessage) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	select {
	case <-c.done:
		return errors.New("stream ended")
	default:
	}
	return c.stream.Send(m)
}

// serve runs an accepted stream, opened with p's token, until it ends. The
// stream lives by its token (auth's Stream): before it expires the agent
// is asked for a new one (RenewToken), and the stream ends when it expires
// unrenewed or its credential is revoked.
func (h *Hub) serve(ctx context.Context, c *conn, p auth.Principal) error {
	lease, release := h.auth.Stream(ctx, p)
	defer func() { release() }()
	renew := time.NewTimer(time.Hour)
	defer renew.Stop()
	renewBy := func(exp time.Time) {
		if renew.Stop(); !exp.IsZero() {
			renew.Reset(h.renewAt(exp))
		}
	}
	renewBy(p.ExpiresAt)

	if err := c.send(&agentpb.ServerMessage{Msg: &agentpb.ServerMessage_Welcome{Welcome: &agentpb.Welcome{
		Tenant: c.tenant, HeartbeatIntervalMs: h.heartbeat.Milliseconds(), ServerVersion: h.version,
	}}}); err != nil {
		return err
	}
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := c.stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			h.received(c, m)
		}
	}()
	hctx, stop := context.WithCancel(ctx)
	defer stop()
	beat := make(chan error, 1)
	go func() {
		heard := func() time.Time {
			h.mu.Lock()
			defer h.mu.Unlock()
			return c.lastMessage
		}
		beat <- heartbeat(hctx, h.heartbeat, "agent", h.now, heard, func() error {
			return c.send(&agentpb.ServerMessage{Msg: &agentpb.ServerMessage_Heartbeat{Heartbeat: &agentpb.Heartbeat{SentUnixMs: h.now().UnixMilli()}}})
		})
	}()
	for {
		select {
		case err := <-recvErr:
			return err
		case err := <-c.kick:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-lease.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return status.Error(codes.Unauthenticated, tokenError(context.Cause(lease)).Error())
		case <-renew.C:
			if err := c.send(&agentpb.ServerMessage{Msg: &agentpb.ServerMessage_RenewToken{RenewToken: &agentpb.RenewToken{
				ExpiresUnixMs: p.ExpiresAt.UnixMilli(),
			}}}); err != nil {
				return err
			}
		case tok := <-c.tokens:
			np, err := h.verify(tok)
			if err == nil && (np.Tenant != p.Tenant || np.ClientID != p.ClientID) {
				err = status.Errorf(codes.PermissionDenied, "the renewed token is of credential %s, not of %s, which opened the stream", np.ClientID, p.ClientID)
			}
			if err != nil {
				return err
			}
			release()
			p = np
			lease, release = h.auth.Stream(ctx, p)
			renewBy(p.ExpiresAt)
			h.log.Debug("agent token renewed", "agent", c.info.ID, "tenant", c.tenant, "expires", p.ExpiresAt)
		case err := <-beat:
			var quiet *silence
			switch {
			case err == nil: // ctx ended
				return ctx.Err()
			case errors.As(err, &quiet):
				return status.Error(codes.DeadlineExceeded, err.Error())
			}
			return err
		}
	}
}

// received handles one message of an accepted stream.
func (h *Hub) received(c *conn, m *agentpb.AgentMessage) {
	now := h.now()
	h.mu.Lock()
	c.lastMessage = now
	if m.GetHeartbeat() != nil {
		c.info.LastHeartbeat = now
	}
	h.mu.Unlock()
	if rr := m.GetRelayResponse(); rr != nil {
		h.relayed(c, rr)
		return
	}
	if rep := m.GetReport(); rep != nil {
		h.reported(c, rep)
		return
	}
	if tok := m.GetToken(); tok != nil {
		// One renewal at a time: serve takes it; a second before that
		// is one the agent was not asked for.
		select {
		case c.tokens <- tok.GetAccessToken():
		default:
		}
		return
	}
	res := m.GetResult()
	if res == nil {
		return
	}
	var r pipeline.CommandResult
	if err := json.Unmarshal(res.GetResult(), &r); err != nil {
		r = pipeline.CommandResult{Message: fmt.Sprintf("agent %q sent a result that does not decode: %v", c.info.ID, err)}
	}
	r.CommandID = res.GetCommandId()
	h.mu.Lock()
	defer h.mu.Unlock()
	for cl := range h.calls[connKey{c.tenant, r.CommandID}] {
		if cl.account == c.info.ID && cl.result == nil {
			cl.result = &r
			cl.signal()
		}
	}
}
