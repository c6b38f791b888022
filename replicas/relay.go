package replicas

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/sortie-cd/sortie/agent"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/postgres"
)

// Sealer seals what a server stores for itself (package secrets' Service):
// a relayed call's headers and body, and its answer, may carry secrets,
// so they are never in clear in the database.
type Sealer interface {
	Seal(ctx context.Context, purpose string, plain []byte) ([]byte, error)
	Open(ctx context.Context, purpose string, sealed []byte) ([]byte, error)
}

// routeGrace is how much longer the owner of a routed call waits than the
// replica sending it to the agent: its precise answer (no answer in time,
// the agent disconnected) comes back first.
const routeGrace = 3 * time.Second

// Relay is an HTTP client that relays through one agent, wherever its
// stream is: through this server's hub when it is here, else through the
// database to the replica that holds it. Its Do has http.Client's shape
// (webhook.Doer, analysis' and preview's Doer).
type Relay struct {
	n             *Node
	tenant, agent string
	local         *agent.RelayClient
}

// Relay returns the client that relays through the agent of tenant with
// identifier agentID. The agent need not be connected yet: each call
// fails at once while no replica holds its stream.
func (n *Node) Relay(tenant, agentID string) (*Relay, error) {
	c, err := n.hub.Relay(tenant, agentID)
	if err != nil {
		return nil, err
	}
	return &Relay{n: n, tenant: tenant, agent: agentID, local: c}, nil
}

// Do sends req through the agent and returns its response, read in full
// (agent.RelayClient's limits and errors).
func (r *Relay) Do(req *http.Request) (*http.Response, error) {
	if r.n.hub.HasAccount(r.tenant, r.agent) {
		return r.local.Do(req)
	}
	call, err := agent.NewRelayCall(req, r.agent)
	if err != nil {
		return nil, err
	}
	return call.Response(req, r.n.route(req.Context(), r.tenant, r.agent, call))
}

func relayPurpose(what, tenant, id string) string {
	return "agent relay " + what + "\x00" + tenant + "\x00" + id
}

// route writes call for the replica holding the agent's stream and waits,
// woken by notifications, for the answer it writes back; the row is
// deleted at the end, answered or not (which stops the sending replica).
func (n *Node) route(ctx context.Context, tenant, agentID string, call *agent.RelayCall) *agent.RelayAnswer {
	if n.sealer == nil {
		return agent.FailedRelay("the agent's stream is on another server, and this one cannot seal a call for it")
	}
	streams, err := n.st.AgentStreams(ctx, tenant, agentID, MissedRecords*n.every)
	if err != nil {
		return agent.FailedRelay(fmt.Sprintf("find the server holding the agent's stream: %v", err))
	}
	// A record of this replica's own is stale: the hub has no stream.
	if !slices.ContainsFunc(streams, func(s postgres.AgentStream) bool { return s.Replica != n.id }) {
		return agent.FailedRelay("the agent is not connected")
	}
	id := crand.Text()
	b, err := call.Marshal()
	if err == nil {
		b, err = n.sealer.Seal(ctx, relayPurpose("call", tenant, id), b)
	}
	if err != nil {
		return agent.FailedRelay(fmt.Sprintf("seal the call for the server holding the agent's stream: %v", err))
	}
	ctx, cancel := context.WithTimeout(ctx, call.WaitFor()+routeGrace)
	defer cancel()
	deadline, _ := ctx.Deadline()
	k := cmdKey{tenant, id}
	w := make(chan struct{}, 1)
	n.mu.Lock()
	n.relayWaiters[k] = w
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.relayWaiters, k)
		n.mu.Unlock()
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := n.st.DeleteAgentRelay(dctx, tenant, id); err != nil {
			n.log.Warn("delete a relayed call", "tenant", tenant, "agent", agentID, "relay", id, "err", err)
		}
	}()
	if err := n.st.PutAgentRelay(ctx, postgres.AgentRelay{Tenant: tenant, ID: id, Agent: agentID, Owner: n.id, Call: b, Deadline: deadline}); err != nil {
		return agent.FailedRelay(fmt.Sprintf("write the call for the server holding the agent's stream: %v", err))
	}
	for {
		r, err := n.st.GetAgentRelay(ctx, tenant, id)
		switch {
		case err != nil && ctx.Err() == nil:
			n.log.Warn("read a relayed call's answer", "tenant", tenant, "agent", agentID, "relay", id, "err", err)
		case err == nil && r.Answer == nil && r.ClaimedBy != "" && n.claimerLost(ctx, tenant, agentID, r.ClaimedBy):
			// It was sent on a stream that is gone, by a replica that did
			// not say so (it died): as on one server, the call fails.
			return agent.FailedRelay("the agent disconnected before answering")
		case err == nil && r.Answer != nil:
			plain, err := n.sealer.Open(ctx, relayPurpose("answer", tenant, id), r.Answer)
			if err != nil {
				return agent.FailedRelay(fmt.Sprintf("open the answer: %v", err))
			}
			a, err := agent.UnmarshalRelayAnswer(plain)
			if err != nil {
				return agent.FailedRelay(err.Error())
			}
			return a
		}
		select {
		case <-w:
		case <-ctx.Done():
			return agent.FailedRelay(fmt.Sprintf("no answer through the server holding the agent's stream: %v", context.Cause(ctx)))
		case <-n.ctx.Done():
			return agent.FailedRelay("this server stops")
		}
	}
}

// claimerLost reports whether the stream replica claimer sent a call on
// is gone: it no longer records the agent's stream, or the agent connected
// to another replica since (a replica that died keeps its record until it
// goes stale).
func (n *Node) claimerLost(ctx context.Context, tenant, agentID, claimer string) bool {
	streams, err := n.st.AgentStreams(ctx, tenant, agentID, MissedRecords*n.every)
	if err != nil {
		return false
	}
	var held time.Time
	found := false
	for _, s := range streams {
		if s.Replica == claimer {
			held, found = connectedAt(s), true
		}
	}
	if !found {
		return true
	}
	for _, s := range streams {
		if s.Replica != claimer && connectedAt(s).After(held) {
			return true
		}
	}
	return false
}

func connectedAt(s postgres.AgentStream) time.Time {
	var info agent.Info
	_ = json.Unmarshal(s.Info, &info)
	return info.ConnectedAt
}

// relayHere sends a call another server (or this one) wrote, for an agent
// whose stream is here, unless another server claimed it, and writes the
// agent's answer back.
func (n *Node) relayHere(tenant, id string) {
	ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
	defer cancel()
	r, err := n.st.ClaimAgentRelay(ctx, tenant, id, n.id)
	if errors.Is(err, store.ErrNotFound) {
		return
	}
	if err != nil {
		if n.ctx.Err() == nil {
			n.log.Warn("claim a relayed call", "tenant", tenant, "relay", id, "err", err)
		}
		return
	}
	log := n.log.With("tenant", tenant, "agent", r.Agent, "relay", id, "owner", r.Owner)
	var ans *agent.RelayAnswer
	plain, err := n.open(ctx, relayPurpose("call", tenant, id), r.Call)
	var call *agent.RelayCall
	if err == nil {
		call, err = agent.UnmarshalRelayCall(plain, r.Agent)
	}
	k := cmdKey{tenant, id}
	dctx, stop := context.WithDeadline(n.ctx, r.Deadline)
	defer stop()
	if err != nil {
		ans = agent.FailedRelay(err.Error())
	} else {
		n.mu.Lock()
		n.relaying[k] = stop
		n.mu.Unlock()
		defer func() {
			n.mu.Lock()
			delete(n.relaying, k)
			n.mu.Unlock()
		}()
		log.Debug("relaying a call for another server")
		ans = n.hub.Send(dctx, tenant, r.Agent, call)
		if dctx.Err() != nil && n.ctx.Err() == nil {
			// Its owner gave up (deleted it) or its deadline passed.
			return
		}
	}
	b, err := ans.Marshal()
	if err == nil {
		b, err = n.seal(context.WithoutCancel(dctx), relayPurpose("answer", tenant, id), b)
	}
	if err == nil {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(dctx), 10*time.Second)
		err = n.st.SetAgentRelayAnswer(wctx, tenant, id, b)
		cancel()
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		log.Warn("write a relayed call's answer", "err", err)
	}
}

func (n *Node) seal(ctx context.Context, purpose string, b []byte) ([]byte, error) {
	if n.sealer == nil {
		return nil, errors.New("this server cannot seal relayed calls")
	}
	return n.sealer.Seal(ctx, purpose, b)
}

func (n *Node) open(ctx context.Context, purpose string, b []byte) ([]byte, error) {
	if n.sealer == nil {
		return nil, errors.New("this server cannot open relayed calls")
	}
	return n.sealer.Open(ctx, purpose, b)
}

// relayNoted handles a note on ChannelRelays: a new call for an agent
// whose stream is here is sent, and one sent from here that its owner
// deleted (gone) is stopped.
func (n *Node) relayNoted(tenant, agentID, id string, gone bool) {
	if gone {
		n.mu.Lock()
		stop := n.relaying[cmdKey{tenant, id}]
		n.mu.Unlock()
		if stop != nil {
			stop()
		}
		return
	}
	if n.hub.HasAccount(tenant, agentID) {
		n.spawn(func() { n.relayHere(tenant, id) })
	}
}

// relayPending sends the calls nobody claimed of an agent that just
// connected here (or after notifications were lost).
func (n *Node) relayPending(ctx context.Context, tenant, agentID string) {
	ids, err := n.st.UnclaimedAgentRelays(ctx, tenant, agentID)
	if err != nil {
		if n.ctx.Err() == nil {
			n.log.Warn("read the calls waiting for an agent", "tenant", tenant, "agent", agentID, "err", err)
		}
		return
	}
	for _, id := range ids {
		n.spawn(func() { n.relayHere(tenant, id) })
	}
}
