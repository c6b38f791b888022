package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/internal/sqlrow"
)

// writeStmts are the statements of the hot write path, prepared once on the
// single write connection; a transaction reuses them through tx.Stmt.
type writeStmts struct {
	save, insertEvent, pruneDeployed, addDeployed *sql.Stmt
}

const (
	saveSQL = `UPDATE pipelines
SET status = ?, terminal = ?, updated_at = ?, wake_at = ?, version = version + 1,
	last_seq = last_seq + ?, deployed = ?, state = ?
WHERE tenant = ? AND id = ? AND version = ?
RETURNING last_seq, application`
	insertEventSQL = `INSERT INTO events (tenant, pipeline, seq, at, type, data) VALUES (?, ?, ?, ?, ?, ?)`
	// The deployments of a pipeline follow its deployed column; json_each
	// keeps that to two statements whatever the number of targets.
	pruneDeployedSQL = `DELETE FROM deployments WHERE tenant = ? AND pipeline = ?
	AND target NOT IN (SELECT value FROM json_each(?))`
	addDeployedSQL = `INSERT OR IGNORE INTO deployments (tenant, application, target, pipeline)
	SELECT ?, ?, value, ? FROM json_each(?)`
)

func (w *writeStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{{&w.save, saveSQL}, {&w.insertEvent, insertEventSQL}, {&w.pruneDeployed, pruneDeployedSQL}, {&w.addDeployed, addDeployedSQL}} {
		st, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		*p.stmt = st
	}
	return nil
}

func (w *writeStmts) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{w.save, w.insertEvent, w.pruneDeployed, w.addDeployed} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// CreatePipeline implements store.Store. A nil admit admits everything; an
// error from admit is returned as it is. The columns are taken from p after
// admit ran, so admit may set p's initial state from its verdict. admit runs
// holding the database's write lock: it must be quick and must not write
// through the store (it would wait for itself).
func (s *Store) CreatePipeline(ctx context.Context, p *store.Pipeline, admit store.Admit, events []store.Event) error {
	if err := s.createPipeline(ctx, p, admit, events); err != nil {
		var refused admitError
		if errors.As(err, &refused) {
			return refused.err
		}
		return fmt.Errorf("sqlite: create pipeline %s: %w", p.ID, err)
	}
	return nil
}

// admitError carries admit's own error, which CreatePipeline hands back as
// it is.
type admitError struct{ err error }

func (e admitError) Error() string { return e.err.Error() }

func (s *Store) createPipeline(ctx context.Context, p *store.Pipeline, admit store.Admit, events []store.Event) error {
	if p.Tenant == "" || p.ID == "" || p.Application == "" {
		return errors.New("tenant, id and application are required")
	}
	now := s.nowUTC()
	created, updated := sqlrow.OrNow(p.CreatedAt, now), sqlrow.OrNow(p.UpdatedAt, now)
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if admit != nil {
		others, err := applicationRefs(ctx, tx, p.Tenant, p.Application)
		if err != nil {
			return err
		}
		if err := admit(others); err != nil {
			return admitError{err}
		}
	}
	r, err := sqlrow.EncodeRow(p)
	if err != nil {
		return err
	}
	source, err := sqlrow.Marshal(p.Source)
	if err != nil {
		return fmt.Errorf("encode source: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO pipelines
	(tenant, id, application, status, terminal, created_at, updated_at, wake_at, started_by, version, last_seq, deployed, state)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)`,
		p.Tenant, p.ID, p.Application, r.Status, r.Terminal, created.UnixNano(), updated.UnixNano(), r.Wake,
		p.StartedBy, len(events), r.Deployed, r.State)
	switch {
	case isUnique(err):
		return fmt.Errorf("pipeline %s already exists: %w", p.ID, store.ErrConflict)
	case isForeignKey(err):
		return fmt.Errorf("tenant %s: %w", p.Tenant, store.ErrNotFound)
	case err != nil:
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO pipeline_sources (tenant, pipeline, source) VALUES (?, ?, ?)`,
		p.Tenant, p.ID, source); err != nil {
		return err
	}
	stamped, err := s.appendEvents(ctx, tx, p, events, 0, now)
	if err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, s.stmts.addDeployed).ExecContext(ctx, p.Tenant, p.Application, p.ID, r.Deployed); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	p.Version = 1
	p.CreatedAt, p.UpdatedAt = created, updated
	p.Status = r.Status
	copy(events, stamped)
	return nil
}

// SavePipeline implements store.Store. It writes what changes in a
// pipeline's life: State (and Status from it), Wake, Deployed and
// UpdatedAt; Tenant, ID, Application, CreatedAt, StartedBy and Source are
// fixed at creation, so saving a pipeline read by ListPipelines (Source
// empty) keeps its source. A pipeline missing from p.Tenant is ErrNotFound.
func (s *Store) SavePipeline(ctx context.Context, p *store.Pipeline, events []store.Event) error {
	if err := s.savePipeline(ctx, p, events); err != nil {
		return fmt.Errorf("sqlite: save pipeline %s: %w", p.ID, err)
	}
	return nil
}

func (s *Store) savePipeline(ctx context.Context, p *store.Pipeline, events []store.Event) error {
	r, err := sqlrow.EncodeRow(p)
	if err != nil {
		return err
	}
	now := s.nowUTC()
	updated := sqlrow.OrNow(p.UpdatedAt, now)
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var (
		last int64
		// The stored application, not p's: it is fixed at creation.
		application string
	)
	err = tx.StmtContext(ctx, s.stmts.save).QueryRowContext(ctx,
		r.Status, r.Terminal, updated.UnixNano(), r.Wake, len(events), r.Deployed, r.State,
		p.Tenant, p.ID, p.Version).Scan(&last, &application)
	if errors.Is(err, sql.ErrNoRows) {
		var version int64
		err := tx.QueryRowContext(ctx, `SELECT version FROM pipelines WHERE tenant = ? AND id = ?`, p.Tenant, p.ID).Scan(&version)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return store.ErrNotFound
		case err != nil:
			return err
		}
		return fmt.Errorf("version %d was saved over (now %d): %w", p.Version, version, store.ErrConflict)
	}
	if err != nil {
		return err
	}
	stamped, err := s.appendEvents(ctx, tx, p, events, last-int64(len(events)), now)
	if err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, s.stmts.pruneDeployed).ExecContext(ctx, p.Tenant, p.ID, r.Deployed); err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, s.stmts.addDeployed).ExecContext(ctx, p.Tenant, application, p.ID, r.Deployed); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	p.Version++
	p.UpdatedAt = updated
	p.Status = r.Status
	copy(events, stamped)
	return nil
}

// appendEvents inserts events after Seq prev and returns them as stored, for
// the caller to hand back once the transaction committed.
func (s *Store) appendEvents(ctx context.Context, tx *sql.Tx, p *store.Pipeline, events []store.Event, prev int64, now time.Time) ([]store.Event, error) {
	if len(events) == 0 {
		return nil, nil
	}
	stmt := tx.StmtContext(ctx, s.stmts.insertEvent)
	out := make([]store.Event, len(events))
	for i, e := range events {
		e.Tenant, e.Pipeline, e.Seq = p.Tenant, p.ID, prev+int64(i)+1
		e.At = sqlrow.OrNow(e.At, now)
		if err := sqlrow.CheckTimes(e.At); err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		var data sql.NullString
		if len(e.Data) > 0 {
			data = sql.NullString{String: string(e.Data), Valid: true}
		}
		if _, err := stmt.ExecContext(ctx, e.Tenant, e.Pipeline, e.Seq, e.At.UnixNano(), e.Type, data); err != nil {
			return nil, fmt.Errorf("append event: %w", err)
		}
		out[i] = e
	}
	return out, nil
}

// GetPipeline implements store.Store.
func (s *Store) GetPipeline(ctx context.Context, tenant, id string) (*store.Pipeline, error) {
	p, err := sqlrow.ScanPipeline(s.read.QueryRowContext(ctx, sqlrow.WithSource+` WHERE p.tenant = ? AND p.id = ?`, tenant, id), true)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get pipeline %s: %w", id, err)
	}
	return p, nil
}

// defaultLimit is ListPipelines' limit when the filter sets none.
const defaultLimit = 100

// ListPipelines implements store.Store. Ties on CreatedAt are broken by ID,
// descending, so the order is total.
func (s *Store) ListPipelines(ctx context.Context, tenant string, f store.Filter) ([]*store.Pipeline, error) {
	var q strings.Builder
	args := []any{tenant}
	q.WriteString(`SELECT ` + sqlrow.PipelineColumns + ` FROM pipelines p WHERE p.tenant = ?`)
	if f.Application != "" {
		q.WriteString(` AND p.application = ?`)
		args = append(args, f.Application)
	}
	if len(f.Statuses) > 0 {
		q.WriteString(` AND p.status IN (?` + strings.Repeat(`, ?`, len(f.Statuses)-1) + `)`)
		for _, st := range f.Statuses {
			args = append(args, st)
		}
	}
	if !f.CreatedAfter.IsZero() {
		q.WriteString(` AND p.created_at > ?`)
		args = append(args, sqlrow.BoundNanos(f.CreatedAfter))
	}
	if !f.CreatedBefore.IsZero() {
		q.WriteString(` AND p.created_at < ?`)
		args = append(args, sqlrow.BoundNanos(f.CreatedBefore))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	q.WriteString(` ORDER BY p.created_at DESC, p.id DESC LIMIT ?`)
	args = append(args, limit)
	ps, err := s.queryPipelines(ctx, q.String(), false, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list pipelines: %w", err)
	}
	return ps, nil
}

const resumableSQL = sqlrow.WithSource + ` WHERE p.terminal = 0
ORDER BY p.tenant, p.application, p.created_at, p.id`

// ResumablePipelines implements store.Store. The pipelines come with their
// Source, which the executor needs to go on, by tenant and application,
// oldest first.
func (s *Store) ResumablePipelines(ctx context.Context) ([]*store.Pipeline, error) {
	ps, err := s.queryPipelines(ctx, resumableSQL, true)
	if err != nil {
		return nil, fmt.Errorf("sqlite: resumable pipelines: %w", err)
	}
	return ps, nil
}

func (s *Store) queryPipelines(ctx context.Context, query string, source bool, args ...any) ([]*store.Pipeline, error) {
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ps []*store.Pipeline
	for rows.Next() {
		p, err := sqlrow.ScanPipeline(rows, source)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, rows.Err()
}

// ApplicationRefs implements store.Store; the refs are oldest first.
func (s *Store) ApplicationRefs(ctx context.Context, tenant, application string) ([]pipeline.Ref, error) {
	refs, err := applicationRefs(ctx, s.read, tenant, application)
	if err != nil {
		return nil, fmt.Errorf("sqlite: application refs: %w", err)
	}
	return refs, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

const refsSQL = `SELECT id, status, created_at FROM pipelines
WHERE tenant = ? AND application = ? AND terminal = 0 ORDER BY created_at, id`

func applicationRefs(ctx context.Context, q querier, tenant, application string) ([]pipeline.Ref, error) {
	rows, err := q.QueryContext(ctx, refsSQL, tenant, application)
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
		r.CreatedAt = sqlrow.FromNanos(created)
		refs = append(refs, r)
	}
	return refs, rows.Err()
}

const deployedBeforeSQL = `SELECT EXISTS (SELECT 1 FROM deployments
WHERE tenant = ? AND application = ? AND target = ?)`

// DeployedBefore implements store.Store.
func (s *Store) DeployedBefore(ctx context.Context, tenant, application, target string) (bool, error) {
	var ok bool
	err := s.read.QueryRowContext(ctx, deployedBeforeSQL, tenant, application, target).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("sqlite: deployed before: %w", err)
	}
	return ok, nil
}

// Events implements store.Store. A pipeline missing from tenant is
// ErrNotFound; one without events after after gives none.
func (s *Store) Events(ctx context.Context, tenant, pipelineID string, after int64) ([]store.Event, error) {
	events, err := s.events(ctx, tenant, pipelineID, after)
	if err != nil {
		return nil, fmt.Errorf("sqlite: events of %s: %w", pipelineID, err)
	}
	return events, nil
}

const eventsSQL = `SELECT seq, at, type, data FROM events
WHERE tenant = ? AND pipeline = ? AND seq > ? ORDER BY seq`

func (s *Store) events(ctx context.Context, tenant, pipelineID string, after int64) ([]store.Event, error) {
	// One read transaction, so that "no events" and "no pipeline" are
	// decided on the same snapshot.
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, eventsSQL, tenant, pipelineID, after)
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
		e.At = sqlrow.FromNanos(at)
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
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM pipelines WHERE tenant = ? AND id = ?`, tenant, pipelineID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		if err != nil {
			return nil, err
		}
	}
	return events, nil
}
