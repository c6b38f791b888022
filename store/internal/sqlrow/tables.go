package sqlrow

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// Dialect is what differs between the SQL stores for the tables Tables
// serves.
type Dialect struct {
	// Name prefixes errors: "sqlite", "postgres".
	Name string
	// Rebind turns a query written with ? placeholders into the
	// database's; nil keeps it.
	Rebind func(query string) string
	// IsUnique and IsForeignKey recognise a unique-key and a foreign-key
	// violation.
	IsUnique, IsForeignKey func(error) bool
	// Unfinished is the condition on a pipelines row that its status is
	// not terminal, spelt as the partial index pipelines_unfinished is.
	Unfinished string
	// SkipLocked ends a claim's SELECT of free leases: " FOR UPDATE SKIP
	// LOCKED" where concurrent claimers would otherwise pick the same rows
	// and all but one come away empty; "" on SQLite, whose one writer
	// claims alone.
	SkipLocked string
	// SnapshotLevel is the isolation that gives a read transaction one
	// snapshot (SQLite's are always one: the default).
	SnapshotLevel sql.IsolationLevel
}

// Tables implements the parts of store.Store that are the same SQL on
// every database (tenants, credentials, users and refresh tokens, metric
// providers, secrets, data keys, roles, the audit log); a store embeds it
// and adds the pipelines. Read serves queries outside transactions, Write
// every write (they may be one pool).
type Tables struct {
	Read, Write *sql.DB
	Dialect
	// Now is the store's clock.
	Now func() time.Time
}

func (s *Tables) rebind(q string) string {
	if s.Rebind == nil {
		return q
	}
	return s.Rebind(q)
}

// QueryContext runs a query on Read, rebound: a Querier for QueryAll.
func (s *Tables) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return s.Read.QueryContext(ctx, s.rebind(q), args...)
}

func (s *Tables) nowUTC() time.Time { return s.Now().UTC() }

// CreateTenant implements store.Store.
func (s *Tables) CreateTenant(ctx context.Context, name string) error {
	if name == "" {
		return fmt.Errorf("%s: create tenant: the name is empty", s.Name)
	}
	_, err := s.Write.ExecContext(ctx, s.rebind(`INSERT INTO tenants (name) VALUES (?)`), name)
	if s.IsUnique(err) {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("%s: create tenant %s: %w", s.Name, name, err)
	}
	return nil
}

// ListTenants implements store.Store; names come sorted.
func (s *Tables) ListTenants(ctx context.Context) ([]string, error) {
	rows, err := s.Read.QueryContext(ctx, s.rebind(`SELECT name FROM tenants ORDER BY name`))
	if err != nil {
		return nil, fmt.Errorf("%s: list tenants: %w", s.Name, err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("%s: list tenants: %w", s.Name, err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: list tenants: %w", s.Name, err)
	}
	return names, nil
}

// CreateCredential implements store.Store. A client id is unique across
// tenants (ErrConflict); an unknown tenant is ErrNotFound. A zero CreatedAt
// is stamped with the store's clock.
func (s *Tables) CreateCredential(ctx context.Context, c store.Credential) error {
	if c.ClientID == "" || c.Tenant == "" {
		return fmt.Errorf("%s: create credential: tenant and client id are required", s.Name)
	}
	roles, err := json.Marshal(c.Roles)
	if err != nil {
		return fmt.Errorf("%s: create credential %s: %w", s.Name, c.ClientID, err)
	}
	c.CreatedAt = OrNow(c.CreatedAt, s.nowUTC())
	if err := CheckTimes(c.CreatedAt); err != nil {
		return fmt.Errorf("%s: create credential %s: %w", s.Name, c.ClientID, err)
	}
	hash := c.SecretHash
	if hash == nil {
		hash = []byte{}
	}
	_, err = s.Write.ExecContext(ctx, s.rebind(`INSERT INTO credentials (client_id, tenant, name, secret_hash, roles, created_at)
VALUES (?, ?, ?, ?, ?, ?)`), c.ClientID, c.Tenant, c.Name, hash, string(roles), c.CreatedAt.UnixNano())
	switch {
	case s.IsUnique(err):
		err = store.ErrConflict
	case s.IsForeignKey(err):
		err = fmt.Errorf("tenant %s: %w", c.Tenant, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s: create credential %s: %w", s.Name, c.ClientID, err)
	}
	return nil
}

// GetCredential implements store.Store; it is the one lookup not scoped to
// a tenant.
func (s *Tables) GetCredential(ctx context.Context, clientID string) (*store.Credential, error) {
	c, err := ScanCredential(s.Read.QueryRowContext(ctx, s.rebind(`SELECT `+CredentialColumns+` FROM credentials WHERE client_id = ?`), clientID))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("%s: get credential %s: %w", s.Name, clientID, err)
	}
	return &c, nil
}

// ListCredentials implements store.Store; oldest first.
func (s *Tables) ListCredentials(ctx context.Context, tenant string) ([]store.Credential, error) {
	rows, err := s.Read.QueryContext(ctx, s.rebind(`SELECT `+CredentialColumns+` FROM credentials
WHERE tenant = ? ORDER BY created_at, client_id`), tenant)
	if err != nil {
		return nil, fmt.Errorf("%s: list credentials: %w", s.Name, err)
	}
	defer rows.Close()
	var cs []store.Credential
	for rows.Next() {
		c, err := ScanCredential(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: list credentials: %w", s.Name, err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: list credentials: %w", s.Name, err)
	}
	return cs, nil
}

// DeleteCredential implements store.Store: another tenant's client id is
// ErrNotFound, and stays.
func (s *Tables) DeleteCredential(ctx context.Context, tenant, clientID string) error {
	res, err := s.Write.ExecContext(ctx, s.rebind(`DELETE FROM credentials WHERE tenant = ? AND client_id = ?`), tenant, clientID)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			err = store.ErrNotFound
		}
	}
	if err != nil {
		return fmt.Errorf("%s: delete credential %s: %w", s.Name, clientID, err)
	}
	return nil
}

// CreateMetricProvider implements store.Store.
func (s *Tables) CreateMetricProvider(ctx context.Context, p store.MetricProvider) error {
	if p.Tenant == "" || p.Name == "" || p.Type == "" {
		return fmt.Errorf("%s: create metric provider: tenant, name and type are required", s.Name)
	}
	p.CreatedAt = OrNow(p.CreatedAt, s.nowUTC())
	if err := CheckTimes(p.CreatedAt); err != nil {
		return fmt.Errorf("%s: create metric provider %s: %w", s.Name, p.Name, err)
	}
	config := string(p.Config)
	if config == "" {
		config = "{}"
	}
	_, err := s.Write.ExecContext(ctx, s.rebind(`INSERT INTO metric_providers (tenant, name, type, config, created_at)
VALUES (?, ?, ?, ?, ?)`), p.Tenant, p.Name, p.Type, config, p.CreatedAt.UnixNano())
	switch {
	case s.IsUnique(err):
		err = store.ErrConflict
	case s.IsForeignKey(err):
		err = fmt.Errorf("tenant %s: %w", p.Tenant, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s: create metric provider %s: %w", s.Name, p.Name, err)
	}
	return nil
}

// GetMetricProvider implements store.Store.
func (s *Tables) GetMetricProvider(ctx context.Context, tenant, name string) (*store.MetricProvider, error) {
	p, err := ScanProvider(s.Read.QueryRowContext(ctx, s.rebind(`SELECT `+ProviderColumns+` FROM metric_providers WHERE tenant = ? AND name = ?`), tenant, name))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("%s: get metric provider %s: %w", s.Name, name, err)
	}
	return &p, nil
}

// ListMetricProviders implements store.Store.
func (s *Tables) ListMetricProviders(ctx context.Context, tenant string) ([]store.MetricProvider, error) {
	rows, err := s.Read.QueryContext(ctx, s.rebind(`SELECT `+ProviderColumns+` FROM metric_providers WHERE tenant = ? ORDER BY name`), tenant)
	if err != nil {
		return nil, fmt.Errorf("%s: list metric providers: %w", s.Name, err)
	}
	defer rows.Close()
	var out []store.MetricProvider
	for rows.Next() {
		p, err := ScanProvider(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: list metric providers: %w", s.Name, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: list metric providers: %w", s.Name, err)
	}
	return out, nil
}

// DeleteMetricProvider implements store.Store.
func (s *Tables) DeleteMetricProvider(ctx context.Context, tenant, name string) error {
	res, err := s.Write.ExecContext(ctx, s.rebind(`DELETE FROM metric_providers WHERE tenant = ? AND name = ?`), tenant, name)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			err = store.ErrNotFound
		}
	}
	if err != nil {
		return fmt.Errorf("%s: delete metric provider %s: %w", s.Name, name, err)
	}
	return nil
}

// CreateUser implements store.Store.
func (s *Tables) CreateUser(ctx context.Context, u store.User) error {
	if u.Tenant == "" || u.Username == "" {
		return fmt.Errorf("%s: create user: tenant and username are required", s.Name)
	}
	roles, err := EncodeRoles(u.Roles)
	if err != nil {
		return fmt.Errorf("%s: create user %s: %w", s.Name, u.Username, err)
	}
	now := s.nowUTC()
	u.CreatedAt, u.UpdatedAt = OrNow(u.CreatedAt, now), OrNow(u.UpdatedAt, now)
	if err := CheckTimes(u.CreatedAt, u.UpdatedAt); err != nil {
		return fmt.Errorf("%s: create user %s: %w", s.Name, u.Username, err)
	}
	hash := u.PasswordHash
	if hash == nil {
		hash = []byte{}
	}
	_, err = s.Write.ExecContext(ctx, s.rebind(`INSERT INTO users (tenant, username, name, password_hash, roles, issuer, subject, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), u.Tenant, u.Username, u.Name, hash, roles, u.Issuer, u.Subject, u.CreatedAt.UnixNano(), u.UpdatedAt.UnixNano())
	if s.IsUnique(err) {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("%s: create user %s: %w", s.Name, u.Username, s.tenantErr(err, u.Tenant))
	}
	return nil
}

// GetUser implements store.Store.
func (s *Tables) GetUser(ctx context.Context, tenant, username string) (*store.User, error) {
	u, err := ScanUser(s.Read.QueryRowContext(ctx, s.rebind(`SELECT `+UserColumns+` FROM users WHERE tenant = ? AND username = ?`), tenant, username))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("%s: get user %s: %w", s.Name, username, err)
	}
	return &u, nil
}

// ListUsers implements store.Store.
func (s *Tables) ListUsers(ctx context.Context, tenant string) ([]store.User, error) {
	out, err := QueryAll(ctx, s, ScanUser, `SELECT `+UserColumns+` FROM users WHERE tenant = ? ORDER BY username`, tenant)
	if err != nil {
		return nil, fmt.Errorf("%s: list users: %w", s.Name, err)
	}
	return out, nil
}

// DeleteUser implements store.Store; the foreign key's cascade deletes the
// user's refresh tokens in the same statement.
func (s *Tables) DeleteUser(ctx context.Context, tenant, username string) error {
	if err := Affected(s.Write.ExecContext(ctx, s.rebind(`DELETE FROM users WHERE tenant = ? AND username = ?`), tenant, username)); err != nil {
		return fmt.Errorf("%s: delete user %s: %w", s.Name, username, err)
	}
	return nil
}

// SetUserRoles implements store.Store.
func (s *Tables) SetUserRoles(ctx context.Context, tenant, username string, roles []string) error {
	b, err := EncodeRoles(roles)
	if err == nil {
		err = Affected(s.Write.ExecContext(ctx, s.rebind(`UPDATE users SET roles = ?, updated_at = ? WHERE tenant = ? AND username = ?`),
			b, s.nowUTC().UnixNano(), tenant, username))
	}
	if err != nil {
		return fmt.Errorf("%s: set roles of user %s: %w", s.Name, username, err)
	}
	return nil
}

// SetUserPassword implements store.Store.
func (s *Tables) SetUserPassword(ctx context.Context, tenant, username string, hash []byte) error {
	if hash == nil {
		hash = []byte{}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		err := Affected(tx.ExecContext(ctx, s.rebind(`UPDATE users SET password_hash = ?, updated_at = ? WHERE tenant = ? AND username = ?`),
			hash, s.nowUTC().UnixNano(), tenant, username))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.rebind(`DELETE FROM refresh_tokens WHERE tenant = ? AND username = ?`), tenant, username)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: set password of user %s: %w", s.Name, username, err)
	}
	return nil
}

func (s *Tables) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.Write.BeginTx(ctx, nil)
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
func (s *Tables) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	if t.ID == "" || len(t.Hash) == 0 || t.Tenant == "" || t.Username == "" {
		return fmt.Errorf("%s: create refresh token: id, hash, tenant and username are required", s.Name)
	}
	t.CreatedAt = OrNow(t.CreatedAt, s.nowUTC())
	if err := CheckTimes(t.CreatedAt, t.ExpiresAt); err != nil {
		return fmt.Errorf("%s: create refresh token: %w", s.Name, err)
	}
	_, err := s.Write.ExecContext(ctx, s.rebind(`INSERT INTO refresh_tokens (id, hash, tenant, username, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`),
		t.ID, t.Hash, t.Tenant, t.Username, t.CreatedAt.UnixNano(), t.ExpiresAt.UnixNano())
	switch {
	case s.IsUnique(err):
		err = store.ErrConflict
	case s.IsForeignKey(err):
		err = fmt.Errorf("user %s/%s: %w", t.Tenant, t.Username, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s: create refresh token: %w", s.Name, err)
	}
	return nil
}

// ConsumeRefreshToken implements store.Store: one DELETE ... RETURNING, so
// of two racing uses only one gets the row.
func (s *Tables) ConsumeRefreshToken(ctx context.Context, id string) (*store.RefreshToken, error) {
	t := store.RefreshToken{ID: id}
	var created, expires sql.NullInt64
	err := s.Write.QueryRowContext(ctx, s.rebind(`DELETE FROM refresh_tokens WHERE id = ? RETURNING hash, tenant, username, created_at, expires_at`), id).
		Scan(&t.Hash, &t.Tenant, &t.Username, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("%s: consume refresh token: %w", s.Name, err)
	}
	t.CreatedAt, t.ExpiresAt = FromNanos(created), FromNanos(expires)
	return &t, nil
}

// RevokeRefreshTokens implements store.Store.
func (s *Tables) RevokeRefreshTokens(ctx context.Context, tenant, username string) error {
	if _, err := s.Write.ExecContext(ctx, s.rebind(`DELETE FROM refresh_tokens WHERE tenant = ? AND username = ?`), tenant, username); err != nil {
		return fmt.Errorf("%s: revoke refresh tokens of %s: %w", s.Name, username, err)
	}
	return nil
}

// SetCredentialRoles implements store.Store.
func (s *Tables) SetCredentialRoles(ctx context.Context, tenant, clientID string, roles []string) error {
	b, err := json.Marshal(roles)
	if err == nil {
		err = Affected(s.Write.ExecContext(ctx, s.rebind(`UPDATE credentials SET roles = ? WHERE tenant = ? AND client_id = ?`), string(b), tenant, clientID))
	}
	if err != nil {
		return fmt.Errorf("%s: set roles of credential %s: %w", s.Name, clientID, err)
	}
	return nil
}

// tenantErr maps a foreign-key failure to an unknown tenant.
func (s *Tables) tenantErr(err error, tenant string) error {
	if s.IsForeignKey(err) {
		return fmt.Errorf("tenant %s: %w", tenant, store.ErrNotFound)
	}
	return err
}

// PutSecret implements store.Store.
func (s *Tables) PutSecret(ctx context.Context, sec store.Secret) error {
	if sec.Tenant == "" || sec.Name == "" || len(sec.Ciphertext) == 0 {
		return fmt.Errorf("%s: put secret: tenant, name and ciphertext are required", s.Name)
	}
	sec.UpdatedAt = OrNow(sec.UpdatedAt, s.nowUTC())
	if err := CheckTimes(sec.UpdatedAt); err != nil {
		return fmt.Errorf("%s: put secret %s: %w", s.Name, sec.Name, err)
	}
	hosts, err := json.Marshal(nonNil(sec.AllowedHosts))
	if err != nil {
		return fmt.Errorf("%s: put secret %s: %w", s.Name, sec.Name, err)
	}
	_, err = s.Write.ExecContext(ctx, s.rebind(`INSERT INTO secrets (tenant, name, ciphertext, allowed_hosts, updated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (tenant, name) DO UPDATE SET ciphertext = excluded.ciphertext, allowed_hosts = excluded.allowed_hosts, updated_at = excluded.updated_at`),
		sec.Tenant, sec.Name, sec.Ciphertext, string(hosts), sec.UpdatedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("%s: put secret %s: %w", s.Name, sec.Name, s.tenantErr(err, sec.Tenant))
	}
	return nil
}

// GetSecret implements store.Store.
func (s *Tables) GetSecret(ctx context.Context, tenant, name string) (*store.Secret, error) {
	sec := store.Secret{Tenant: tenant, Name: name}
	var (
		at    sql.NullInt64
		hosts string
	)
	err := s.Read.QueryRowContext(ctx, s.rebind(`SELECT ciphertext, allowed_hosts, updated_at FROM secrets WHERE tenant = ? AND name = ?`), tenant, name).Scan(&sec.Ciphertext, &hosts, &at)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err == nil {
		err = decodeHosts(hosts, &sec)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: get secret %s: %w", s.Name, name, err)
	}
	sec.UpdatedAt = FromNanos(at)
	return &sec, nil
}

// ListSecrets implements store.Store.
func (s *Tables) ListSecrets(ctx context.Context, tenant string) ([]store.Secret, error) {
	out, err := QueryAll(ctx, s, func(sc Scanner) (store.Secret, error) {
		sec := store.Secret{Tenant: tenant}
		var (
			at    sql.NullInt64
			hosts string
		)
		if err := sc.Scan(&sec.Name, &hosts, &at); err != nil {
			return sec, err
		}
		sec.UpdatedAt = FromNanos(at)
		return sec, decodeHosts(hosts, &sec)
	}, `SELECT name, allowed_hosts, updated_at FROM secrets WHERE tenant = ? ORDER BY name`, tenant)
	if err != nil {
		return nil, fmt.Errorf("%s: list secrets: %w", s.Name, err)
	}
	return out, nil
}

// decodeHosts reads a secret's allowed_hosts column; an empty list is nil.
func decodeHosts(col string, sec *store.Secret) error {
	if err := json.Unmarshal([]byte(col), &sec.AllowedHosts); err != nil {
		return fmt.Errorf("decode allowed hosts: %w", err)
	}
	if len(sec.AllowedHosts) == 0 {
		sec.AllowedHosts = nil
	}
	return nil
}

// nonNil is hosts, or an empty list for nil (a JSON [] in the column).
func nonNil(hosts []string) []string {
	if hosts == nil {
		return []string{}
	}
	return hosts
}

// DeleteSecret implements store.Store.
func (s *Tables) DeleteSecret(ctx context.Context, tenant, name string) error {
	if err := Affected(s.Write.ExecContext(ctx, s.rebind(`DELETE FROM secrets WHERE tenant = ? AND name = ?`), tenant, name)); err != nil {
		return fmt.Errorf("%s: delete secret %s: %w", s.Name, name, err)
	}
	return nil
}

// CreateDataKey implements store.Store.
func (s *Tables) CreateDataKey(ctx context.Context, k store.DataKey) error {
	if k.Tenant == "" || k.MasterKeyID == "" || len(k.Wrapped) == 0 {
		return fmt.Errorf("%s: create data key: tenant, master key id and wrapped key are required", s.Name)
	}
	k.CreatedAt = OrNow(k.CreatedAt, s.nowUTC())
	if err := CheckTimes(k.CreatedAt); err != nil {
		return fmt.Errorf("%s: create data key of %s: %w", s.Name, k.Tenant, err)
	}
	_, err := s.Write.ExecContext(ctx, s.rebind(`INSERT INTO data_keys (tenant, master_key_id, wrapped, created_at) VALUES (?, ?, ?, ?)`),
		k.Tenant, k.MasterKeyID, k.Wrapped, k.CreatedAt.UnixNano())
	if s.IsUnique(err) {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("%s: create data key of %s: %w", s.Name, k.Tenant, s.tenantErr(err, k.Tenant))
	}
	return nil
}

// GetDataKey implements store.Store.
func (s *Tables) GetDataKey(ctx context.Context, tenant string) (*store.DataKey, error) {
	k, err := ScanDataKey(s.Read.QueryRowContext(ctx, s.rebind(`SELECT tenant, master_key_id, wrapped, created_at FROM data_keys WHERE tenant = ?`), tenant))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("%s: get data key of %s: %w", s.Name, tenant, err)
	}
	return &k, nil
}

// ListDataKeys implements store.Store; by tenant.
func (s *Tables) ListDataKeys(ctx context.Context) ([]store.DataKey, error) {
	out, err := QueryAll(ctx, s, ScanDataKey, `SELECT tenant, master_key_id, wrapped, created_at FROM data_keys ORDER BY tenant`)
	if err != nil {
		return nil, fmt.Errorf("%s: list data keys: %w", s.Name, err)
	}
	return out, nil
}

// ReplaceDataKey implements store.Store.
func (s *Tables) ReplaceDataKey(ctx context.Context, old, k store.DataKey) error {
	if k.Tenant != old.Tenant || k.MasterKeyID == "" || len(k.Wrapped) == 0 {
		return fmt.Errorf("%s: replace data key: same tenant, a master key id and a wrapped key are required", s.Name)
	}
	err := Affected(s.Write.ExecContext(ctx, s.rebind(`UPDATE data_keys SET master_key_id = ?, wrapped = ?
WHERE tenant = ? AND master_key_id = ? AND wrapped = ?`), k.MasterKeyID, k.Wrapped, k.Tenant, old.MasterKeyID, old.Wrapped))
	if errors.Is(err, store.ErrNotFound) {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("%s: replace data key of %s: %w", s.Name, k.Tenant, err)
	}
	return nil
}

// PutRole implements store.Store.
func (s *Tables) PutRole(ctx context.Context, r store.Role) error {
	if r.Tenant == "" || r.Name == "" {
		return fmt.Errorf("%s: put role: tenant and name are required", s.Name)
	}
	grants := r.Grants
	if grants == nil {
		grants = []string{}
	}
	b, err := json.Marshal(grants)
	if err != nil {
		return fmt.Errorf("%s: put role %s: %w", s.Name, r.Name, err)
	}
	r.UpdatedAt = OrNow(r.UpdatedAt, s.nowUTC())
	if err := CheckTimes(r.UpdatedAt); err != nil {
		return fmt.Errorf("%s: put role %s: %w", s.Name, r.Name, err)
	}
	_, err = s.Write.ExecContext(ctx, s.rebind(`INSERT INTO roles (tenant, name, grants, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (tenant, name) DO UPDATE SET grants = excluded.grants, updated_at = excluded.updated_at`),
		r.Tenant, r.Name, string(b), r.UpdatedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("%s: put role %s: %w", s.Name, r.Name, s.tenantErr(err, r.Tenant))
	}
	return nil
}

// ListRoles implements store.Store.
func (s *Tables) ListRoles(ctx context.Context, tenant string) ([]store.Role, error) {
	out, err := QueryAll(ctx, s, func(sc Scanner) (store.Role, error) {
		r := store.Role{Tenant: tenant}
		var (
			grants string
			at     sql.NullInt64
		)
		if err := sc.Scan(&r.Name, &grants, &at); err != nil {
			return r, err
		}
		r.UpdatedAt = FromNanos(at)
		return r, json.Unmarshal([]byte(grants), &r.Grants)
	}, `SELECT name, grants, updated_at FROM roles WHERE tenant = ? ORDER BY name`, tenant)
	if err != nil {
		return nil, fmt.Errorf("%s: list roles: %w", s.Name, err)
	}
	return out, nil
}

// DeleteRole implements store.Store.
func (s *Tables) DeleteRole(ctx context.Context, tenant, name string) error {
	if err := Affected(s.Write.ExecContext(ctx, s.rebind(`DELETE FROM roles WHERE tenant = ? AND name = ?`), tenant, name)); err != nil {
		return fmt.Errorf("%s: delete role %s: %w", s.Name, name, err)
	}
	return nil
}

// AppendAudit implements store.Store.
func (s *Tables) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	if e.Tenant == "" || e.Action == "" {
		return fmt.Errorf("%s: append audit: tenant and action are required", s.Name)
	}
	e.At = OrNow(e.At, s.nowUTC())
	if err := CheckTimes(e.At); err != nil {
		return fmt.Errorf("%s: append audit: %w", s.Name, err)
	}
	objects := e.Objects
	if objects == nil {
		objects = []string{}
	}
	b, err := json.Marshal(objects)
	if err != nil {
		return fmt.Errorf("%s: append audit: %w", s.Name, err)
	}
	_, err = s.Write.ExecContext(ctx, s.rebind(`INSERT INTO audit (tenant, at, actor, client_id, remote, action, objects) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		e.Tenant, e.At.UnixNano(), e.Actor, e.ClientID, e.Remote, e.Action, string(b))
	if err != nil {
		return fmt.Errorf("%s: append audit: %w", s.Name, s.tenantErr(err, e.Tenant))
	}
	return nil
}

// ListAudit implements store.Store.
func (s *Tables) ListAudit(ctx context.Context, tenant string, f store.AuditFilter) ([]store.AuditEntry, error) {
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
		args = append(args, BoundNanos(f.Since))
	}
	if !f.Until.IsZero() {
		q += ` AND at < ?`
		args = append(args, BoundNanos(f.Until))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, limit)
	out, err := QueryAll(ctx, s, func(sc Scanner) (store.AuditEntry, error) {
		e := store.AuditEntry{Tenant: tenant}
		var (
			at      sql.NullInt64
			objects string
		)
		if err := sc.Scan(&e.Seq, &at, &e.Actor, &e.ClientID, &e.Remote, &e.Action, &objects); err != nil {
			return e, err
		}
		e.At = FromNanos(at)
		return e, json.Unmarshal([]byte(objects), &e.Objects)
	}, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: list audit: %w", s.Name, err)
	}
	return out, nil
}

// BindAgent implements store.Store: the first credential to register an
// agent identifier in a tenant owns it; the owner is returned.
func (s *Tables) BindAgent(ctx context.Context, tenant, agentID, clientID string, at time.Time) (string, error) {
	var owner string
	err := s.Write.QueryRowContext(ctx, s.rebind(`INSERT INTO agent_bindings (tenant, agent_id, client_id, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (tenant, agent_id) DO UPDATE SET client_id = agent_bindings.client_id RETURNING client_id`),
		tenant, agentID, clientID, at.UnixMilli()).Scan(&owner)
	if err != nil {
		return "", fmt.Errorf("%s: bind agent %s: %w", s.Name, agentID, err)
	}
	return owner, nil
}

// AgentBindings implements store.Store: agent identifier to the client id
// that owns it, in tenant.
func (s *Tables) AgentBindings(ctx context.Context, tenant string) (map[string]string, error) {
	rows, err := s.Read.QueryContext(ctx, s.rebind(`SELECT agent_id, client_id FROM agent_bindings WHERE tenant = ?`), tenant)
	if err != nil {
		return nil, fmt.Errorf("%s: agent bindings: %w", s.Name, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var a, c string
		if err := rows.Scan(&a, &c); err != nil {
			return nil, fmt.Errorf("%s: agent bindings: %w", s.Name, err)
		}
		out[a] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: agent bindings: %w", s.Name, err)
	}
	return out, nil
}

// PutWindow implements store.Store.
func (s *Tables) PutWindow(ctx context.Context, tenant string, w pipeline.Window) error {
	if tenant == "" || w.Scope == "" || w.Name == "" {
		return fmt.Errorf("%s: put window: tenant, scope and name are required", s.Name)
	}
	b, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("%s: put window %s: %w", s.Name, w.Name, err)
	}
	_, err = s.Write.ExecContext(ctx, s.rebind(`INSERT INTO windows (tenant, scope, name, spec, updated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (tenant, scope, name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`),
		tenant, w.Scope, w.Name, string(b), s.nowUTC().UnixNano())
	if err != nil {
		return fmt.Errorf("%s: put window %s: %w", s.Name, w.Name, s.tenantErr(err, tenant))
	}
	return nil
}

// ListWindows implements store.Store.
func (s *Tables) ListWindows(ctx context.Context, tenant string) ([]pipeline.Window, error) {
	out, err := QueryAll(ctx, s, func(sc Scanner) (pipeline.Window, error) {
		var (
			w    pipeline.Window
			spec string
		)
		if err := sc.Scan(&spec); err != nil {
			return w, err
		}
		return w, json.Unmarshal([]byte(spec), &w)
	}, `SELECT spec FROM windows WHERE tenant = ? ORDER BY scope, name`, tenant)
	if err != nil {
		return nil, fmt.Errorf("%s: list windows: %w", s.Name, err)
	}
	return out, nil
}

// DeleteWindow implements store.Store.
func (s *Tables) DeleteWindow(ctx context.Context, tenant, scope, name string) error {
	if err := Affected(s.Write.ExecContext(ctx, s.rebind(`DELETE FROM windows WHERE tenant = ? AND scope = ? AND name = ?`), tenant, scope, name)); err != nil {
		return fmt.Errorf("%s: delete window %s of %s: %w", s.Name, name, scope, err)
	}
	return nil
}

// PutFreeze implements store.Store.
func (s *Tables) PutFreeze(ctx context.Context, tenant string, f pipeline.Freeze) error {
	if tenant == "" || f.Scope == "" {
		return fmt.Errorf("%s: put freeze: tenant and scope are required", s.Name)
	}
	f.At = OrNow(f.At, s.nowUTC())
	if err := CheckTimes(f.At, f.Until); err != nil {
		return fmt.Errorf("%s: put freeze of %s: %w", s.Name, f.Scope, err)
	}
	_, err := s.Write.ExecContext(ctx, s.rebind(`INSERT INTO freezes (tenant, scope, reason, until, set_by, updated_at) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (tenant, scope) DO UPDATE SET reason = excluded.reason, until = excluded.until, set_by = excluded.set_by, updated_at = excluded.updated_at`),
		tenant, f.Scope, f.Reason, Nanos(f.Until).Int64, f.By, f.At.UnixNano())
	if err != nil {
		return fmt.Errorf("%s: put freeze of %s: %w", s.Name, f.Scope, s.tenantErr(err, tenant))
	}
	return nil
}

// ListFreezes implements store.Store.
func (s *Tables) ListFreezes(ctx context.Context, tenant string) ([]pipeline.Freeze, error) {
	out, err := QueryAll(ctx, s, func(sc Scanner) (pipeline.Freeze, error) {
		var (
			f         pipeline.Freeze
			until, at sql.NullInt64
		)
		if err := sc.Scan(&f.Scope, &f.Reason, &until, &f.By, &at); err != nil {
			return f, err
		}
		if until.Int64 != 0 {
			f.Until = FromNanos(until)
		}
		f.At = FromNanos(at)
		return f, nil
	}, `SELECT scope, reason, until, set_by, updated_at FROM freezes WHERE tenant = ? ORDER BY scope`, tenant)
	if err != nil {
		return nil, fmt.Errorf("%s: list freezes: %w", s.Name, err)
	}
	return out, nil
}

// DeleteFreeze implements store.Store.
func (s *Tables) DeleteFreeze(ctx context.Context, tenant, scope string) error {
	if err := Affected(s.Write.ExecContext(ctx, s.rebind(`DELETE FROM freezes WHERE tenant = ? AND scope = ?`), tenant, scope)); err != nil {
		return fmt.Errorf("%s: delete freeze of %s: %w", s.Name, scope, err)
	}
	return nil
}

// PutWarm implements store.Store.
func (s *Tables) PutWarm(ctx context.Context, w store.Warm) error {
	if w.Tenant == "" || w.Pipeline == "" || w.Target == "" || w.Until.IsZero() {
		return fmt.Errorf("%s: put warm version: tenant, pipeline, target and until are required", s.Name)
	}
	_, err := s.Write.ExecContext(ctx, s.rebind(`INSERT INTO warm_versions (tenant, pipeline, target, until) VALUES (?, ?, ?, ?)
ON CONFLICT (tenant, pipeline, target) DO UPDATE SET until = excluded.until`),
		w.Tenant, w.Pipeline, w.Target, w.Until.UnixNano())
	if err != nil {
		return fmt.Errorf("%s: put warm version of %s/%s: %w", s.Name, w.Pipeline, w.Target, s.tenantErr(err, w.Tenant))
	}
	return nil
}

func scanWarm(sc Scanner) (store.Warm, error) {
	var (
		w     store.Warm
		until sql.NullInt64
	)
	if err := sc.Scan(&w.Tenant, &w.Pipeline, &w.Target, &until); err != nil {
		return w, err
	}
	w.Until = FromNanos(until)
	return w, nil
}

// ListWarm implements store.Store.
func (s *Tables) ListWarm(ctx context.Context) ([]store.Warm, error) {
	out, err := QueryAll(ctx, s, scanWarm, `SELECT tenant, pipeline, target, until FROM warm_versions ORDER BY until, tenant, pipeline, target`)
	if err != nil {
		return nil, fmt.Errorf("%s: list warm versions: %w", s.Name, err)
	}
	return out, nil
}

// ClaimWarm implements store.Leases: one UPDATE whose WHERE re-checks the
// owner is not live (PostgreSQL re-evaluates it on a row another claimer
// changed first), then the rows of the pipelines replica owns.
func (s *Tables) ClaimWarm(ctx context.Context, replica string, now time.Time) ([]store.Warm, error) {
	if replica == "" {
		return nil, fmt.Errorf("%s: claim warm versions: the replica id is empty", s.Name)
	}
	var out []store.Warm
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.rebind(`UPDATE pipelines SET owner = ?
WHERE NOT (`+s.Unfinished+`) AND owner <> ?
AND EXISTS (SELECT 1 FROM warm_versions w WHERE w.tenant = pipelines.tenant AND w.pipeline = pipelines.id)
AND owner NOT IN (SELECT id FROM replicas WHERE live_until > ?)`), replica, replica, now.UnixNano()); err != nil {
			return err
		}
		var err error
		out, err = QueryAll(ctx, tx, scanWarm, s.rebind(`SELECT w.tenant, w.pipeline, w.target, w.until FROM warm_versions w
JOIN pipelines p ON p.tenant = w.tenant AND p.id = w.pipeline
WHERE p.owner = ? ORDER BY w.until, w.tenant, w.pipeline, w.target`), replica)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: claim warm versions for %s: %w", s.Name, replica, err)
	}
	return out, nil
}

// DeleteWarm implements store.Store.
func (s *Tables) DeleteWarm(ctx context.Context, tenant, pipeline, target string) error {
	if _, err := s.Write.ExecContext(ctx, s.rebind(`DELETE FROM warm_versions WHERE tenant = ? AND pipeline = ? AND target = ?`), tenant, pipeline, target); err != nil {
		return fmt.Errorf("%s: delete warm version of %s/%s: %w", s.Name, pipeline, target, err)
	}
	return nil
}
