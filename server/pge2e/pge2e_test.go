package pge2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/secrets"
	"github.com/sortie-cd/sortie/server"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/postgres"
	"github.com/sortie-cd/sortie/store/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Around(func() int { return kubetest.Run(m) })) }

// TestServerOnPostgres: with DatabaseURL the server keeps its data in
// PostgreSQL (the bootstrap credential is there, no sortie.db is made),
// and a second server on the same database runs beside the first.
func TestServerOnPostgres(t *testing.T) {
	url := pgtest.Database(t)
	dir := t.TempDir()
	// Replicas share one master key (SORTIE_MASTER_KEY in production).
	master, err := secrets.ParseKey(secrets.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	srv := clienttest.Start(t, server.Config{DataDir: dir, DatabaseURL: url, MasterKey: master})
	if _, err := os.Stat(filepath.Join(dir, "sortie.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("sortie.db in the data directory of a server on PostgreSQL: %v", err)
	}
	st, err := postgres.Open(t.Context(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.GetCredential(t.Context(), srv.Credentials.ClientID)
	if err != nil {
		t.Fatalf("the bootstrap credential is not in PostgreSQL: %v", err)
	}
	if c.Tenant != store.DefaultTenant {
		t.Errorf("bootstrap credential in tenant %q", c.Tenant)
	}

	// A second server on the database starts beside the first, as a
	// replica.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), DatabaseURL: url, Replica: "second", MasterKey: master,
			Ready: func(string, string) { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("a second server on the database: %v, want it to run as a replica", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("the second server's shutdown: %v", err)
	}
}

// TestServerDatabaseUnreachable: a database URL nobody answers is an error
// at start, not a fall-back to SQLite.
func TestServerDatabaseUnreachable(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err := server.Run(ctx, server.Config{Addr: "127.0.0.1:0", DataDir: dir,
		DatabaseURL: "postgres://sortie:pw-not-shown@127.0.0.1:1/sortie?sslmode=disable&connect_timeout=5"})
	if err == nil {
		t.Fatal("the server started without its database")
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1/sortie") || strings.Contains(err.Error(), "pw-not-shown") {
		t.Errorf("error %q: want the server named, not the password", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sortie.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the server fell back to SQLite: %v", err)
	}
}
