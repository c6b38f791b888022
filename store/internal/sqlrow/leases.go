package sqlrow

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sortie-cd/sortie/store"
)

// The leases (store.Leases) are the same SQL on both databases. Every
// takeover is one UPDATE whose WHERE re-checks that the lease is free (or
// expired) and the pipeline unfinished: SQLite has one writer at a time,
// and PostgreSQL re-evaluates an UPDATE's WHERE on the row it waited for
// (READ COMMITTED), so of two replicas claiming one pipeline exactly one
// changes the row and the other skips it.

// beginLive begins a write transaction that first records that replica
// is live until until (and forgets replicas silent for a day).
func (s *Tables) beginLive(ctx context.Context, replica string, now, until time.Time) (*sql.Tx, error) {
	if replica == "" {
		return nil, errors.New("the replica id is empty")
	}
	tx, err := s.Write.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO replicas (id, live_until) VALUES (?, ?)
ON CONFLICT (id) DO UPDATE SET live_until = excluded.live_until`), replica, until.UnixNano()); err != nil {
		tx.Rollback()
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, s.rebind(`DELETE FROM replicas WHERE live_until < ?`), now.Add(-24*time.Hour).UnixNano()); err != nil {
		tx.Rollback()
		return nil, err
	}
	return tx, nil
}

// ClaimLeases implements store.Leases.
func (s *Tables) ClaimLeases(ctx context.Context, replica string, now time.Time, ttl time.Duration) ([]*store.Pipeline, error) {
	ps, err := s.claimLeases(ctx, replica, now, ttl)
	if err != nil {
		return nil, fmt.Errorf("%s: claim leases for %s: %w", s.Name, replica, err)
	}
	return ps, nil
}

func (s *Tables) claimLeases(ctx context.Context, replica string, now time.Time, ttl time.Duration) ([]*store.Pipeline, error) {
	until := now.Add(ttl)
	tx, err := s.beginLive(ctx, replica, now, until)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var unfinished, live, mine int
	if err := tx.QueryRowContext(ctx, s.rebind(`SELECT `+s.shareColumns()+`,
	(SELECT count(*) FROM pipelines WHERE `+s.Unfinished+` AND owner = ? AND lease_until > ?)`),
		now.UnixNano(), replica, now.UnixNano()).Scan(&unfinished, &live, &mine); err != nil {
		return nil, err
	}
	want := fairShare(unfinished, live) - mine
	if want <= 0 {
		return nil, tx.Commit()
	}
	rows, err := tx.QueryContext(ctx, s.rebind(`SELECT tenant, id FROM pipelines
WHERE `+s.Unfinished+` AND (owner = '' OR lease_until <= ?)
ORDER BY created_at, tenant, id LIMIT ?`+s.SkipLocked), now.UnixNano(), want)
	if err != nil {
		return nil, err
	}
	var free [][2]string
	for rows.Next() {
		var k [2]string
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			rows.Close()
			return nil, err
		}
		free = append(free, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []*store.Pipeline
	for _, k := range free {
		res, err := tx.ExecContext(ctx, s.rebind(`UPDATE pipelines SET owner = ?, lease_until = ?, epoch = epoch + 1
WHERE tenant = ? AND id = ? AND `+s.Unfinished+` AND (owner = '' OR lease_until <= ?)`),
			replica, until.UnixNano(), k[0], k[1], now.UnixNano())
		if err != nil {
			return nil, err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			continue // another replica took it first
		}
		p, err := ScanPipeline(tx.QueryRowContext(ctx, s.rebind(WithSource+` WHERE p.tenant = ? AND p.id = ?`), k[0], k[1]), true)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, tx.Commit()
}

// shareColumns are the counts of unfinished pipelines and of replicas
// live at a time (its one placeholder).
func (s *Tables) shareColumns() string {
	return `(SELECT count(*) FROM pipelines WHERE ` + s.Unfinished + `),
	(SELECT count(*) FROM replicas WHERE live_until > ?)`
}

func fairShare(unfinished, live int) int {
	live = max(live, 1) // this replica, whatever the clocks say
	return (unfinished + live - 1) / live
}

// FairShare implements store.Leases.
func (s *Tables) FairShare(ctx context.Context, now time.Time) (int, error) {
	var unfinished, live int
	if err := s.Read.QueryRowContext(ctx, s.rebind(`SELECT `+s.shareColumns()), now.UnixNano()).Scan(&unfinished, &live); err != nil {
		return 0, fmt.Errorf("%s: fair share: %w", s.Name, err)
	}
	return fairShare(unfinished, live), nil
}

// NextExpiry implements store.Leases.
func (s *Tables) NextExpiry(ctx context.Context, replica string, now time.Time) (time.Time, error) {
	var next sql.NullInt64
	err := s.Read.QueryRowContext(ctx, s.rebind(`SELECT min(lease_until) FROM pipelines
WHERE `+s.Unfinished+` AND owner <> '' AND owner <> ? AND lease_until > ?`), replica, now.UnixNano()).Scan(&next)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: next lease expiry: %w", s.Name, err)
	}
	if !next.Valid {
		return time.Time{}, nil
	}
	return time.Unix(0, next.Int64).UTC(), nil
}

// HandOver implements store.Leases.
func (s *Tables) HandOver(ctx context.Context, replica string, held []store.LeaseRef) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error { return s.release(ctx, tx, replica, held) })
	if err != nil {
		return fmt.Errorf("%s: hand over leases of %s: %w", s.Name, replica, err)
	}
	return nil
}

// RenewLeases implements store.Leases. One UPDATE extends every lease the
// replica holds; one that it holds but is not in held (it claimed it and
// never took it up) is released, so it is not kept from others.
func (s *Tables) RenewLeases(ctx context.Context, replica string, held []store.LeaseRef, now time.Time, ttl time.Duration) ([]store.LeaseRef, error) {
	out, err := s.renewLeases(ctx, replica, held, now, ttl)
	if err != nil {
		return nil, fmt.Errorf("%s: renew leases of %s: %w", s.Name, replica, err)
	}
	return out, nil
}

func (s *Tables) renewLeases(ctx context.Context, replica string, held []store.LeaseRef, now time.Time, ttl time.Duration) ([]store.LeaseRef, error) {
	until := now.Add(ttl)
	tx, err := s.beginLive(ctx, replica, now, until)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	want := make(map[store.LeaseRef]bool, len(held))
	for _, h := range held {
		want[h] = true
	}
	rows, err := tx.QueryContext(ctx, s.rebind(`UPDATE pipelines SET lease_until = ?
WHERE owner = ? AND `+s.Unfinished+` RETURNING tenant, id, epoch`), until.UnixNano(), replica)
	if err != nil {
		return nil, err
	}
	var kept, stray []store.LeaseRef
	for rows.Next() {
		var r store.LeaseRef
		if err := rows.Scan(&r.Tenant, &r.ID, &r.Epoch); err != nil {
			rows.Close()
			return nil, err
		}
		if want[r] {
			kept = append(kept, r)
		} else {
			stray = append(stray, r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := s.release(ctx, tx, replica, stray); err != nil {
		return nil, err
	}
	return kept, tx.Commit()
}

func (s *Tables) release(ctx context.Context, tx *sql.Tx, replica string, refs []store.LeaseRef) error {
	for _, r := range refs {
		if _, err := tx.ExecContext(ctx, s.rebind(`UPDATE pipelines SET owner = '', lease_until = 0
WHERE tenant = ? AND id = ? AND owner = ? AND epoch = ?`), r.Tenant, r.ID, replica, r.Epoch); err != nil {
			return err
		}
	}
	return nil
}

// ReleaseLeases implements store.Leases.
func (s *Tables) ReleaseLeases(ctx context.Context, replica string, held []store.LeaseRef) error {
	if err := s.releaseLeases(ctx, replica, held); err != nil {
		return fmt.Errorf("%s: release leases of %s: %w", s.Name, replica, err)
	}
	return nil
}

func (s *Tables) releaseLeases(ctx context.Context, replica string, held []store.LeaseRef) error {
	tx, err := s.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if held == nil {
		if _, err := tx.ExecContext(ctx, s.rebind(`UPDATE pipelines SET owner = '', lease_until = 0 WHERE owner = ?`), replica); err != nil {
			return err
		}
	} else if err := s.release(ctx, tx, replica, held); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.rebind(`UPDATE replicas SET live_until = 0 WHERE id = ?`), replica); err != nil {
		return err
	}
	return tx.Commit()
}

// TakeLease implements store.Leases.
func (s *Tables) TakeLease(ctx context.Context, replica, tenant, id string, now time.Time, ttl time.Duration) (*store.Pipeline, error) {
	p, err := s.takeLease(ctx, replica, tenant, id, now, ttl)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("%s: take the lease of %s: %w", s.Name, id, err)
	}
	return p, nil
}

func (s *Tables) takeLease(ctx context.Context, replica, tenant, id string, now time.Time, ttl time.Duration) (*store.Pipeline, error) {
	tx, err := s.beginLive(ctx, replica, now, now.Add(ttl))
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, s.rebind(`UPDATE pipelines SET owner = ?, lease_until = ?, epoch = epoch + 1
WHERE tenant = ? AND id = ? AND `+s.Unfinished), replica, now.Add(ttl).UnixNano(), tenant, id); err != nil {
		return nil, err
	}
	p, err := ScanPipeline(tx.QueryRowContext(ctx, s.rebind(WithSource+` WHERE p.tenant = ? AND p.id = ?`), tenant, id), true)
	if err != nil {
		return nil, err
	}
	return p, tx.Commit()
}
