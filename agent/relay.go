package agent

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sortie-cd/sortie/agent/agentpb"
	"github.com/sortie-cd/sortie/egress"
)

// Limits of a relayed HTTP call.
const (
	// MaxRelayRequestBody is the largest request body the hub relays.
	MaxRelayRequestBody = 1 << 20
	// MaxRelayResponseBody is the largest response body the agent reads;
	// a longer one fails the call.
	MaxRelayResponseBody = 10 << 20
	// DefaultRelayTimeout bounds a call whose context has no deadline.
	DefaultRelayTimeout = time.Minute
	// MaxRelayTimeout bounds every call, whatever its context says.
	MaxRelayTimeout = 5 * time.Minute
)

// RelayedByHeader is set by the agent on every request it relays, to its
// identifier: the receiver can tell (and log) that the call came through
// Sortie's agent.
const RelayedByHeader = "X-Sortie-Relayed-By"

// relayGrace is how much longer the hub waits than the agent's deadline,
// so that the agent's precise error (connect refused, timed out) arrives
// first.
const relayGrace = 2 * time.Second

// maxMessage is the largest gRPC message either side accepts: a relayed
// response at its limit, with room for its headers.
const maxMessage = MaxRelayResponseBody + 2<<20

// RelayClient sends HTTP requests through one agent, which makes them
// inside its cluster's network. Its Do has http.Client's shape, so it is
// the Doer of webhook.Relay and analysis.Relay.
type RelayClient struct {
	hub           *Hub
	tenant, agent string
}

// relayWait is a relayed call waiting for its answer on one stream.
type relayWait struct {
	conn *conn
	resp chan *agentpb.RelayResponse
}

// Relay returns the client that relays through the agent of tenant with
// identifier agentID. The agent need not be connected yet: each call
// fails at once while it is not.
func (h *Hub) Relay(tenant, agentID string) (*RelayClient, error) {
	if !idPattern.MatchString(agentID) {
		return nil, fmt.Errorf("agent identifier %q is not valid", agentID)
	}
	return &RelayClient{hub: h, tenant: tenant, agent: agentID}, nil
}

// Do sends req through the agent and returns its response, whose body is
// read in full (at most MaxRelayResponseBody). The call ends with req's
// context, and at the latest after MaxRelayTimeout.
func (c *RelayClient) Do(req *http.Request) (*http.Response, error) {
	call, err := NewRelayCall(req, c.agent)
	if err != nil {
		return nil, err
	}
	return call.Response(req, c.hub.Send(req.Context(), c.tenant, c.agent, call))
}

// RelayCall is one HTTP call to relay through an agent, as the agent
// receives it: checked (an absolute http(s) URL the caller's egress scope
// allows, a body within MaxRelayRequestBody) and bounded (its timeout, from
// the request's deadline). Between servers it travels as Marshal's bytes,
// which hold the request's headers and body, secrets included: they are
// sealed before they are stored, and never logged.
type RelayCall struct {
	msg   *agentpb.RelayRequest
	agent string
}

// RelayAnswer is an agent's answer to a RelayCall, or why there is none.
type RelayAnswer struct{ msg *agentpb.RelayResponse }

// NewRelayCall checks and reads req (its body is consumed) for agentID.
func NewRelayCall(req *http.Request, agentID string) (*RelayCall, error) {
	if req.URL == nil || (req.URL.Scheme != "http" && req.URL.Scheme != "https") || req.URL.Host == "" {
		return nil, fmt.Errorf("relay through agent %s: %q is not an absolute http(s) URL", agentID, req.URL)
	}
	// The agent checks each hop again (redirects); the first is refused
	// here, before the request leaves the server.
	scope := egress.ScopeOf(req.Context())
	if err := scope.Check(req.URL); err != nil {
		return nil, fmt.Errorf("relay through agent %s: %w", agentID, err)
	}
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(io.LimitReader(req.Body, MaxRelayRequestBody+1))
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("relay through agent %s: read request body: %w", agentID, err)
		}
		if len(b) > MaxRelayRequestBody {
			return nil, fmt.Errorf("relay through agent %s: the request body is over the %d MiB limit", agentID, MaxRelayRequestBody>>20)
		}
		body = b
	}
	timeout := DefaultRelayTimeout
	if d, ok := req.Context().Deadline(); ok {
		timeout = time.Until(d)
	}
	timeout = min(timeout, MaxRelayTimeout)
	if timeout <= 0 {
		return nil, fmt.Errorf("relay through agent %s: %w", agentID, context.DeadlineExceeded)
	}
	msg := &agentpb.RelayRequest{Method: req.Method, Url: req.URL.String(), Body: body, TimeoutMs: max(timeout.Milliseconds(), 1),
		CarriesSecret: scope.Secret}
	for _, r := range scope.Restricted {
		msg.Restrictions = append(msg.Restrictions, &agentpb.HostRestriction{Secret: r.Secret, Hosts: r.Hosts})
	}
	if msg.Method == "" {
		msg.Method = http.MethodGet
	}
	for k, vs := range req.Header {
		msg.Headers = append(msg.Headers, &agentpb.Header{Key: k, Values: vs})
	}
	return &RelayCall{msg: msg, agent: agentID}, nil
}

// Timeout is how long the agent gives the call; whoever waits for the
// answer waits WaitFor.
func (c *RelayCall) Timeout() time.Duration {
	return time.Duration(c.msg.GetTimeoutMs()) * time.Millisecond
}

// WaitFor is how long a hub waits for the agent's answer: a little more
// than the agent's timeout, so that the agent's precise error (connect
// refused, timed out) arrives first.
func (c *RelayCall) WaitFor() time.Duration { return c.Timeout() + relayGrace }

// Marshal encodes the call (headers and body included: seal it).
func (c *RelayCall) Marshal() ([]byte, error) { return proto.Marshal(c.msg) }

// UnmarshalRelayCall decodes Marshal's bytes, for agent agentID, and
// checks the limits again.
func UnmarshalRelayCall(b []byte, agentID string) (*RelayCall, error) {
	msg := &agentpb.RelayRequest{}
	if err := proto.Unmarshal(b, msg); err != nil {
		return nil, fmt.Errorf("relay through agent %s: the call does not decode: %w", agentID, err)
	}
	if len(msg.GetBody()) > MaxRelayRequestBody {
		return nil, fmt.Errorf("relay through agent %s: the request body is over the %d MiB limit", agentID, MaxRelayRequestBody>>20)
	}
	msg.TimeoutMs = min(max(msg.GetTimeoutMs(), 1), MaxRelayTimeout.Milliseconds())
	return &RelayCall{msg: msg, agent: agentID}, nil
}

// Marshal encodes the answer (the response's body included: seal it).
func (a *RelayAnswer) Marshal() ([]byte, error) { return proto.Marshal(a.msg) }

// UnmarshalRelayAnswer decodes RelayAnswer.Marshal's bytes.
func UnmarshalRelayAnswer(b []byte) (*RelayAnswer, error) {
	msg := &agentpb.RelayResponse{}
	if err := proto.Unmarshal(b, msg); err != nil {
		return nil, fmt.Errorf("the relayed answer does not decode: %w", err)
	}
	return &RelayAnswer{msg: msg}, nil
}

// FailedRelay is an answer that says why no agent answered.
func FailedRelay(why string) *RelayAnswer {
	return &RelayAnswer{msg: &agentpb.RelayResponse{Error: why}}
}

// Send relays call through the agent of tenant connected here and waits
// for its answer, at most call.WaitFor(): an answer that fails says why
// when the agent is not connected here, disconnects, or does not answer
// in time. When ctx ends first the agent is told to stop.
func (h *Hub) Send(ctx context.Context, tenant, agentID string, call *RelayCall) *RelayAnswer {
	ctx, cancel := context.WithTimeout(ctx, call.WaitFor())
	defer cancel()
	id := crand.Text()
	w := relayWait{resp: make(chan *agentpb.RelayResponse, 1)}
	h.mu.Lock()
	w.conn = h.conns[connKey{tenant, agentID}]
	if w.conn != nil {
		h.relays[id] = w
	}
	h.mu.Unlock()
	if w.conn == nil {
		return FailedRelay("the agent is not connected")
	}
	defer func() {
		h.mu.Lock()
		delete(h.relays, id)
		h.mu.Unlock()
	}()
	msg := proto.CloneOf(call.msg)
	msg.Id = id
	if err := w.conn.send(&agentpb.ServerMessage{Msg: &agentpb.ServerMessage_RelayRequest{RelayRequest: msg}}); err != nil {
		return FailedRelay(err.Error())
	}
	select {
	case r := <-w.resp:
		return &RelayAnswer{msg: r}
	case <-w.conn.done:
		return FailedRelay("the agent disconnected before answering")
	case <-ctx.Done():
		go w.conn.send(&agentpb.ServerMessage{Msg: &agentpb.ServerMessage_RelayCancel{RelayCancel: &agentpb.RelayCancel{Id: id}}})
		return FailedRelay(fmt.Sprintf("no answer: %v", context.Cause(ctx)))
	}
}

// Response is the answer as req's response, body read in full, or the
// error that says why the call failed (an egress refusal as
// *egress.DeniedError).
func (c *RelayCall) Response(req *http.Request, a *RelayAnswer) (*http.Response, error) {
	r := a.msg
	if f := r.GetRefused(); f != nil {
		return nil, fmt.Errorf("relay through agent %s: %w", c.agent, &egress.DeniedError{Host: f.GetHost(), Reason: f.GetReason(), Hint: f.GetHint()})
	}
	if r.GetError() != "" {
		return nil, fmt.Errorf("relay through agent %s: %s", c.agent, r.GetError())
	}
	resp := &http.Response{
		Status:     fmt.Sprintf("%d %s", r.GetStatus(), http.StatusText(int(r.GetStatus()))),
		StatusCode: int(r.GetStatus()),
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{},
		Body:          io.NopCloser(bytes.NewReader(r.GetBody())),
		ContentLength: int64(len(r.GetBody())),
		Request:       req,
	}
	for _, hd := range r.GetHeaders() {
		resp.Header[hd.GetKey()] = hd.GetValues()
	}
	return resp, nil
}

// relayed hands a RelayResponse to the call waiting for it, if it came on
// the stream the call was sent on (an agent answers only its own calls).
func (h *Hub) relayed(c *conn, r *agentpb.RelayResponse) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w, ok := h.relays[r.GetId()]
	if !ok || w.conn != c {
		return
	}
	select {
	case w.resp <- r:
	default:
	}
}

// relay makes one relayed call and answers it on s, the stream that asked.
func (a *Agent) relay(ctx context.Context, s *session, req *agentpb.RelayRequest) {
	id := req.GetId()
	timeout := DefaultRelayTimeout
	if ms := req.GetTimeoutMs(); ms > 0 {
		timeout = time.Duration(ms) * time.Millisecond
	}
	timeout = min(timeout, MaxRelayTimeout)
	// Under Run's context: a relayed call ends with the agent.
	ctx, cancel := context.WithTimeout(ctx, timeout)
	a.mu.Lock()
	a.relays[id] = cancel
	a.mu.Unlock()
	start := time.Now()
	resp := a.doRelay(ctx, req, timeout)
	a.mu.Lock()
	delete(a.relays, id)
	a.mu.Unlock()
	cancel()
	resp.Id = id
	outcome := "error"
	if resp.GetError() == "" {
		outcome = "answered"
	}
	a.m.relays.WithLabelValues(outcome).Inc()
	// The URL's path and query may carry secrets: only its host is logged.
	host := ""
	if u, err := url.Parse(req.GetUrl()); err == nil {
		host = u.Host
	}
	a.log.Info("relayed a request", "method", req.GetMethod(), "host", host, "status", resp.GetStatus(),
		"err", resp.GetError(), "duration", time.Since(start).Round(time.Millisecond))
	if err := s.send(&agentpb.AgentMessage{Msg: &agentpb.AgentMessage_RelayResponse{RelayResponse: resp}}); err != nil {
		a.log.Info("send relayed response failed", "err", err)
	}
}

func (a *Agent) doRelay(ctx context.Context, req *agentpb.RelayRequest, timeout time.Duration) *agentpb.RelayResponse {
	fail := func(format string, args ...any) *agentpb.RelayResponse {
		return &agentpb.RelayResponse{Error: fmt.Sprintf(format, args...)}
	}
	if len(req.GetBody()) > MaxRelayRequestBody {
		return fail("the request body is over the %d MiB limit", MaxRelayRequestBody>>20)
	}
	u, err := url.Parse(req.GetUrl())
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fail("not an absolute http(s) URL")
	}
	var body io.Reader
	if len(req.GetBody()) > 0 {
		body = bytes.NewReader(req.GetBody())
	}
	scope := egress.Scope{Secret: req.GetCarriesSecret()}
	for _, r := range req.GetRestrictions() {
		scope.Restricted = append(scope.Restricted, egress.Restriction{Secret: r.GetSecret(), Hosts: r.GetHosts()})
	}
	hr, err := http.NewRequestWithContext(egress.WithScope(ctx, scope), req.GetMethod(), req.GetUrl(), body)
	if err != nil {
		return fail("bad request: %v", err)
	}
	for _, h := range req.GetHeaders() {
		for _, v := range h.GetValues() {
			hr.Header.Add(h.GetKey(), v)
		}
	}
	hr.Header.Set(RelayedByHeader, a.o.AgentID)
	client := a.relayc
	if a.o.ServiceProxy != nil && isServiceHost(u.Hostname()) {
		// The API server's proxy is dialed, not the Service: the scope is
		// still checked on each hop.
		client = &http.Client{Transport: a.relayEgress.Guard(a.o.ServiceProxy), CheckRedirect: a.relayc.CheckRedirect}
	}
	resp, err := client.Do(hr)
	if err != nil {
		// url.Error repeats the URL, which may carry a secret: the server
		// has it already and masks it, but say what failed without it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fail("%s %s: no answer within %s", req.GetMethod(), u.Host, timeout)
		}
		var denied *egress.DeniedError
		if errors.As(err, &denied) {
			r := fail("%s %s: %v", req.GetMethod(), u.Host, denied)
			r.Refused = &agentpb.EgressRefusal{Host: denied.Host, Reason: denied.Reason, Hint: denied.Hint}
			return r
		}
		return fail("%s %s: %v", req.GetMethod(), u.Host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxRelayResponseBody+1))
	if err != nil {
		return fail("%s %s: read the response: %v", req.GetMethod(), u.Host, err)
	}
	if len(b) > MaxRelayResponseBody {
		return fail("%s %s answered %s with a body over the %d MiB limit", req.GetMethod(), u.Host, resp.Status, MaxRelayResponseBody>>20)
	}
	out := &agentpb.RelayResponse{Status: int32(resp.StatusCode), Body: b}
	for k, vs := range resp.Header {
		out.Headers = append(out.Headers, &agentpb.Header{Key: k, Values: vs})
	}
	return out
}

// cancelRelay stops a relayed call the server no longer waits for.
func (a *Agent) cancelRelay(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if cancel, ok := a.relays[id]; ok {
		cancel()
	}
}

// relayPolicy is the egress policy of relayed calls: what package egress
// refuses by default (loopback, link-local, metadata), unless allow says
// otherwise. Its Client is the agent's client for relayed calls: the
// system's roots, HTTPS_PROXY/NO_PROXY honoured, each connection checked,
// and a call carrying a secret not redirected to another host; the call's
// context bounds it.
func relayPolicy(allow []netip.Prefix) *egress.Policy {
	return &egress.Policy{Allow: allow, AllowFlag: "sortie agent --relay-allow"}
}

// isServiceHost reports whether host is a Service's in-cluster name
// (NAME.NAMESPACE.svc, or with .cluster.local).
func isServiceHost(host string) bool {
	h := strings.TrimSuffix(host, ".cluster.local")
	return strings.HasSuffix(h, ".svc") && strings.Count(h, ".") == 2
}
