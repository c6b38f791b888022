package replicas

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/sortie-cd/sortie/store/postgres"
)

// Auth applies other servers' revocations (*auth.Service does).
type Auth interface {
	RevokeBefore(tenant, subject string, before int64)
	EndStreamsHere(tenant, role string)
}

// Peers is auth.Peers for servers sharing a database: it tells the others
// (ChannelRevocations) of each revocation and role redefinition, which
// their Node gives their Auth. Make it before the auth.Service, with the
// replica name the Node gets.
type Peers struct {
	Store   *postgres.Store
	Replica string
	Log     *slog.Logger
}

// revocation is what travels on ChannelRevocations.
type revocation struct {
	Replica string `json:"replica"`
	Tenant  string `json:"tenant"`
	Subject string `json:"subject,omitempty"`
	Before  int64  `json:"before,omitempty"`
	Role    string `json:"role,omitempty"`
}

// Revoked implements auth.Peers.
func (p *Peers) Revoked(tenant, subject string, before int64) {
	p.send(revocation{Replica: p.Replica, Tenant: tenant, Subject: subject, Before: before})
}

// StreamsEnded implements auth.Peers.
func (p *Peers) StreamsEnded(tenant, role string) {
	p.send(revocation{Replica: p.Replica, Tenant: tenant, Role: role})
}

// send tells the others. A revocation the database does not carry is
// logged: the other servers refuse the principal's old tokens only when
// they expire (at most a token lifetime).
func (p *Peers) send(r revocation) {
	b, _ := json.Marshal(r)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Store.Notify(ctx, postgres.ChannelRevocations, string(b)); err != nil && p.Log != nil {
		p.Log.Error("tell the other servers of a revocation", "tenant", r.Tenant, "err", err)
	}
}

// revoked applies another server's revocation.
func (n *Node) revoked(payload string) {
	var r revocation
	if n.auth == nil || json.Unmarshal([]byte(payload), &r) != nil || r.Replica == n.id {
		return
	}
	if r.Role != "" {
		n.auth.EndStreamsHere(r.Tenant, r.Role)
		return
	}
	n.auth.RevokeBefore(r.Tenant, r.Subject, r.Before)
}
