package sqlrow

import (
	"context"
	"fmt"
	"time"

	"github.com/sortie-cd/sortie/store"
)

// PutSigningKey implements store.Store.
func (s *Tables) PutSigningKey(ctx context.Context, k store.SigningKey) error {
	if k.ID == "" || len(k.Sealed) == 0 {
		return fmt.Errorf("%s: put signing key: id and key are required", s.Name)
	}
	at := k.CreatedAt
	if at.IsZero() {
		at = s.nowUTC()
	}
	_, err := s.Write.ExecContext(ctx, s.rebind(`INSERT INTO signing_keys (id, sealed, created_at) VALUES (?, ?, ?)`), k.ID, k.Sealed, at.UnixNano())
	if s.IsUnique(err) {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("%s: put signing key %s: %w", s.Name, k.ID, err)
	}
	return nil
}

// ListSigningKeys implements store.Store.
func (s *Tables) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	rows, err := s.Read.QueryContext(ctx, `SELECT id, sealed, created_at FROM signing_keys ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("%s: signing keys: %w", s.Name, err)
	}
	defer rows.Close()
	var out []store.SigningKey
	for rows.Next() {
		var k store.SigningKey
		var at int64
		if err := rows.Scan(&k.ID, &k.Sealed, &at); err != nil {
			return nil, fmt.Errorf("%s: signing keys: %w", s.Name, err)
		}
		k.CreatedAt = time.Unix(0, at).UTC()
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: signing keys: %w", s.Name, err)
	}
	return out, nil
}
