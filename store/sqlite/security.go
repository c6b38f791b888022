package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/internal/sqlrow"
)

// SetCredentialRoles implements store.Store.
func (s *Store) SetCredentialRoles(ctx context.Context, tenant, clientID string, roles []string) error {
	b, err := json.Marshal(roles)
	if err == nil {
		err = sqlrow.Affected(s.write.ExecContext(ctx, `UPDATE credentials SET roles = ? WHERE tenant = ? AND client_id = ?`, string(b), tenant, clientID))
	}
	if err != nil {
		return fmt.Errorf("sqlite: set roles of credential %s: %w", clientID, err)
	}
	return nil
}

// tenantErr maps a foreign-key failure to an unknown tenant.
func tenantErr(err error, tenant string) error {
	if isForeignKey(err) {
		return fmt.Errorf("tenant %s: %w", tenant, store.ErrNotFound)
	}
	return err
}

// PutSecret implements store.Store.
func (s *Store) PutSecret(ctx context.Context, sec store.Secret) error {
	if sec.Tenant == "" || sec.Name == "" || len(sec.Ciphertext) == 0 {
		return errors.New("sqlite: put secret: tenant, name and ciphertext are required")
	}
	sec.UpdatedAt = sqlrow.OrNow(sec.UpdatedAt, s.nowUTC())
	if err := sqlrow.CheckTimes(sec.UpdatedAt); err != nil {
		return fmt.Errorf("sqlite: put secret %s: %w", sec.Name, err)
	}
	_, err := s.write.ExecContext(ctx, `INSERT INTO secrets (tenant, name, ciphertext, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (tenant, name) DO UPDATE SET ciphertext = excluded.ciphertext, updated_at = excluded.updated_at`,
		sec.Tenant, sec.Name, sec.Ciphertext, sec.UpdatedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("sqlite: put secret %s: %w", sec.Name, tenantErr(err, sec.Tenant))
	}
	return nil
}

// GetSecret implements store.Store.
func (s *Store) GetSecret(ctx context.Context, tenant, name string) (*store.Secret, error) {
	sec := store.Secret{Tenant: tenant, Name: name}
	var at sql.NullInt64
	err := s.read.QueryRowContext(ctx, `SELECT ciphertext, updated_at FROM secrets WHERE tenant = ? AND name = ?`, tenant, name).Scan(&sec.Ciphertext, &at)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get secret %s: %w", name, err)
	}
	sec.UpdatedAt = sqlrow.FromNanos(at)
	return &sec, nil
}

// ListSecrets implements store.Store.
func (s *Store) ListSecrets(ctx context.Context, tenant string) ([]store.Secret, error) {
	out, err := sqlrow.QueryAll(ctx, s.read, func(sc sqlrow.Scanner) (store.Secret, error) {
		sec := store.Secret{Tenant: tenant}
		var at sql.NullInt64
		err := sc.Scan(&sec.Name, &at)
		sec.UpdatedAt = sqlrow.FromNanos(at)
		return sec, err
	}, `SELECT name, updated_at FROM secrets WHERE tenant = ? ORDER BY name`, tenant)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list secrets: %w", err)
	}
	return out, nil
}

// DeleteSecret implements store.Store.
func (s *Store) DeleteSecret(ctx context.Context, tenant, name string) error {
	if err := sqlrow.Affected(s.write.ExecContext(ctx, `DELETE FROM secrets WHERE tenant = ? AND name = ?`, tenant, name)); err != nil {
		return fmt.Errorf("sqlite: delete secret %s: %w", name, err)
	}
	return nil
}

// CreateDataKey implements store.Store.
func (s *Store) CreateDataKey(ctx context.Context, k store.DataKey) error {
	if k.Tenant == "" || k.MasterKeyID == "" || len(k.Wrapped) == 0 {
		return errors.New("sqlite: create data key: tenant, master key id and wrapped key are required")
	}
	k.CreatedAt = sqlrow.OrNow(k.CreatedAt, s.nowUTC())
	if err := sqlrow.CheckTimes(k.CreatedAt); err != nil {
		return fmt.Errorf("sqlite: create data key of %s: %w", k.Tenant, err)
	}
	_, err := s.write.ExecContext(ctx, `INSERT INTO data_keys (tenant, master_key_id, wrapped, created_at) VALUES (?, ?, ?, ?)`,
		k.Tenant, k.MasterKeyID, k.Wrapped, k.CreatedAt.UnixNano())
	if isUnique(err) {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("sqlite: create data key of %s: %w", k.Tenant, tenantErr(err, k.Tenant))
	}
	return nil
}

// GetDataKey implements store.Store.
func (s *Store) GetDataKey(ctx context.Context, tenant string) (*store.DataKey, error) {
	k, err := sqlrow.ScanDataKey(s.read.QueryRowContext(ctx, `SELECT tenant, master_key_id, wrapped, created_at FROM data_keys WHERE tenant = ?`, tenant))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get data key of %s: %w", tenant, err)
	}
	return &k, nil
}

// ListDataKeys implements store.Store; by tenant.
func (s *Store) ListDataKeys(ctx context.Context) ([]store.DataKey, error) {
	out, err := sqlrow.QueryAll(ctx, s.read, sqlrow.ScanDataKey, `SELECT tenant, master_key_id, wrapped, created_at FROM data_keys ORDER BY tenant`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list data keys: %w", err)
	}
	return out, nil
}

// ReplaceDataKey implements store.Store.
func (s *Store) ReplaceDataKey(ctx context.Context, old, k store.DataKey) error {
	if k.Tenant != old.Tenant || k.MasterKeyID == "" || len(k.Wrapped) == 0 {
		return errors.New("sqlite: replace data key: same tenant, a master key id and a wrapped key are required")
	}
	err := sqlrow.Affected(s.write.ExecContext(ctx, `UPDATE data_keys SET master_key_id = ?, wrapped = ?
WHERE tenant = ? AND master_key_id = ? AND wrapped = ?`, k.MasterKeyID, k.Wrapped, k.Tenant, old.MasterKeyID, old.Wrapped))
	if errors.Is(err, store.ErrNotFound) {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("sqlite: replace data key of %s: %w", k.Tenant, err)
	}
	return nil
}

// PutRole implements store.Store.
func (s *Store) PutRole(ctx context.Context, r store.Role) error {
	if r.Tenant == "" || r.Name == "" {
		return errors.New("sqlite: put role: tenant and name are required")
	}
	grants := r.Grants
	if grants == nil {
		grants = []string{}
	}
	b, err := json.Marshal(grants)
	if err != nil {
		return fmt.Errorf("sqlite: put role %s: %w", r.Name, err)
	}
	r.UpdatedAt = sqlrow.OrNow(r.UpdatedAt, s.nowUTC())
	if err := sqlrow.CheckTimes(r.UpdatedAt); err != nil {
		return fmt.Errorf("sqlite: put role %s: %w", r.Name, err)
	}
	_, err = s.write.ExecContext(ctx, `INSERT INTO roles (tenant, name, grants, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (tenant, name) DO UPDATE SET grants = excluded.grants, updated_at = excluded.updated_at`,
		r.Tenant, r.Name, string(b), r.UpdatedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("sqlite: put role %s: %w", r.Name, tenantErr(err, r.Tenant))
	}
	return nil
}

// ListRoles implements store.Store.
func (s *Store) ListRoles(ctx context.Context, tenant string) ([]store.Role, error) {
	out, err := sqlrow.QueryAll(ctx, s.read, func(sc sqlrow.Scanner) (store.Role, error) {
		r := store.Role{Tenant: tenant}
		var (
			grants string
			at     sql.NullInt64
		)
		if err := sc.Scan(&r.Name, &grants, &at); err != nil {
			return r, err
		}
		r.UpdatedAt = sqlrow.FromNanos(at)
		return r, json.Unmarshal([]byte(grants), &r.Grants)
	}, `SELECT name, grants, updated_at FROM roles WHERE tenant = ? ORDER BY name`, tenant)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list roles: %w", err)
	}
	return out, nil
}

// DeleteRole implements store.Store.
func (s *Store) DeleteRole(ctx context.Context, tenant, name string) error {
	if err := sqlrow.Affected(s.write.ExecContext(ctx, `DELETE FROM roles WHERE tenant = ? AND name = ?`, tenant, name)); err != nil {
		return fmt.Errorf("sqlite: delete role %s: %w", name, err)
	}
	return nil
}

// AppendAudit implements store.Store.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	if e.Tenant == "" || e.Action == "" {
		return errors.New("sqlite: append audit: tenant and action are required")
	}
	e.At = sqlrow.OrNow(e.At, s.nowUTC())
	if err := sqlrow.CheckTimes(e.At); err != nil {
		return fmt.Errorf("sqlite: append audit: %w", err)
	}
	objects := e.Objects
	if objects == nil {
		objects = []string{}
	}
	b, err := json.Marshal(objects)
	if err != nil {
		return fmt.Errorf("sqlite: append audit: %w", err)
	}
	_, err = s.write.ExecContext(ctx, `INSERT INTO audit (tenant, at, actor, client_id, remote, action, objects) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		e.Tenant, e.At.UnixNano(), e.Actor, e.ClientID, e.Remote, e.Action, string(b))
	if err != nil {
		return fmt.Errorf("sqlite: append audit: %w", tenantErr(err, e.Tenant))
	}
	return nil
}

// ListAudit implements store.Store.
func (s *Store) ListAudit(ctx context.Context, tenant string, f store.AuditFilter) ([]store.AuditEntry, error) {
	q := `SELECT seq, at, actor, client_id, remote, action, objects FROM audit WHERE tenant = ?`
	args := []any{tenant}
	if f.Actor != "" {
		q += ` AND (actor = ? OR client_id = ?)`
		args = append(args, f.Actor, f.Actor)
	}
	if f.Action != "" {
		q += ` AND action = ?`
		args = append(args, f.Action)
	}
	if !f.Since.IsZero() {
		q += ` AND at >= ?`
		args = append(args, sqlrow.BoundNanos(f.Since))
	}
	if !f.Until.IsZero() {
		q += ` AND at < ?`
		args = append(args, sqlrow.BoundNanos(f.Until))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, limit)
	out, err := sqlrow.QueryAll(ctx, s.read, func(sc sqlrow.Scanner) (store.AuditEntry, error) {
		e := store.AuditEntry{Tenant: tenant}
		var (
			at      sql.NullInt64
			objects string
		)
		if err := sc.Scan(&e.Seq, &at, &e.Actor, &e.ClientID, &e.Remote, &e.Action, &objects); err != nil {
			return e, err
		}
		e.At = sqlrow.FromNanos(at)
		return e, json.Unmarshal([]byte(objects), &e.Objects)
	}, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list audit: %w", err)
	}
	return out, nil
}
