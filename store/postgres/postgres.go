package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/internal/sqlrow"
)

// Options configures Open. The zero value is ready to use.
type Options struct {
	// Logger receives the few things worth telling an operator (migrations
	// applied). Nil discards them.
	Logger *slog.Logger
	// Now stamps UpdatedAt, and CreatedAt and Event.At when the caller left
	// them zero. Nil means time.Now.
	Now func() time.Time
	// MaxConns caps the connections to the server. Zero means 10.
	MaxConns int
}

// Store is a store.Store on one PostgreSQL database.
type Store struct {
	db  *sql.DB
	log *slog.Logger
	now func() time.Time
	// conn is the parsed URL, for the listener's own connection.
	conn *pgx.ConnConfig
	// Tables serves every table but the pipelines'.
	*sqlrow.Tables
}

var _ store.Store = (*Store)(nil)

//go:embed migrations/*.sql
var migrations embed.FS

// Open connects to the database url names (a postgres:// URL or a
// key=value connection string, as libpq takes), brings its schema up to
// date and returns a Store on it. Open fails, naming the server and never
// the password, when the server cannot be reached, and refuses a database
// whose schema is newer than this binary's.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx's parse errors may quote the URL, password included.
		return nil, errors.New("postgres: open: the database URL is not a valid PostgreSQL connection string")
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	s := &Store{log: opts.Logger, now: opts.Now, conn: cfg}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.db = stdlib.OpenDB(*cfg)
	n := opts.MaxConns
	if n <= 0 {
		n = 10
	}
	s.db.SetMaxOpenConns(n)
	s.db.SetMaxIdleConns(n)
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("postgres: open %s: %w", where, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("postgres: open %s: %w", where, err)
	}
	s.Tables = &sqlrow.Tables{Read: s.db, Write: s.db, Now: s.now,
		Dialect: sqlrow.Dialect{Name: "postgres", Unfinished: "NOT terminal", SkipLocked: " FOR UPDATE SKIP LOCKED", SnapshotLevel: sql.LevelRepeatableRead, Rebind: rebind, IsUnique: isUnique, IsForeignKey: isForeignKey}}
	return s, nil
}

// Close closes the connections. A Store must not be used after Close.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("postgres: close: %w", err)
	}
	return nil
}

// migrationLock is the advisory lock key under which servers opening the
// same database take turns to migrate it.
const migrationLock = `SELECT pg_advisory_xact_lock(hashtext('sortie schema_migrations'))`

// migrate applies, in one transaction (PostgreSQL's DDL is transactional),
// every migration the database has not seen, and records each in
// schema_migrations. Servers starting at once take turns on an advisory
// lock; the later ones find the work done.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, migrationLock); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at BIGINT  NOT NULL
)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if current > len(ms) {
		return fmt.Errorf("migrate: the database has schema version %d, newer than this binary's %d", current, len(ms))
	}
	for _, m := range ms[current:] {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migrate: %04d_%s: %w", m.Version, m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.Version, m.Name, s.now().UnixNano()); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if len(ms) > current {
		s.log.Info("postgres schema migrated", "from", current, "to", len(ms))
	}
	return nil
}

// rebind numbers the ? placeholders of a query written for
// sqlrow.Tables: $1, $2, ... (its queries have no ? of their own).
func rebind(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// isUnique reports whether err is a UNIQUE or PRIMARY KEY violation.
func isUnique(err error) bool { return pgCode(err) == "23505" }

// isForeignKey reports whether err is a foreign-key violation: the tenant
// (or user) named does not exist.
func isForeignKey(err error) bool { return pgCode(err) == "23503" }

// nowUTC returns the store's clock in UTC.
func (s *Store) nowUTC() time.Time { return s.now().UTC() }

func loadMigrations() ([]sqlrow.Migration, error) {
	return sqlrow.LoadMigrations(migrations, "migrations")
}
