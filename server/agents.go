package server

import (
	"context"
	"net/http"

	"github.com/sortie-cd/sortie/agent"
	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/webhook"
)

// clusters routes each cluster command to whoever serves its account: the
// in-process executor (`sortie dev`'s --account) first, else the agent hub,
// which waits for the account's agent when it is not connected. An agent
// that registers under an account served in process is never used.
type clusters struct {
	local runner.Executor
	// hub runs commands on agents: the agent.Hub (one server), or
	// replicas.Node (through the database, on the replica holding the
	// agent's stream).
	hub runner.Executor
}

// agentLister lists a tenant's connected agents: the hub's, or every
// replica's (replicas.Node).
type agentLister interface {
	List(tenant string) []agent.Info
}

func (c clusters) HasAccount(tenant, account string) bool {
	return c.local.HasAccount(tenant, account) || c.hub.HasAccount(tenant, account)
}

func (c clusters) Execute(ctx context.Context, job runner.Job) pipeline.CommandResult {
	if c.local.HasAccount(job.Tenant, job.Command.Account) {
		return c.local.Execute(ctx, job)
	}
	return c.hub.Execute(ctx, job)
}

// relayer makes the client that relays through an agent: the hub's (one
// server), or replicas.Node's, which reaches the agent's stream through
// the database when another replica holds it.
type relayer func(tenant, agentID string) (webhook.Doer, error)

// hubRelay is the relayer of one server: its hub holds every stream.
func hubRelay(hub *agent.Hub) relayer {
	return func(tenant, agentID string) (webhook.Doer, error) {
		c, err := hub.Relay(tenant, agentID)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// agentRelay is the gates' relay: a webhook with networkMode
// remoteNetworkAgent, or a Prometheus provider naming an agent, is sent by
// that agent from inside its cluster.
type agentRelay struct{ relay relayer }

func (r agentRelay) Doer(tenant, agentID string) (webhook.Doer, error) {
	return r.relay(tenant, agentID)
}

// agentList adapts the hub to what the API asks.
type agentList struct{ hub agentLister }

func (l agentList) ListAgents(tenant string) []api.AgentView {
	var out []api.AgentView
	for _, a := range l.hub.List(tenant) {
		out = append(out, api.AgentView{
			ID: a.ID, Version: a.Version, ClusterVersion: a.ClusterVersion,
			ConnectedAt: a.ConnectedAt, LastHeartbeat: a.LastHeartbeat, RemoteAddress: a.RemoteAddr,
			ClientID: a.ClientID,
		})
	}
	return out
}

// protocols serves HTTP/1 and HTTP/2: agents' gRPC streams share the API's
// listener. Over the server's own TLS, HTTP/2 is chosen by ALPN; in
// plaintext, cleartext HTTP/2 (prior knowledge) is served too, and a TLS
// proxy in front must speak HTTP/2 to the server for the agents' streams.
func protocols(tls bool) *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(!tls)
	return &p
}
