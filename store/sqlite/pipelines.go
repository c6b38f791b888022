package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

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
WHERE tenant = ? AND id = ? AND version = ? AND epoch = ?
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
		others, err := s.AppRefs(ctx, tx, p.Tenant, p.Application)
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
	var epoch int64
	if p.Lease.Owner != "" {
		epoch = 1
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO pipelines
	(tenant, id, application, status, terminal, created_at, updated_at, wake_at, started_by, version, last_seq, deployed, state, owner, lease_until, epoch)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)`,
		p.Tenant, p.ID, p.Application, r.Status, r.Terminal, created.UnixNano(), updated.UnixNano(), r.Wake,
		p.StartedBy, len(events), r.Deployed, r.State, p.Lease.Owner, sqlrow.LeaseNanos(p.Lease.Until), epoch)
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
	p.Lease.Epoch = epoch
	p.Lease.Until = p.Lease.Until.UTC()
	if p.Lease.Owner == "" {
		p.Lease.Until = time.Time{}
	}
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
		p.Tenant, p.ID, p.Version, p.Lease.Epoch).Scan(&last, &application)
	if errors.Is(err, sql.ErrNoRows) {
		var version, epoch int64
		err := tx.QueryRowContext(ctx, `SELECT version, epoch FROM pipelines WHERE tenant = ? AND id = ?`, p.Tenant, p.ID).Scan(&version, &epoch)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return store.ErrNotFound
		case err != nil:
			return err
		case epoch != p.Lease.Epoch:
			return fmt.Errorf("lease epoch %d was taken over (now %d): %w", p.Lease.Epoch, epoch, store.ErrFenced)
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
