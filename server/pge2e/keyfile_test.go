package pge2e

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/sortie-cd/sortie/internal/proctest"
	"github.com/sortie-cd/sortie/secrets"
	"github.com/sortie-cd/sortie/store/postgres"
	"github.com/sortie-cd/sortie/store/postgres/pgtest"
)

// TestMasterKeyKeptWhenTheStartCannotWriteIt reproduces issue 16 item 13
// at a real `sortie server` process's start: its data in PostgreSQL (so
// the process writes no database file of its own), secrets in two
// tenants, and a master key file an interrupted rotation left (the new key
// first, the old one after). The server is started under `ulimit -f 0`: it
// re-wraps every data key with the new key in the database, then cannot
// rewrite the file down to the new key alone. It must exit saying so and
// leave master.key as it was; the next, normal start finishes the rotation
// and every secret decrypts. Before the fix an empty file took its place
// and every secret was lost.
func TestMasterKeyKeptWhenTheStartCannotWriteIt(t *testing.T) {
	url := pgtest.Database(t)
	dir := t.TempDir()
	args := []string{"--database-url", url}
	// A first start makes the signing keys, the bootstrap credential, the
	// preview key and master.key: the start under the limit writes none.
	proctest.StartServerIn(t, dir, nil, args...).Stop(syscall.SIGTERM)

	ctx := t.Context()
	keyPath := filepath.Join(dir, secrets.KeyFile)
	values := map[[2]string]string{{"main", "hook"}: "main-hook-value", {"main", "api"}: "main-api-value", {"acme", "hook"}: "acme-hook-value"}
	st, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	sec, err := secrets.New(ctx, secrets.Options{Store: st, KeyPath: keyPath})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range values {
		if _, err := sec.Put(ctx, k[0], k[1], v, nil); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	// The rotation was interrupted: a new key before the old one.
	old, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	header, rest, _ := strings.Cut(string(old), "\n")
	interrupted := []byte(header + "\n" + secrets.NewKey() + "\n" + rest)
	if err := os.WriteFile(keyPath, interrupted, 0o600); err != nil {
		t.Fatal(err)
	}

	limited := proctest.StartWrapped(t, "server under ulimit -f 0", []string{"sh", "-c", `ulimit -f 0 && exec "$0" "$@"`}, nil, proctest.ServerArgs(dir, args...)...)
	if state := limited.Wait(); state.Success() {
		t.Fatalf("the server started with no room to write its master key file:\n%s", limited.Output())
	}
	if !regexp.MustCompile(`master key file`).MatchString(limited.Output()) {
		t.Errorf("the refusal does not name the master key file:\n%s", limited.Output())
	}
	if now, err := os.ReadFile(keyPath); err != nil || !bytes.Equal(now, interrupted) {
		t.Fatalf("master.key after the failed start: %q, %v; want it unchanged:\n%q", now, err, interrupted)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "."+secrets.KeyFile+".*")); len(left) > 0 {
		t.Errorf("temporary files left beside master.key: %v", left)
	}

	proctest.StartServerIn(t, dir, nil, args...).Stop(syscall.SIGTERM)
	now, _ := os.ReadFile(keyPath)
	if lines := strings.Count(string(now), "\n"); lines != 2 || !bytes.Contains(interrupted, now[len(header)+1:]) {
		t.Errorf("after a normal start master.key is %q, want the header and the new key only", now)
	}
	st, err = postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sec, err = secrets.New(ctx, secrets.Options{Store: st, KeyPath: keyPath})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range values {
		if got, _, err := sec.Secret(ctx, k[0], k[1]); err != nil || got != want {
			t.Errorf("secret %s of tenant %s after the restarts: %q, %v; want %q", k[1], k[0], got, err, want)
		}
	}
}
