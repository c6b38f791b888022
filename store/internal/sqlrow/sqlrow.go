package sqlrow

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// Times are stored as int64 nanoseconds: from 1677 to 2262.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// CheckTimes refuses times that the stored form cannot hold, rather than
// storing another time.
func CheckTimes(ts ...time.Time) error {
	for _, t := range ts {
		if !t.IsZero() && (t.Before(minTime) || t.After(maxTime)) {
			return fmt.Errorf("time %v is out of the range the store keeps (years 1678 to 2262)", t)
		}
	}
	return nil
}

// BoundNanos is a filter bound in the stored form, clamped to its range.
func BoundNanos(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// Nanos converts a time to the stored form: nanoseconds since the epoch, or
// NULL for the zero time. Callers check the range first (CheckTimes).
func Nanos(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

// FromNanos is the inverse of Nanos; times come back in UTC.
func FromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// LeaseTime reads a lease_until column, where 0 (no lease) is the zero
// time.
func LeaseTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// LeaseNanos is a lease's Until in the stored form (0: none).
func LeaseNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// OrNow returns t in UTC, or now when t is zero: the caller's clock is the
// engine's and wins; the store's only fills gaps.
func OrNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t.UTC()
}

// Marshal encodes v as JSON text without escaping <, > and &, so that stored
// documents read as they were written.
func Marshal(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// EncodeRoles is a list of roles as stored: a JSON array, never null.
func EncodeRoles(roles []string) (string, error) {
	if roles == nil {
		roles = []string{}
	}
	b, err := json.Marshal(roles)
	return string(b), err
}

// Migration is one file of an embedded migrations directory,
// NNNN_name.sql.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// LoadMigrations reads dir of fsys, in version order, and checks the
// versions count from 1 without gaps.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s is not named NNNN_name.sql", e.Name())
		}
		text, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(text)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %04d_%s: versions must count from 1 without gaps", m.Version, m.Name)
		}
	}
	return ms, nil
}

// Row is a pipeline's columns as written. Status is State.Status (p.Status
// only when the state has none): the column mirrors the state by
// construction.
type Row struct {
	Status   pipeline.Status
	Terminal bool
	Wake     sql.NullInt64
	Deployed string
	State    string
}

// EncodeRow derives the written columns from p.
func EncodeRow(p *store.Pipeline) (Row, error) {
	if err := CheckTimes(p.CreatedAt, p.UpdatedAt, p.Wake); err != nil {
		return Row{}, err
	}
	r := Row{Status: p.State.Status, Wake: Nanos(p.Wake)}
	if r.Status == "" {
		r.Status = p.Status
	}
	if r.Status == "" {
		return Row{}, errors.New("the pipeline has no status")
	}
	r.Terminal = r.Status.Terminal()
	var err error
	deployed := p.Deployed
	if deployed == nil {
		deployed = []string{}
	}
	if r.Deployed, err = Marshal(deployed); err != nil {
		return Row{}, fmt.Errorf("encode deployed: %w", err)
	}
	if r.State, err = Marshal(p.State); err != nil {
		return Row{}, fmt.Errorf("encode state: %w", err)
	}
	return r, nil
}

// Scanner is a *sql.Row or *sql.Rows.
type Scanner interface{ Scan(dest ...any) error }

// PipelineColumns are read by ScanPipeline, in this order, from pipelines
// p; WithSource adds the source from pipeline_sources s.
const PipelineColumns = `p.tenant, p.id, p.application, p.status, p.created_at, p.updated_at, p.wake_at,
	p.started_by, p.version, p.deployed, p.state, p.owner, p.lease_until, p.epoch`

// WithSource selects PipelineColumns and the source.
const WithSource = `SELECT ` + PipelineColumns + `, s.source
FROM pipelines p LEFT JOIN pipeline_sources s ON s.tenant = p.tenant AND s.pipeline = p.id`

// ScanPipeline reads PipelineColumns (and the source if source is set).
func ScanPipeline(sc Scanner, source bool) (*store.Pipeline, error) {
	var (
		p                        store.Pipeline
		created, updated, wake   sql.NullInt64
		deployed, state, srcText sql.NullString
		until                    int64
	)
	dest := []any{&p.Tenant, &p.ID, &p.Application, &p.Status, &created, &updated, &wake,
		&p.StartedBy, &p.Version, &deployed, &state, &p.Lease.Owner, &until, &p.Lease.Epoch}
	if source {
		dest = append(dest, &srcText)
	}
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	p.CreatedAt, p.UpdatedAt, p.Wake = FromNanos(created), FromNanos(updated), FromNanos(wake)
	p.Lease.Until = LeaseTime(until)
	if err := json.Unmarshal([]byte(deployed.String), &p.Deployed); err != nil {
		return nil, fmt.Errorf("pipeline %s: decode deployed: %w", p.ID, err)
	}
	if len(p.Deployed) == 0 {
		p.Deployed = nil
	}
	if err := json.Unmarshal([]byte(state.String), &p.State); err != nil {
		return nil, fmt.Errorf("pipeline %s: decode state: %w", p.ID, err)
	}
	if srcText.Valid {
		if err := json.Unmarshal([]byte(srcText.String), &p.Source); err != nil {
			return nil, fmt.Errorf("pipeline %s: decode source: %w", p.ID, err)
		}
	}
	return &p, nil
}

// CredentialColumns are read by ScanCredential.
const CredentialColumns = `tenant, client_id, name, secret_hash, roles, created_at`

// ScanCredential reads CredentialColumns.
func ScanCredential(sc Scanner) (store.Credential, error) {
	var (
		c       store.Credential
		roles   string
		created sql.NullInt64
	)
	if err := sc.Scan(&c.Tenant, &c.ClientID, &c.Name, &c.SecretHash, &roles, &created); err != nil {
		return c, err
	}
	c.CreatedAt = FromNanos(created)
	if err := json.Unmarshal([]byte(roles), &c.Roles); err != nil {
		return c, fmt.Errorf("credential %s: decode roles: %w", c.ClientID, err)
	}
	return c, nil
}

// UserColumns are read by ScanUser.
const UserColumns = `tenant, username, name, password_hash, roles, issuer, subject, created_at, updated_at`

// ScanUser reads UserColumns.
func ScanUser(sc Scanner) (store.User, error) {
	var (
		u                store.User
		roles            string
		created, updated sql.NullInt64
	)
	if err := sc.Scan(&u.Tenant, &u.Username, &u.Name, &u.PasswordHash, &roles, &u.Issuer, &u.Subject, &created, &updated); err != nil {
		return u, err
	}
	u.CreatedAt, u.UpdatedAt = FromNanos(created), FromNanos(updated)
	if err := json.Unmarshal([]byte(roles), &u.Roles); err != nil {
		return u, fmt.Errorf("user %s: decode roles: %w", u.Username, err)
	}
	return u, nil
}

// ProviderColumns are read by ScanProvider.
const ProviderColumns = `tenant, name, type, config, created_at`

// ScanProvider reads ProviderColumns.
func ScanProvider(sc Scanner) (store.MetricProvider, error) {
	var (
		p       store.MetricProvider
		config  string
		created sql.NullInt64
	)
	if err := sc.Scan(&p.Tenant, &p.Name, &p.Type, &config, &created); err != nil {
		return p, err
	}
	p.Config = []byte(config)
	p.CreatedAt = FromNanos(created)
	return p, nil
}

// ScanDataKey reads tenant, master_key_id, wrapped, created_at.
func ScanDataKey(sc Scanner) (store.DataKey, error) {
	var (
		k  store.DataKey
		at sql.NullInt64
	)
	err := sc.Scan(&k.Tenant, &k.MasterKeyID, &k.Wrapped, &at)
	k.CreatedAt = FromNanos(at)
	return k, err
}

// Affected turns an Exec that changed no row into store.ErrNotFound.
func Affected(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	return err
}

// Querier is a *sql.DB, *sql.Tx or Tables.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// QueryAll runs a query and scans every row with scan.
func QueryAll[T any](ctx context.Context, db Querier, scan func(Scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
