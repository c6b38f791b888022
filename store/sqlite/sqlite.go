package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/internal/sqlrow"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Options configures Open. The zero value is ready to use.
type Options struct {
	// Logger receives the few things worth telling an operator (migrations
	// applied). Nil discards them.
	Logger *slog.Logger
	// Now stamps UpdatedAt, and CreatedAt and Event.At when the caller left
	// them zero. Nil means time.Now.
	Now func() time.Time
	// BusyTimeout is how long a write waits for another process holding the
	// database's write lock before failing. Zero means 10 seconds.
	BusyTimeout time.Duration
	// ReadConns caps the connections used for reads. Zero means
	// max(4, GOMAXPROCS).
	ReadConns int

	// synchronous overrides PRAGMA synchronous, for the benchmark that shows
	// what durability costs; never set outside tests.
	synchronous string
}

// Store is a store.Store on one SQLite database file.
type Store struct {
	// write has exactly one connection, opened with BEGIN IMMEDIATE
	// transactions: SQLite admits one writer at a time anyway, and taking
	// the write lock when the transaction begins (not at its first write)
	// is what makes read-then-write transactions, such as admission,
	// serialisable, also against another process on the same file.
	write *sql.DB
	// read serves every query outside a write transaction; in WAL mode
	// readers never wait for the writer.
	read *sql.DB
	log  *slog.Logger
	now  func() time.Time
	// saveStmt and friends are prepared once on the write connection.
	stmts writeStmts
	// Tables serves every table but the pipelines'.
	*sqlrow.Tables
}

var _ store.Store = (*Store)(nil)

//go:embed migrations/*.sql
var migrations embed.FS

// Open opens (creating it if needed) the database at path, brings its schema
// up to date and returns a Store on it. Open refuses a database whose schema
// is newer than this binary's.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := ownerOnly(abs); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s := &Store{log: opts.Logger, now: opts.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 10 * time.Second
	}
	// synchronous=FULL: in WAL mode, NORMAL survives a crash of the process
	// but may lose the last transactions on a power cut or kernel panic,
	// because the WAL is only synced at checkpoints. The engine executes a
	// transition's side effects (kubectl-like commands, acknowledging an
	// approval to a person) only after SavePipeline returned, so a save that
	// returned must survive anything: FULL syncs the WAL at every commit.
	// BenchmarkSave measures the cost against NORMAL.
	sync := "FULL"
	if opts.synchronous != "" {
		sync = opts.synchronous
	}
	common := []string{
		"busy_timeout(" + strconv.FormatInt(busy.Milliseconds(), 10) + ")",
		"foreign_keys(1)",
	}
	writeDSN := dsn(abs, "immediate", append(common, "journal_mode(WAL)", "synchronous("+sync+")"))
	s.write, err = sql.Open("sqlite", writeDSN)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.write.SetMaxOpenConns(1)
	s.write.SetMaxIdleConns(1)
	s.write.SetConnMaxLifetime(0)
	s.write.SetConnMaxIdleTime(0)
	if err := s.migrate(ctx); err != nil {
		s.write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := s.stmts.prepare(ctx, s.write); err != nil {
		s.write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// The read connections come after the migration, so they find the file in
	// WAL mode; query_only guards against a write slipping onto them.
	s.read, err = sql.Open("sqlite", dsn(abs, "deferred", append(common, "query_only(1)")))
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	n := opts.ReadConns
	if n <= 0 {
		n = max(4, runtime.GOMAXPROCS(0))
	}
	s.read.SetMaxOpenConns(n)
	s.read.SetMaxIdleConns(n)
	if err := s.read.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.Tables = &sqlrow.Tables{Read: s.read, Write: s.write, Now: s.now,
		Dialect: sqlrow.Dialect{Name: "sqlite", Unfinished: "terminal = 0", IsUnique: isUnique, IsForeignKey: isForeignKey}}
	return s, nil
}

// dsn builds a file: URI for the driver. The path is escaped as RFC 8089
// wants, so that a '?' or '#' in a directory name cannot be read as URI
// syntax.
func dsn(abs, txlock string, pragmas []string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	var b strings.Builder
	b.WriteString("file:")
	b.WriteString(r.Replace(filepath.ToSlash(abs)))
	b.WriteString("?_txlock=" + txlock)
	for _, p := range pragmas {
		b.WriteString("&_pragma=")
		b.WriteString(p)
	}
	return b.String()
}

// Close closes the database. A Store must not be used after Close.
func (s *Store) Close() error {
	var errs []error
	// Let SQLite refresh the statistics its planner uses, as it recommends
	// before closing; cheap when nothing changed.
	if _, err := s.write.Exec(`PRAGMA optimize`); err != nil {
		errs = append(errs, err)
	}
	if s.read != nil {
		errs = append(errs, s.read.Close())
	}
	errs = append(errs, s.stmts.close(), s.write.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// migrate applies, in one immediate transaction, every migration the
// database has not seen, and records each in schema_migrations. Running it
// again applies nothing; two processes opening a new file at once take
// turns on the write lock, and the second finds the work done.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at INTEGER NOT NULL
) STRICT`); err != nil {
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
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.Name, s.now().UnixNano()); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if len(ms) > current {
		s.log.Info("sqlite schema migrated", "from", current, "to", len(ms))
	}
	return nil
}

// isConstraint reports whether err is a UNIQUE or PRIMARY KEY violation.
func isUnique(err error) bool {
	var e *sqlite.Error
	if errors.As(err, &e) {
		switch e.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return true
		}
	}
	return false
}

// isForeignKey reports whether err is a foreign-key violation: the tenant
// named does not exist.
func isForeignKey(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// nowUTC returns the store's clock in UTC.
func (s *Store) nowUTC() time.Time { return s.now().UTC() }

// ownerOnly creates the database file readable and writable by its owner
// only, and takes group and other access away from an existing one and its
// WAL and shared-memory files (SQLite gives those the database file's mode):
// rows hold hashed secrets, wrapped data keys and the audit trail.
func ownerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, info.Mode().Perm()&0o700); err != nil {
				return err
			}
		}
	}
	return nil
}

func loadMigrations() ([]sqlrow.Migration, error) {
	return sqlrow.LoadMigrations(migrations, "migrations")
}
