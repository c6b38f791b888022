package api

import (
	"net/http"
	"time"
)

// Agents is what the API needs of the agent connections: the server's
// agent hub has it.
type Agents interface {
	// ListAgents returns the agents connected now in tenant.
	ListAgents(tenant string) []AgentView
}

// AgentView is one connected agent in GET /api/v1/agents.
type AgentView struct {
	// ID is the agent identifier: the account targets name.
	ID             string    `json:"id"`
	Version        string    `json:"version"`
	ClusterVersion string    `json:"clusterVersion,omitempty"`
	ConnectedAt    time.Time `json:"connectedAt"`
	LastHeartbeat  time.Time `json:"lastHeartbeat"`
	RemoteAddress  string    `json:"remoteAddress"`
	// ClientID is the agent credential the identifier is bound to: the
	// one that registered it first, and the only one that may use it
	// until an admin deletes that credential.
	ClientID string `json:"clientId"`
}

// AgentList is the body of GET /api/v1/agents.
type AgentList struct {
	Agents []AgentView `json:"agents"`
}

func (s *server) listAgents(w http.ResponseWriter, _ *http.Request, p Principal) {
	out := AgentList{Agents: []AgentView{}}
	if s.agents != nil {
		out.Agents = append(out.Agents, s.agents.ListAgents(p.Tenant)...)
	}
	writeJSON(w, http.StatusOK, out)
}
