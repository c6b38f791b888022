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

	"github.com/sortie-cd/sortie/agent/agentpb"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/plan"
	"github.com/sortie-cd/sortie/runner"
)

// DefaultHeartbeat is how often each side of a stream sends a heartbeat
// unless HubOptions.HeartbeatInterval says otherwise. A side that hears
// nothing for MissedHeartbeats intervals ends the stream.
const DefaultHeartbeat = 10 * time.Second

// MissedHeartbeats is how many heartbeat intervals of silence end a stream.
const MissedHeartbeats = 3

// idPattern is what an agent identifier (a target's account) may look like.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Verifier checks a bearer token: *auth.Service is one.
type Verifier interface {
	Verify(token string) (auth.Principal, error)
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
	c := job.Command
	fail := func(format string, args ...any) pipeline.CommandResult {
		return pipeline.CommandResult{CommandID: c.ID, Message: fmt.Sprintf(format, args...)}
	}
	payload, err := json.Marshal(wireJob{Tenant: job.Tenant, Command: job.Command, Spec: job.Spec, Target: job.Target})
	if err != nil {
		return fail("encode command for agent %q: %v", c.Account, err)
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
					return r
				}
				continue
			case <-ctx.Done():
				return fail("agent %q is not connected: %v", c.Account, context.Cause(ctx))
			}
		}
		msg := &agentpb.Command{Id: c.ID, Job: payload}
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
					return r
				}
			case <-cn.done:
				log.Info("agent disconnected with a command in flight; sending it again when the agent is back")
				break wait
			case <-ctx.Done():
				// Best effort: a stream that has ended needs no cancel.
				go cn.send(&agentpb.ServerMessage{Msg: &agentpb.ServerMessage_Cancel{Cancel: &agentpb.Cancel{Id: c.ID}}})
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
	err = h.serve(ctx, c)
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
	p, err := h.auth.Verify(strings.TrimSpace(token))
	switch {
	case errors.Is(err, auth.ErrTokenExpired):
		return p, status.Error(codes.Unauthenticated, auth.ErrTokenExpired.Error())
	case err != nil:
		return p, status.Error(codes.Unauthenticated, auth.ErrTokenInvalid.Error())
	case !p.HasAnyRole(agentRoles...):
		return p, status.Errorf(codes.PermissionDenied, "credential %s may not connect an agent: give it the %s role", p.ClientID, pipeline.RoleAgent)
	}
	return p, nil
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

// serve runs an accepted stream until it ends.
func (h *Hub) serve(ctx context.Context, c *conn) error {
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
	select {
	case err := <-recvErr:
		return err
	case err := <-c.kick:
		return err
	case <-ctx.Done():
		return ctx.Err()
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
