package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sortie-cd/sortie/store"
)

// AgentCommand is a command for an agent as it travels between servers:
// Owner is the server waiting for its result (the pipeline's), Job the
// command as the agent receives it (JSON), Result the agent's answer once
// a server holding its stream wrote it.
type AgentCommand struct {
	Tenant, ID, Agent, Owner string
	Job                      []byte
	// Deadline is when the owner stops waiting (zero: never).
	Deadline  time.Time
	Cancelled bool
	Result    []byte
}

// CommandReport is one report of an agent for a command in flight
// (kubeexec's applied objects), kept until the owner takes the result.
type CommandReport struct {
	Seq  int64
	Type string
	Data []byte
}

// AgentStream says that server Replica holds the stream of agent Agent of
// Tenant; Info is what it tells of the agent (JSON).
type AgentStream struct {
	Tenant, Agent, Replica string
	Info                   []byte
}

// dbNow is the database's clock in nanoseconds: what every server compares
// agent_streams.seen_at with, so their clocks need not agree.
const dbNow = `(extract(epoch from clock_timestamp()) * 1e9)::bigint`

// PutAgentCommand writes c for its agent, owned by c.Owner; a command
// with the same id (the owner sends it again, or a new owner took the
// pipeline over) is given to c.Owner, un-cancelled, and keeps its result.
// It returns the result when there is one already, and tells the servers
// (ChannelCommands).
func (s *Store) PutAgentCommand(ctx context.Context, c AgentCommand) ([]byte, error) {
	var dl int64
	if !c.Deadline.IsZero() {
		dl = c.Deadline.UnixNano()
	}
	var res sql.NullString
	err := s.db.QueryRowContext(ctx, `WITH c AS (
	INSERT INTO agent_commands (tenant, id, agent, owner, job, deadline, created_at) VALUES ($1, $2, $3, $4, $5, $6, `+dbNow+`)
	ON CONFLICT (tenant, id) DO UPDATE SET owner = excluded.owner, agent = excluded.agent, job = excluded.job, deadline = excluded.deadline, cancelled = false
	RETURNING result)
SELECT c.result, pg_notify($7, $1 || ' ' || $3 || ' ' || $2) FROM c`,
		c.Tenant, c.ID, c.Agent, c.Owner, string(c.Job), dl, ChannelCommands).Scan(&res, new(any))
	if err != nil {
		return nil, fmt.Errorf("postgres: put agent command: %w", err)
	}
	if res.Valid {
		return []byte(res.String), nil
	}
	return nil, nil
}

const commandColumns = `tenant, id, agent, owner, job, deadline, cancelled, result`

func scanCommand(sc interface{ Scan(...any) error }) (AgentCommand, error) {
	var c AgentCommand
	var job string
	var dl int64
	var res sql.NullString
	if err := sc.Scan(&c.Tenant, &c.ID, &c.Agent, &c.Owner, &job, &dl, &c.Cancelled, &res); err != nil {
		return c, err
	}
	c.Job = []byte(job)
	if dl != 0 {
		c.Deadline = time.Unix(0, dl).UTC()
	}
	if res.Valid {
		c.Result = []byte(res.String)
	}
	return c, nil
}

// GetAgentCommand returns one command (store.ErrNotFound once its owner
// took the result).
func (s *Store) GetAgentCommand(ctx context.Context, tenant, id string) (*AgentCommand, error) {
	c, err := scanCommand(s.db.QueryRowContext(ctx, `SELECT `+commandColumns+` FROM agent_commands WHERE tenant = $1 AND id = $2`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("postgres: agent command %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: agent command: %w", err)
	}
	return &c, nil
}

// PendingAgentCommands returns the commands of an agent not answered:
// what the server that now holds its stream delivers (or, cancelled ones,
// cancels on the agent and deletes).
func (s *Store) PendingAgentCommands(ctx context.Context, tenant, agent string) ([]AgentCommand, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+commandColumns+` FROM agent_commands
WHERE tenant = $1 AND agent = $2 AND result IS NULL ORDER BY created_at`, tenant, agent)
	if err != nil {
		return nil, fmt.Errorf("postgres: pending agent commands: %w", err)
	}
	defer rows.Close()
	var out []AgentCommand
	for rows.Next() {
		c, err := scanCommand(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: pending agent commands: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: pending agent commands: %w", err)
	}
	return out, nil
}

// AddCommandReport appends a report to a command not answered yet and
// tells its owner (ChannelResults); a command answered or taken already is
// store.ErrNotFound.
func (s *Store) AddCommandReport(ctx context.Context, tenant, id, typ string, data []byte) error {
	var d sql.NullString
	if data != nil {
		d = sql.NullString{String: string(data), Valid: true}
	}
	err := s.db.QueryRowContext(ctx, `WITH c AS (SELECT owner FROM agent_commands WHERE tenant = $1 AND id = $2 AND result IS NULL),
r AS (INSERT INTO agent_command_reports (tenant, command, type, data) SELECT $1, $2, $3, $4 FROM c RETURNING seq)
SELECT pg_notify($5, c.owner || ' ' || $1 || ' ' || $2) FROM c, r`, tenant, id, typ, d, ChannelResults).Scan(new(any))
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("postgres: report for agent command %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("postgres: report for agent command: %w", err)
	}
	return nil
}

// SetCommandResult writes a command's result unless it has one (the first
// server to answer wins; the agent ran the command once whichever server
// delivered it) and tells its owner.
func (s *Store) SetCommandResult(ctx context.Context, tenant, id string, result []byte) error {
	_, err := s.db.ExecContext(ctx, `WITH c AS (UPDATE agent_commands SET result = $3 WHERE tenant = $1 AND id = $2 AND result IS NULL RETURNING owner)
SELECT pg_notify($4, c.owner || ' ' || $1 || ' ' || $2) FROM c`, tenant, id, string(result), ChannelResults)
	if err != nil {
		return fmt.Errorf("postgres: agent command result: %w", err)
	}
	return nil
}

// CommandProgress returns, for its owner, the reports of a command after
// seq after, its result when it has one, and who owns it now (another
// server took the pipeline over: this one stops waiting).
func (s *Store) CommandProgress(ctx context.Context, tenant, id string, after int64) (reports []CommandReport, result []byte, owner string, err error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, nil, "", fmt.Errorf("postgres: command progress: %w", err)
	}
	defer tx.Rollback()
	var res sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT owner, result FROM agent_commands WHERE tenant = $1 AND id = $2`, tenant, id).Scan(&owner, &res)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, "", fmt.Errorf("postgres: agent command %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, nil, "", fmt.Errorf("postgres: command progress: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT seq, type, data FROM agent_command_reports WHERE tenant = $1 AND command = $2 AND seq > $3 ORDER BY seq`, tenant, id, after)
	if err != nil {
		return nil, nil, "", fmt.Errorf("postgres: command progress: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r CommandReport
		var d sql.NullString
		if err := rows.Scan(&r.Seq, &r.Type, &d); err != nil {
			return nil, nil, "", fmt.Errorf("postgres: command progress: %w", err)
		}
		if d.Valid {
			r.Data = []byte(d.String)
		}
		reports = append(reports, r)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, "", fmt.Errorf("postgres: command progress: %w", err)
	}
	if res.Valid {
		result = []byte(res.String)
	}
	return reports, result, owner, nil
}

// DeleteAgentCommand removes a command its owner is done with (its
// reports go with it); a command another server owns now is left.
func (s *Store) DeleteAgentCommand(ctx context.Context, tenant, id, owner string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM agent_commands WHERE tenant = $1 AND id = $2 AND owner = $3`, tenant, id, owner); err != nil {
		return fmt.Errorf("postgres: delete agent command: %w", err)
	}
	return nil
}

// CancelAgentCommand marks an unanswered command of owner cancelled (the
// engine gave up on it) and tells the servers, so the one holding the
// agent's stream sends Cancel; the row goes once no server delivers it.
func (s *Store) CancelAgentCommand(ctx context.Context, tenant, id, owner string) error {
	_, err := s.db.ExecContext(ctx, `WITH c AS (UPDATE agent_commands SET cancelled = true WHERE tenant = $1 AND id = $2 AND owner = $3 AND result IS NULL RETURNING agent)
SELECT pg_notify($4, $1 || ' ' || c.agent || ' ' || $2) FROM c`, tenant, id, owner, ChannelCommands)
	if err != nil {
		return fmt.Errorf("postgres: cancel agent command: %w", err)
	}
	return nil
}

// DeleteCancelledCommand removes a cancelled command once the agent was
// told.
func (s *Store) DeleteCancelledCommand(ctx context.Context, tenant, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM agent_commands WHERE tenant = $1 AND id = $2 AND cancelled`, tenant, id); err != nil {
		return fmt.Errorf("postgres: delete agent command: %w", err)
	}
	return nil
}

// PutAgentStreams records that replica holds these agents' streams now
// (seen_at is the database's clock), and that it holds no other.
func (s *Store) PutAgentStreams(ctx context.Context, replica string, streams []AgentStream) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("postgres: agent streams: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM agent_streams WHERE replica = $1`, replica); err != nil {
		return fmt.Errorf("postgres: agent streams: %w", err)
	}
	for _, a := range streams {
		if _, err := tx.ExecContext(ctx, `INSERT INTO agent_streams (tenant, agent, replica, info, seen_at) VALUES ($1, $2, $3, $4, `+dbNow+`)`,
			a.Tenant, a.Agent, replica, string(a.Info)); err != nil {
			return fmt.Errorf("postgres: agent streams: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, ChannelStreams, replica); err != nil {
		return fmt.Errorf("postgres: agent streams: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("postgres: agent streams: %w", err)
	}
	return nil
}

// AgentStreams returns the streams of tenant's agents (of agent only,
// when not empty) that some server saw within fresh, by agent.
func (s *Store) AgentStreams(ctx context.Context, tenant, agent string, fresh time.Duration) ([]AgentStream, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT tenant, agent, replica, info FROM agent_streams
WHERE tenant = $1 AND ($2 = '' OR agent = $2) AND seen_at > `+dbNow+` - $3 ORDER BY agent, seen_at DESC`, tenant, agent, fresh.Nanoseconds())
	if err != nil {
		return nil, fmt.Errorf("postgres: agent streams: %w", err)
	}
	defer rows.Close()
	var out []AgentStream
	for rows.Next() {
		var a AgentStream
		var info string
		if err := rows.Scan(&a.Tenant, &a.Agent, &a.Replica, &info); err != nil {
			return nil, fmt.Errorf("postgres: agent streams: %w", err)
		}
		a.Info = []byte(info)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: agent streams: %w", err)
	}
	return out, nil
}
