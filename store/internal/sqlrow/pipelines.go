package sqlrow

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// The reads of the pipelines, the same SQL on every database; the writes
// stay in each store (SQLite prepares them on its one write connection,
// PostgreSQL takes an advisory lock for admission).

// The frequent queries, with ? placeholders; a store's tests pin the
// indexes they use.
const (
	DeployedBeforeSQL = `SELECT EXISTS (SELECT 1 FROM deployments
WHERE tenant = ? AND application = ? AND target = ?)`
	EventsSQL = `SELECT seq, at, type, data FROM events
WHERE tenant = ? AND pipeline = ? AND seq > ? ORDER BY seq`
)

// ResumableSQL reads the unfinished pipelines, with their sources.
func (s *Tables) ResumableSQL() string {
	return WithSource + ` WHERE ` + s.Unfinished + `
ORDER BY p.tenant, p.application, p.created_at, p.id`
}

// RefsSQL reads the unfinished pipelines of a tenant's application.
func (s *Tables) RefsSQL() string {
	return `SELECT id, status, created_at FROM pipelines
WHERE tenant = ? AND application = ? AND ` + s.Unfinished + ` ORDER BY created_at, id`
}

// GetPipeline implements store.Store.
func (s *Tables) GetPipeline(ctx context.Context, tenant, id string) (*store.Pipeline, error) {
	p, err := ScanPipeline(s.Read.QueryRowContext(ctx, s.rebind(WithSource+` WHERE p.tenant = ? AND p.id = ?`), tenant, id), true)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("%s: get pipeline %s: %w", s.Name, id, err)
	}
	return p, nil
}

// defaultLimit is ListPipelines' limit when the filter sets none.
const defaultLimit = 100

// ListPipelines implements store.Store. Ties on CreatedAt are broken by ID,
// descending, so the order is total.
func (s *Tables) ListPipelines(ctx context.Context, tenant string, f store.Filter) ([]*store.Pipeline, error) {
	var q strings.Builder
	args := []any{tenant}
	q.WriteString(`SELECT ` + PipelineColumns + ` FROM pipelines p WHERE p.tenant = ?`)
	if f.Application != "" {
		q.WriteString(` AND p.application = ?`)
		args = append(args, f.Application)
	}
	if len(f.Statuses) > 0 {
		q.WriteString(` AND p.status IN (?` + strings.Repeat(`, ?`, len(f.Statuses)-1) + `)`)
		for _, st := range f.Statuses {
			args = append(args, string(st))
		}
	}
	if !f.CreatedAfter.IsZero() {
		q.WriteString(` AND p.created_at > ?`)
		args = append(args, BoundNanos(f.CreatedAfter))
	}
	if !f.CreatedBefore.IsZero() {
		q.WriteString(` AND p.created_at < ?`)
		args = append(args, BoundNanos(f.CreatedBefore))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	q.WriteString(` ORDER BY p.created_at DESC, p.id DESC LIMIT ?`)
	args = append(args, limit)
	ps, err := s.queryPipelines(ctx, q.String(), false, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: list pipelines: %w", s.Name, err)
	}
	return ps, nil
}

// ResumablePipelines implements store.Store. The pipelines come with their
// Source, which the executor needs to go on, by tenant and application,
// oldest first.
func (s *Tables) ResumablePipelines(ctx context.Context) ([]*store.Pipeline, error) {
	ps, err := s.queryPipelines(ctx, s.ResumableSQL(), true)
	if err != nil {
		return nil, fmt.Errorf("%s: resumable pipelines: %w", s.Name, err)
	}
	return ps, nil
}

func (s *Tables) queryPipelines(ctx context.Context, query string, source bool, args ...any) ([]*store.Pipeline, error) {
	rows, err := s.Read.QueryContext(ctx, s.rebind(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ps []*store.Pipeline
	for rows.Next() {
		p, err := ScanPipeline(rows, source)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, rows.Err()
}

// ApplicationRefs implements store.Store; the refs are oldest first.
func (s *Tables) ApplicationRefs(ctx context.Context, tenant, application string) ([]pipeline.Ref, error) {
	refs, err := s.AppRefs(ctx, s.Read, tenant, application)
	if err != nil {
		return nil, fmt.Errorf("%s: application refs: %w", s.Name, err)
	}
	return refs, nil
}

// AppRefs reads the unfinished pipelines of an application through q (a
// store's admission transaction, or Read), oldest first.
func (s *Tables) AppRefs(ctx context.Context, q Querier, tenant, application string) ([]pipeline.Ref, error) {
	rows, err := q.QueryContext(ctx, s.rebind(s.RefsSQL()), tenant, application)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var refs []pipeline.Ref
	for rows.Next() {
		var (
			r       pipeline.Ref
			created sql.NullInt64
		)
		if err := rows.Scan(&r.ID, &r.Status, &created); err != nil {
			return nil, err
		}
		r.CreatedAt = FromNanos(created)
		refs = append(refs, r)
	}
	return refs, rows.Err()
}

// DeployedBefore implements store.Store.
func (s *Tables) DeployedBefore(ctx context.Context, tenant, application, target string) (bool, error) {
	var ok bool
	err := s.Read.QueryRowContext(ctx, s.rebind(DeployedBeforeSQL), tenant, application, target).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("%s: deployed before: %w", s.Name, err)
	}
	return ok, nil
}

// Events implements store.Store. A pipeline missing from tenant is
// ErrNotFound; one without events after after gives none.
func (s *Tables) Events(ctx context.Context, tenant, pipelineID string, after int64) ([]store.Event, error) {
	events, err := s.events(ctx, tenant, pipelineID, after)
	if err != nil {
		return nil, fmt.Errorf("%s: events of %s: %w", s.Name, pipelineID, err)
	}
	return events, nil
}

func (s *Tables) events(ctx context.Context, tenant, pipelineID string, after int64) ([]store.Event, error) {
	// One read transaction, so that "no events" and "no pipeline" are
	// decided on the same snapshot.
	tx, err := s.Read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: s.SnapshotLevel})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, s.rebind(EventsSQL), tenant, pipelineID, after)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var events []store.Event
	for rows.Next() {
		e := store.Event{Tenant: tenant, Pipeline: pipelineID}
		var (
			at   sql.NullInt64
			data sql.NullString
		)
		if err := rows.Scan(&e.Seq, &at, &e.Type, &data); err != nil {
			return nil, err
		}
		e.At = FromNanos(at)
		if data.Valid {
			e.Data = json.RawMessage(data.String)
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		var one int
		err := tx.QueryRowContext(ctx, s.rebind(`SELECT 1 FROM pipelines WHERE tenant = ? AND id = ?`), tenant, pipelineID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		if err != nil {
			return nil, err
		}
	}
	return events, nil
}
