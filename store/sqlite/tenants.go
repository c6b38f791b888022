package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sortie-cd/sortie/store"
)

// CreateTenant implements store.Store.
func (s *Store) CreateTenant(ctx context.Context, name string) error {
	if name == "" {
		return errors.New("sqlite: create tenant: the name is empty")
	}
	_, err := s.write.ExecContext(ctx, `INSERT INTO tenants (name) VALUES (?)`, name)
	if isUnique(err) {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("sqlite: create tenant %s: %w", name, err)
	}
	return nil
}

// ListTenants implements store.Store; names come sorted.
func (s *Store) ListTenants(ctx context.Context) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT name FROM tenants ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list tenants: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("sqlite: list tenants: %w", err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list tenants: %w", err)
	}
	return names, nil
}

// CreateCredential implements store.Store. A client id is unique across
// tenants (ErrConflict); an unknown tenant is ErrNotFound. A zero CreatedAt
// is stamped with the store's clock.
func (s *Store) CreateCredential(ctx context.Context, c store.Credential) error {
	if c.ClientID == "" || c.Tenant == "" {
		return errors.New("sqlite: create credential: tenant and client id are required")
	}
	roles, err := json.Marshal(c.Roles)
	if err != nil {
		return fmt.Errorf("sqlite: create credential %s: %w", c.ClientID, err)
	}
	c.CreatedAt = orNow(c.CreatedAt, s.nowUTC())
	if err := checkTimes(c.CreatedAt); err != nil {
		return fmt.Errorf("sqlite: create credential %s: %w", c.ClientID, err)
	}
	hash := c.SecretHash
	if hash == nil {
		hash = []byte{}
	}
	_, err = s.write.ExecContext(ctx, `INSERT INTO credentials (client_id, tenant, name, secret_hash, roles, created_at)
VALUES (?, ?, ?, ?, ?, ?)`, c.ClientID, c.Tenant, c.Name, hash, string(roles), c.CreatedAt.UnixNano())
	switch {
	case isUnique(err):
		err = store.ErrConflict
	case isForeignKey(err):
		err = fmt.Errorf("tenant %s: %w", c.Tenant, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create credential %s: %w", c.ClientID, err)
	}
	return nil
}

const credentialColumns = `tenant, client_id, name, secret_hash, roles, created_at`

func scanCredential(sc scanner) (store.Credential, error) {
	var (
		c       store.Credential
		roles   string
		created sql.NullInt64
	)
	if err := sc.Scan(&c.Tenant, &c.ClientID, &c.Name, &c.SecretHash, &roles, &created); err != nil {
		return c, err
	}
	c.CreatedAt = fromNanos(created)
	if err := json.Unmarshal([]byte(roles), &c.Roles); err != nil {
		return c, fmt.Errorf("credential %s: decode roles: %w", c.ClientID, err)
	}
	return c, nil
}

// GetCredential implements store.Store; it is the one lookup not scoped to
// a tenant.
func (s *Store) GetCredential(ctx context.Context, clientID string) (*store.Credential, error) {
	c, err := scanCredential(s.read.QueryRowContext(ctx, `SELECT `+credentialColumns+` FROM credentials WHERE client_id = ?`, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get credential %s: %w", clientID, err)
	}
	return &c, nil
}

// ListCredentials implements store.Store; oldest first.
func (s *Store) ListCredentials(ctx context.Context, tenant string) ([]store.Credential, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+credentialColumns+` FROM credentials
WHERE tenant = ? ORDER BY created_at, client_id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list credentials: %w", err)
	}
	defer rows.Close()
	var cs []store.Credential
	for rows.Next() {
		c, err := scanCredential(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list credentials: %w", err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list credentials: %w", err)
	}
	return cs, nil
}

// DeleteCredential implements store.Store: another tenant's client id is
// ErrNotFound, and stays.
func (s *Store) DeleteCredential(ctx context.Context, tenant, clientID string) error {
	res, err := s.write.ExecContext(ctx, `DELETE FROM credentials WHERE tenant = ? AND client_id = ?`, tenant, clientID)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			err = store.ErrNotFound
		}
	}
	if err != nil {
		return fmt.Errorf("sqlite: delete credential %s: %w", clientID, err)
	}
	return nil
}

// BindAgent implements store.Store.
func (s *Store) BindAgent(ctx context.Context, tenant, agentID, clientID string, at time.Time) (string, error) {
	var owner string
	err := s.write.QueryRowContext(ctx, `INSERT INTO agent_bindings (tenant, agent_id, client_id, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (tenant, agent_id) DO UPDATE SET client_id = client_id RETURNING client_id`,
		tenant, agentID, clientID, at.UnixMilli()).Scan(&owner)
	if err != nil {
		return "", fmt.Errorf("sqlite: bind agent %s: %w", agentID, err)
	}
	return owner, nil
}

// AgentBindings implements store.Store.
func (s *Store) AgentBindings(ctx context.Context, tenant string) (map[string]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT agent_id, client_id FROM agent_bindings WHERE tenant = ?`, tenant)
	if err != nil {
		return nil, fmt.Errorf("sqlite: agent bindings: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var a, c string
		if err := rows.Scan(&a, &c); err != nil {
			return nil, fmt.Errorf("sqlite: agent bindings: %w", err)
		}
		out[a] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: agent bindings: %w", err)
	}
	return out, nil
}
