package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sortie-cd/sortie/internal/pgserver"
)

// URLEnv names the environment variable that, when set, points Main at a
// running server instead of starting one.
const URLEnv = "SORTIE_PGTEST_URL"

var (
	// serverURL is the maintenance database's URL of the running server.
	serverURL string
	dbCounter atomic.Int64
)

// Main starts a server, runs the tests and stops the server; TestMain
// calls os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int { return Around(m.Run) }

// Around is Main for a test binary whose TestMain runs its tests through
// another harness too (kubetest.Run): it starts the server, calls run and
// stops the server, returning run's exit code.
func Around(run func() int) int {
	if u := os.Getenv(URLEnv); u != "" {
		serverURL = u
		return run()
	}
	srv, err := pgserver.Start(pgserver.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		return 1
	}
	serverURL = srv.URL
	code := run()
	if err := srv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// URL returns the URL of the server's maintenance database, for a child
// process to be given in URLEnv.
func URL(t testing.TB) string {
	t.Helper()
	if serverURL == "" {
		t.Fatal("pgtest: no server: call pgtest.Main from TestMain")
	}
	return serverURL
}

// Database creates a new, empty database on the server and returns its
// URL; it is dropped when the test ends (after the cleanups registered
// later, such as closing a store on it, have run).
func Database(t testing.TB) string {
	t.Helper()
	base := URL(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbCounter.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// UntilNotified waits until cond holds, checking it first and then again
// on each notification on channel in the database url names (a LISTEN of
// its own), and fails the test after a minute.
func UntilNotified(t testing.TB, url, channel, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		t.Fatalf("pgtest: listen: %v", err)
	}
	for !cond() {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			t.Fatalf("pgtest: waiting until %s: %v", what, err)
		}
	}
}

// Server starts a PostgreSQL server for this test alone (for a test binary
// whose TestMain is another harness's), stopped when the test ends, and
// returns the URL of a new database on it.
func Server(t testing.TB) string {
	t.Helper()
	srv, err := pgserver.Start(pgserver.Options{})
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := srv.CreateDatabase(ctx, "sortie")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}
