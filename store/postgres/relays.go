package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sortie-cd/sortie/store"
)

// AgentRelay is an HTTP call to relay through an agent whose stream
// another server may hold: Owner is the server waiting for the answer,
// Call and Answer are sealed by the servers (the store never sees them in
// clear), ClaimedBy the server that sent it to the agent.
type AgentRelay struct {
	Tenant, ID, Agent, Owner string
	Call                     []byte
	Deadline                 time.Time
	ClaimedBy                string
	Answer                   []byte
}

// PutAgentRelay writes r for its agent's server and tells the servers
// (ChannelRelays); the rows past their deadline (their owner died) go.
func (s *Store) PutAgentRelay(ctx context.Context, r AgentRelay) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("postgres: put agent relay: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM agent_relays WHERE deadline < `+dbNow+` - 60000000000`); err != nil {
		return fmt.Errorf("postgres: put agent relay: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO agent_relays (tenant, id, agent, owner, call, deadline, created_at) VALUES ($1, $2, $3, $4, $5, $6, `+dbNow+`)`,
		r.Tenant, r.ID, r.Agent, r.Owner, r.Call, r.Deadline.UnixNano()); err != nil {
		return fmt.Errorf("postgres: put agent relay: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, ChannelRelays, r.Tenant+" "+r.Agent+" "+r.ID); err != nil {
		return fmt.Errorf("postgres: put agent relay: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("postgres: put agent relay: %w", err)
	}
	return nil
}

// ClaimAgentRelay gives an unclaimed call to replica, which sends it to
// the agent: of several servers holding the agent's stream one wins, and
// a call is sent once. store.ErrNotFound: claimed already, or gone.
func (s *Store) ClaimAgentRelay(ctx context.Context, tenant, id, replica string) (*AgentRelay, error) {
	r := AgentRelay{Tenant: tenant, ID: id, ClaimedBy: replica}
	var dl int64
	err := s.db.QueryRowContext(ctx, `UPDATE agent_relays SET claimed_by = $3 WHERE tenant = $1 AND id = $2 AND claimed_by IS NULL
RETURNING agent, owner, call, deadline`, tenant, id, replica).Scan(&r.Agent, &r.Owner, &r.Call, &dl)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("postgres: agent relay %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: claim agent relay: %w", err)
	}
	r.Deadline = time.Unix(0, dl).UTC()
	return &r, nil
}

// UnclaimedAgentRelays returns the ids of an agent's calls nobody sent
// yet: what the server its stream just reached sends.
func (s *Store) UnclaimedAgentRelays(ctx context.Context, tenant, agent string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM agent_relays WHERE tenant = $1 AND agent = $2 AND claimed_by IS NULL ORDER BY created_at`, tenant, agent)
	if err != nil {
		return nil, fmt.Errorf("postgres: unclaimed agent relays: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("postgres: unclaimed agent relays: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: unclaimed agent relays: %w", err)
	}
	return out, nil
}

// SetAgentRelayAnswer writes a call's answer, unless it has one, and tells
// its owner (ChannelRelayAnswers). A call its owner deleted meanwhile is
// store.ErrNotFound.
func (s *Store) SetAgentRelayAnswer(ctx context.Context, tenant, id string, answer []byte) error {
	err := s.db.QueryRowContext(ctx, `WITH r AS (UPDATE agent_relays SET answer = $3 WHERE tenant = $1 AND id = $2 AND answer IS NULL RETURNING owner)
SELECT pg_notify($4, r.owner || ' ' || $1 || ' ' || $2) FROM r`, tenant, id, answer, ChannelRelayAnswers).Scan(new(any))
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("postgres: agent relay %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("postgres: agent relay answer: %w", err)
	}
	return nil
}

// GetAgentRelay returns one call (store.ErrNotFound once its owner deleted
// it).
func (s *Store) GetAgentRelay(ctx context.Context, tenant, id string) (*AgentRelay, error) {
	r := AgentRelay{Tenant: tenant, ID: id}
	var dl int64
	var claimed sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT agent, owner, call, deadline, claimed_by, answer FROM agent_relays WHERE tenant = $1 AND id = $2`, tenant, id).
		Scan(&r.Agent, &r.Owner, &r.Call, &dl, &claimed, &r.Answer)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("postgres: agent relay %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: agent relay: %w", err)
	}
	r.Deadline, r.ClaimedBy = time.Unix(0, dl).UTC(), claimed.String
	return &r, nil
}

// DeleteAgentRelay removes a call its owner is done with (answered, or
// given up) and tells the servers, so that the one sending it stops.
func (s *Store) DeleteAgentRelay(ctx context.Context, tenant, id string) error {
	_, err := s.db.ExecContext(ctx, `WITH r AS (DELETE FROM agent_relays WHERE tenant = $1 AND id = $2 RETURNING agent)
SELECT pg_notify($3, $1 || ' ' || r.agent || ' ' || $2 || ' gone') FROM r`, tenant, id, ChannelRelays)
	if err != nil {
		return fmt.Errorf("postgres: delete agent relay: %w", err)
	}
	return nil
}
