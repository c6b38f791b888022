package sqlrow

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/sortie-cd/sortie/store"
)

// PutRevocation implements store.Store: one row per principal, the later
// revocation kept (the WHERE of DO UPDATE), in one statement.
func (s *Tables) PutRevocation(ctx context.Context, r store.Revocation) error {
	if r.Tenant == "" || r.Subject == "" || r.Expires.IsZero() {
		return fmt.Errorf("%s: put revocation: tenant, subject and expiry are required", s.Name)
	}
	if err := CheckTimes(r.Expires); err != nil {
		return fmt.Errorf("%s: put revocation: %w", s.Name, err)
	}
	_, err := s.Write.ExecContext(ctx, s.rebind(`INSERT INTO token_revocations (tenant, subject, revoked_at, expires_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (tenant, subject) DO UPDATE SET revoked_at = excluded.revoked_at, expires_at = excluded.expires_at
		WHERE excluded.revoked_at > token_revocations.revoked_at`),
		r.Tenant, r.Subject, r.At, r.Expires.UnixNano())
	if err != nil {
		return fmt.Errorf("%s: put revocation: %w", s.Name, err)
	}
	return nil
}

// ListRevocations implements store.Store.
func (s *Tables) ListRevocations(ctx context.Context, now time.Time) ([]store.Revocation, error) {
	out, err := QueryAll(ctx, s, func(sc Scanner) (store.Revocation, error) {
		var (
			r       store.Revocation
			expires sql.NullInt64
		)
		err := sc.Scan(&r.Tenant, &r.Subject, &r.At, &expires)
		r.Expires = FromNanos(expires)
		return r, err
	}, `SELECT tenant, subject, revoked_at, expires_at FROM token_revocations WHERE expires_at > ? ORDER BY tenant, subject`, BoundNanos(now))
	if err != nil {
		return nil, fmt.Errorf("%s: list revocations: %w", s.Name, err)
	}
	return out, nil
}

// PruneRevocations implements store.Store.
func (s *Tables) PruneRevocations(ctx context.Context, now time.Time) error {
	if _, err := s.Write.ExecContext(ctx, s.rebind(`DELETE FROM token_revocations WHERE expires_at <= ?`), BoundNanos(now)); err != nil {
		return fmt.Errorf("%s: prune revocations: %w", s.Name, err)
	}
	return nil
}
