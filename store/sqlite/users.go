package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/internal/sqlrow"
)

// CreateUser implements store.Store.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	if u.Tenant == "" || u.Username == "" {
		return errors.New("sqlite: create user: tenant and username are required")
	}
	roles, err := sqlrow.EncodeRoles(u.Roles)
	if err != nil {
		return fmt.Errorf("sqlite: create user %s: %w", u.Username, err)
	}
	now := s.nowUTC()
	u.CreatedAt, u.UpdatedAt = sqlrow.OrNow(u.CreatedAt, now), sqlrow.OrNow(u.UpdatedAt, now)
	if err := sqlrow.CheckTimes(u.CreatedAt, u.UpdatedAt); err != nil {
		return fmt.Errorf("sqlite: create user %s: %w", u.Username, err)
	}
	hash := u.PasswordHash
	if hash == nil {
		hash = []byte{}
	}
	_, err = s.write.ExecContext(ctx, `INSERT INTO users (tenant, username, name, password_hash, roles, issuer, subject, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, u.Tenant, u.Username, u.Name, hash, roles, u.Issuer, u.Subject, u.CreatedAt.UnixNano(), u.UpdatedAt.UnixNano())
	if isUnique(err) {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("sqlite: create user %s: %w", u.Username, tenantErr(err, u.Tenant))
	}
	return nil
}

// GetUser implements store.Store.
func (s *Store) GetUser(ctx context.Context, tenant, username string) (*store.User, error) {
	u, err := sqlrow.ScanUser(s.read.QueryRowContext(ctx, `SELECT `+sqlrow.UserColumns+` FROM users WHERE tenant = ? AND username = ?`, tenant, username))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get user %s: %w", username, err)
	}
	return &u, nil
}

// ListUsers implements store.Store.
func (s *Store) ListUsers(ctx context.Context, tenant string) ([]store.User, error) {
	out, err := sqlrow.QueryAll(ctx, s.read, sqlrow.ScanUser, `SELECT `+sqlrow.UserColumns+` FROM users WHERE tenant = ? ORDER BY username`, tenant)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	return out, nil
}

// DeleteUser implements store.Store; the foreign key's cascade deletes the
// user's refresh tokens in the same statement.
func (s *Store) DeleteUser(ctx context.Context, tenant, username string) error {
	if err := sqlrow.Affected(s.write.ExecContext(ctx, `DELETE FROM users WHERE tenant = ? AND username = ?`, tenant, username)); err != nil {
		return fmt.Errorf("sqlite: delete user %s: %w", username, err)
	}
	return nil
}

// SetUserRoles implements store.Store.
func (s *Store) SetUserRoles(ctx context.Context, tenant, username string, roles []string) error {
	b, err := sqlrow.EncodeRoles(roles)
	if err == nil {
		err = sqlrow.Affected(s.write.ExecContext(ctx, `UPDATE users SET roles = ?, updated_at = ? WHERE tenant = ? AND username = ?`,
			b, s.nowUTC().UnixNano(), tenant, username))
	}
	if err != nil {
		return fmt.Errorf("sqlite: set roles of user %s: %w", username, err)
	}
	return nil
}

// SetUserPassword implements store.Store.
func (s *Store) SetUserPassword(ctx context.Context, tenant, username string, hash []byte) error {
	if hash == nil {
		hash = []byte{}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		err := sqlrow.Affected(tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, updated_at = ? WHERE tenant = ? AND username = ?`,
			hash, s.nowUTC().UnixNano(), tenant, username))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE tenant = ? AND username = ?`, tenant, username)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: set password of user %s: %w", username, err)
	}
	return nil
}

func (s *Store) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// CreateRefreshToken implements store.Store.
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	if t.ID == "" || len(t.Hash) == 0 || t.Tenant == "" || t.Username == "" {
		return errors.New("sqlite: create refresh token: id, hash, tenant and username are required")
	}
	t.CreatedAt = sqlrow.OrNow(t.CreatedAt, s.nowUTC())
	if err := sqlrow.CheckTimes(t.CreatedAt, t.ExpiresAt); err != nil {
		return fmt.Errorf("sqlite: create refresh token: %w", err)
	}
	_, err := s.write.ExecContext(ctx, `INSERT INTO refresh_tokens (id, hash, tenant, username, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		t.ID, t.Hash, t.Tenant, t.Username, t.CreatedAt.UnixNano(), t.ExpiresAt.UnixNano())
	switch {
	case isUnique(err):
		err = store.ErrConflict
	case isForeignKey(err):
		err = fmt.Errorf("user %s/%s: %w", t.Tenant, t.Username, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create refresh token: %w", err)
	}
	return nil
}

// ConsumeRefreshToken implements store.Store: one DELETE ... RETURNING, so
// of two racing uses only one gets the row.
func (s *Store) ConsumeRefreshToken(ctx context.Context, id string) (*store.RefreshToken, error) {
	t := store.RefreshToken{ID: id}
	var created, expires sql.NullInt64
	err := s.write.QueryRowContext(ctx, `DELETE FROM refresh_tokens WHERE id = ? RETURNING hash, tenant, username, created_at, expires_at`, id).
		Scan(&t.Hash, &t.Tenant, &t.Username, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: consume refresh token: %w", err)
	}
	t.CreatedAt, t.ExpiresAt = sqlrow.FromNanos(created), sqlrow.FromNanos(expires)
	return &t, nil
}

// RevokeRefreshTokens implements store.Store.
func (s *Store) RevokeRefreshTokens(ctx context.Context, tenant, username string) error {
	if _, err := s.write.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE tenant = ? AND username = ?`, tenant, username); err != nil {
		return fmt.Errorf("sqlite: revoke refresh tokens of %s: %w", username, err)
	}
	return nil
}
