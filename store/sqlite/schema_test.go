package sqlite

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/internal/sqlrow"
	"github.com/sortie-cd/sortie/store/storetest"
)

func TestMigrationsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sortie.db")
	var log bytes.Buffer
	s := open(t, path, Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if !strings.Contains(log.String(), "sqlite schema migrated") {
		t.Errorf("first open logged %q, want the migration", log.String())
	}
	createTenant(t, s, "acme")
	log.Reset()
	s2 := open(t, path, Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if log.Len() != 0 {
		t.Errorf("second open logged %q, want nothing", log.String())
	}
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	var versions []int
	rows, err := s2.read.QueryContext(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	var want []int
	for _, m := range ms {
		want = append(want, m.Version)
	}
	if diff := cmp.Diff(want, versions); diff != "" {
		t.Errorf("schema_migrations (-want +got):\n%s", diff)
	}
	tenants, err := s2.ListTenants(t.Context())
	if err != nil || len(tenants) != 2 {
		t.Errorf("tenants after reopening: %v, %v", tenants, err)
	}
}

func TestMigrationsConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sortie.db")
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			s, err := Open(context.Background(), path, Options{})
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("open %d: %v", i, err)
		}
	}
}

func TestRefuseNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sortie.db")
	s := open(t, path, Options{})
	if _, err := s.write.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), path, Options{})
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("opening a database from a newer binary: %v, want a refusal", err)
	}
}

// TestTenantColumns: every table but the bookkeeping ones (and the
// server's own token signing keys, which belong to no tenant) carries its
// tenant.
func TestTenantColumns(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "sortie.db"), Options{})
	rows, err := s.read.QueryContext(t.Context(), `SELECT m.name, count(c.name) FROM sqlite_schema m
LEFT JOIN pragma_table_info(m.name) c ON c.name = 'tenant'
WHERE m.type = 'table' AND m.name NOT IN ('schema_migrations', 'tenants', 'replicas', 'signing_keys') GROUP BY m.name`)
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
	if n < 5 {
		t.Errorf("found %d tables", n)
	}
}

// TestRecoverCrashImage copies the database file and its write-ahead log
// while the store that wrote them is open, exactly what a power cut or a
// killed process leaves (the shared-memory index is rebuilt), and opens the
// copy.
func TestRecoverCrashImage(t *testing.T) {
	dir := t.TempDir()
	s := open(t, filepath.Join(dir, "sortie.db"), Options{})
	ctx := t.Context()
	var want []*store.Pipeline
	for i, id := range []string{"p1", "p2", "p3"} {
		p := storetest.CanaryPipeline(store.DefaultTenant, id, "web", storetest.T0.Add(time.Duration(i)*time.Minute))
		if err := s.CreatePipeline(ctx, p, nil, []store.Event{{Type: "created"}}); err != nil {
			t.Fatal(err)
		}
		for range i {
			p.State.Message += "saved "
			if err := s.SavePipeline(ctx, p, []store.Event{{Type: "saved"}}); err != nil {
				t.Fatal(err)
			}
		}
		want = append(want, p)
	}
	if fi, err := os.Stat(filepath.Join(dir, "sortie.db-wal")); err != nil || fi.Size() == 0 {
		t.Fatalf("no write-ahead log to recover from: %v", err)
	}
	image := t.TempDir()
	for _, name := range []string{"sortie.db", "sortie.db-wal"} {
		copyFile(t, filepath.Join(dir, name), filepath.Join(image, name))
	}
	r := open(t, filepath.Join(image, "sortie.db"), Options{})
	for _, w := range want {
		got, err := r.GetPipeline(ctx, w.Tenant, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(w, got, storetest.CmpOptions); diff != "" {
			t.Errorf("pipeline %s in the crash image (-want +got):\n%s", w.ID, diff)
		}
		es, err := r.Events(ctx, w.Tenant, w.ID, 0)
		if err != nil || int64(len(es)) != w.Version {
			t.Errorf("events of %s in the crash image: %d, %v; want %d", w.ID, len(es), err, w.Version)
		}
	}
	checkIntegrity(t, filepath.Join(image, "sortie.db"))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func createTenant(t *testing.T, s *Store, name string) {
	t.Helper()
	if err := s.CreateTenant(t.Context(), name); err != nil {
		t.Fatal(err)
	}
}

// TestQueryPlans pins the indexes the frequent queries use, so that
// admission and resume stay proportional to the pipelines in flight, not to
// the history.
func TestQueryPlans(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "sortie.db"), Options{})
	for _, tc := range []struct {
		name, query, want string
	}{
		{"list", `SELECT ` + sqlrow.PipelineColumns + ` FROM pipelines p WHERE p.tenant = ? ORDER BY p.created_at DESC, p.id DESC LIMIT ?`, "USING INDEX pipelines_by_created (tenant=?)"},
		{"list by application", `SELECT ` + sqlrow.PipelineColumns + ` FROM pipelines p WHERE p.tenant = ? AND p.application = ? ORDER BY p.created_at DESC, p.id DESC LIMIT ?`, "USING INDEX pipelines_by_application (tenant=? AND application=?)"},
		{"admission", s.RefsSQL(), "USING INDEX pipelines_unfinished (tenant=? AND application=?)"},
		{"resume", s.ResumableSQL(), "USING INDEX pipelines_unfinished"},
		{"deployed before", sqlrow.DeployedBeforeSQL, "USING PRIMARY KEY (tenant=? AND application=? AND target=?)"},
		{"save", saveSQL, "USING INDEX sqlite_autoindex_pipelines_1 (tenant=? AND id=?)"},
		{"events", sqlrow.EventsSQL, "USING PRIMARY KEY (tenant=? AND pipeline=? AND seq>?)"},
	} {
		args := make([]any, strings.Count(tc.query, "?"))
		for i := range args {
			args[i] = 1
		}
		rows, err := s.write.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+tc.query, args...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var plan []string
		for rows.Next() {
			var (
				id, parent, unused int
				detail             string
			)
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if !strings.Contains(strings.Join(plan, "\n"), tc.want) {
			t.Errorf("%s: plan\n\t%s\ndoes not use %s", tc.name, strings.Join(plan, "\n\t"), tc.want)
		}
	}
}
