package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// URLEnv names the environment variable that, when set, points Main at a
// running server instead of starting one.
const URLEnv = "SORTIE_PGTEST_URL"

// startTimeout bounds how long the server may take to accept connections.
const startTimeout = 60 * time.Second

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
	srv, err := start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		return 1
	}
	serverURL = srv.url
	code := run()
	if err := srv.stop(); err != nil {
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

type server struct {
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the process's exit, once done is closed
	url  string
}

// bin finds a PostgreSQL program on PATH or in Debian's versioned
// directory.
func bin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob(filepath.Join("/usr/lib/postgresql", "*", "bin", name))
	if len(matches) > 0 {
		return matches[len(matches)-1], nil
	}
	return "", fmt.Errorf("%s not found on PATH or in /usr/lib/postgresql/*/bin: install PostgreSQL (Debian: apt-get install postgresql)", name)
}

// credential is who the server runs as: nil (this process's user) unless
// this process is root, which PostgreSQL refuses; then nobody.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("running as root and no user nobody to run PostgreSQL as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

func start() (*server, error) {
	initdb, err := bin("initdb")
	if err != nil {
		return nil, err
	}
	postgres, err := bin("postgres")
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tempRoot(cred), "sortie-pgtest-")
	if err != nil {
		return nil, err
	}
	srv := &server{dir: dir, done: make(chan struct{})}
	fail := func(err error) (*server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %v\n%s", err, out))
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	// A throwaway server: durability settings off, for speed (the store's
	// kill test kills the client, not the server).
	srv.cmd = exec.Command(postgres, "-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300")
	srv.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	srv.cmd.Dir = dir
	logFile, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		return fail(err)
	}
	defer logFile.Close()
	srv.cmd.Stdout, srv.cmd.Stderr = logFile, logFile
	if err := srv.cmd.Start(); err != nil {
		return fail(fmt.Errorf("postgres: %w", err))
	}
	go func() {
		srv.err = srv.cmd.Wait()
		close(srv.done)
	}()
	srv.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	if err := srv.waitReady(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
		srv.stop()
		return nil, fmt.Errorf("%w\n%s", err, log)
	}
	return srv, nil
}

// waitReady tries to connect until the server accepts, it exits, or the
// deadline passes.
func (s *server) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	retry := time.NewTicker(20 * time.Millisecond)
	defer retry.Stop()
	for {
		conn, err := pgx.Connect(ctx, s.url)
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-s.done:
			return fmt.Errorf("postgres exited before accepting connections: %v", s.err)
		case <-ctx.Done():
			return fmt.Errorf("postgres did not accept connections within %v: %v", startTimeout, err)
		case <-retry.C:
		}
	}
}

// stop shuts the server down (fast shutdown: SIGINT), killing it if it
// does not end in time, and removes its directory.
func (s *server) stop() error {
	var errs []error
	if s.cmd != nil && s.cmd.Process != nil {
		if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, err)
		}
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			errs = append(errs, errors.New("postgres did not stop within 30s; killed"))
			s.cmd.Process.Kill()
			<-s.done
		}
	}
	errs = append(errs, os.RemoveAll(s.dir))
	return errors.Join(errs...)
}

// tempRoot is where the server's directory goes: the usual temporary
// directory, unless the server runs as another user who could not reach
// it (TMPDIR under /root, say); then /tmp.
func tempRoot(cred *syscall.Credential) string {
	root := os.TempDir()
	if cred == nil {
		return root
	}
	for d := root; ; d = filepath.Dir(d) {
		info, err := os.Stat(d)
		if err != nil || info.Mode().Perm()&0o001 == 0 {
			return "/tmp"
		}
		if d == filepath.Dir(d) {
			return root
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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
	srv, err := start()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, srv.url)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE sortie"); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	u, err := url.Parse(srv.url)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/sortie"
	return u.String()
}
