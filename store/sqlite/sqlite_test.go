package sqlite

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/storetest"
)

func open(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, opts)
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
		path := filepath.Join(t.TempDir(), "sortie.db")
		return open(t, path, Options{}), func(t *testing.T) store.Store { return open(t, path, Options{}) }
	})
}

// crashEnv names the database a re-executed test binary writes to as the
// child of TestKill.
const crashEnv = "SORTIE_SQLITE_CRASH_CHILD_DB"

// TestKill kills a process writing to the database with SIGKILL mid-stream
// and checks what the next open finds.
func TestKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sortie.db")
	child := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	child.Env = append(os.Environ(), crashEnv+"="+path)
	storetest.Kill(t, child, func(t *testing.T) store.Store { return open(t, path, Options{}) })
	checkIntegrity(t, path)
}

// TestCrashChild is TestKill's child; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("only run by TestKill")
	}
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Never closed: the parent kills the process.
	if err := storetest.CrashWriter(t.Context(), s, os.Stdout); err != nil {
		t.Fatal(err)
	}
}

func checkIntegrity(t *testing.T, path string) {
	t.Helper()
	s := open(t, path, Options{})
	var result string
	if err := s.read.QueryRowContext(t.Context(), `PRAGMA integrity_check`).Scan(&result); err != nil {
		t.Fatal(err)
	}
	if result != "ok" {
		t.Errorf("integrity_check: %s", result)
	}
	var violations int
	if err := s.read.QueryRowContext(t.Context(), `SELECT count(*) FROM pragma_foreign_key_check`).Scan(&violations); err != nil {
		t.Fatal(err)
	}
	if violations != 0 {
		t.Errorf("%d foreign key violations", violations)
	}
}

func BenchmarkSave(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			storetest.BenchmarkSave(b, open(b, filepath.Join(b.TempDir(), "sortie.db"), Options{synchronous: sync}))
		})
	}
}

func BenchmarkSaveParallel(b *testing.B) {
	storetest.BenchmarkSaveParallel(b, open(b, filepath.Join(b.TempDir(), "sortie.db"), Options{}))
}

func BenchmarkCreate(b *testing.B) {
	storetest.BenchmarkCreate(b, open(b, filepath.Join(b.TempDir(), "sortie.db"), Options{}))
}
