package postgres

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/postgres/pgtest"
	"github.com/sortie-cd/sortie/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func open(t testing.TB, url string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (store.Store, func(t *testing.T) store.Store) {
		url := pgtest.Database(t)
		return open(t, url, Options{}), func(t *testing.T) store.Store { return open(t, url, Options{}) }
	})
}

// crashEnv names the database a re-executed test binary writes to as the
// child of TestKill.
const crashEnv = "SORTIE_POSTGRES_CRASH_CHILD_DB"

// TestKill kills a process writing to the database with SIGKILL mid-stream
// and checks what the next open finds: every reported save whole, none
// partly.
func TestKill(t *testing.T) {
	url := pgtest.Database(t)
	child := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	child.Env = append(os.Environ(), crashEnv+"="+url, pgtest.URLEnv+"="+pgtest.URL(t))
	storetest.Kill(t, child, func(t *testing.T) store.Store { return open(t, url, Options{}) })
}

// TestCrashChild is TestKill's child; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	url := os.Getenv(crashEnv)
	if url == "" {
		t.Skip("only run by TestKill")
	}
	s, err := Open(t.Context(), url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Never closed: the parent kills the process.
	if err := storetest.CrashWriter(t.Context(), s, os.Stdout); err != nil {
		t.Fatal(err)
	}
}

// TestMigrationsConcurrentOpen opens one new database from several stores
// at once: they take turns on the migration lock, and each finds the
// schema whole.
func TestMigrationsConcurrentOpen(t *testing.T) {
	url := pgtest.Database(t)
	var g errgroup.Group
	for range 4 {
		g.Go(func() error {
			s, err := Open(t.Context(), url, Options{})
			if err != nil {
				return err
			}
			defer s.Close()
			_, err = s.ListTenants(t.Context())
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	s := open(t, url, Options{})
	var n int
	if err := s.db.QueryRowContext(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if n != len(ms) {
		t.Errorf("schema_migrations has %d rows, want %d", n, len(ms))
	}
}

// TestRefuseNewerSchema: a database migrated by a newer binary is refused,
// naming both versions.
func TestRefuseNewerSchema(t *testing.T) {
	url := pgtest.Database(t)
	s := open(t, url, Options{})
	if _, err := s.db.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(t.Context(), url, Options{})
	want := fmt.Sprintf("schema version 999, newer than this binary's %d", len(ms))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("opening a database from a newer binary: %v, want an error with %q", err, want)
	}
}

// TestUnreachable: a server that does not answer is an error naming it,
// never the password of the URL.
func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = Open(ctx, fmt.Sprintf("postgres://sortie:hunter2secret@127.0.0.1:%d/sortie?sslmode=disable", port), Options{})
	if err == nil {
		t.Fatal("Open succeeded with no server")
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d/sortie", port)) {
		t.Errorf("error %q does not name the server", err)
	}
	if strings.Contains(err.Error(), "hunter2secret") {
		t.Errorf("error %q shows the password", err)
	}
	_, err = Open(ctx, "postgres://sortie:hunter2secret@127.0.0.1:notaport/x", Options{})
	if err == nil || strings.Contains(err.Error(), "hunter2secret") {
		t.Errorf("a malformed URL: %v, want an error without the password", err)
	}
}

// TestAuditAppendOnly: the database itself refuses to change or remove an
// audit entry, whoever asks.
func TestAuditAppendOnly(t *testing.T) {
	s := open(t, pgtest.Database(t), Options{})
	if err := s.AppendAudit(t.Context(), store.AuditEntry{Tenant: store.DefaultTenant, Action: "x"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE audit SET action = 'y'`, `DELETE FROM audit`, `TRUNCATE audit`} {
		if _, err := s.db.ExecContext(t.Context(), q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want a refusal", q, err)
		}
	}
}

// TestTenantColumns: every table but the tenants themselves, the
// migration record, the replicas and the server's own token signing keys
// (which belong to no tenant) has a tenant column.
func TestTenantColumns(t *testing.T) {
	s := open(t, pgtest.Database(t), Options{})
	rows, err := s.db.QueryContext(t.Context(), `SELECT t.table_name, count(c.column_name)
FROM information_schema.tables t
LEFT JOIN information_schema.columns c
	ON c.table_schema = t.table_schema AND c.table_name = t.table_name AND c.column_name = 'tenant'
WHERE t.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
	AND t.table_name NOT IN ('schema_migrations', 'tenants', 'replicas', 'signing_keys')
GROUP BY t.table_name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			table string
			has   int
		)
		if err := rows.Scan(&table, &has); err != nil {
			t.Fatal(err)
		}
		n++
		if has != 1 {
			t.Errorf("table %s has no tenant column", table)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 12 {
		t.Errorf("found %d tables", n)
	}
}

// The benchmarks run on pgtest's server, which has fsync off: they measure
// the round trips and the SQL, not the disk.
func BenchmarkSave(b *testing.B) {
	storetest.BenchmarkSave(b, open(b, pgtest.Database(b), Options{}))
}

func BenchmarkSaveParallel(b *testing.B) {
	storetest.BenchmarkSaveParallel(b, open(b, pgtest.Database(b), Options{}))
}

func BenchmarkCreate(b *testing.B) {
	storetest.BenchmarkCreate(b, open(b, pgtest.Database(b), Options{}))
}
