package proctest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/auth"
)

var build struct {
	once sync.Once
	bin  string
	err  error
}

// Sortie builds ./cmd/sortie once for the test binary and returns its path.
func Sortie(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "sortie-e2e-")
		if err != nil {
			build.err = err
			return
		}
		build.bin = filepath.Join(dir, "sortie")
		out, err := exec.Command("go", "build", "-o", build.bin, "github.com/sortie-cd/sortie/cmd/sortie").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

// Proc is a child process whose log (standard error) the test reads line
// by line.
type Proc struct {
	t     testing.TB
	name  string
	Cmd   *exec.Cmd
	mu    sync.Mutex
	log   bytes.Buffer
	lines chan string
	done  chan struct{}
}

// Start runs the sortie binary with args, its environment this process's
// plus env, as a child that dies with the test process (Pdeathsig). It is
// stopped (SIGTERM) when the test ends, and its log printed if the test
// failed.
func Start(t testing.TB, name string, env []string, args ...string) *Proc {
	t.Helper()
	return StartWrapped(t, name, nil, env, args...)
}

// StartWrapped is Start with the sortie binary run by wrapper: the command
// is wrapper, then the binary's path, then args. A shell wrapper such as
// sh -c 'ulimit -f 0; exec "$0" "$@"' changes the process's limits before
// it starts.
func StartWrapped(t testing.TB, name string, wrapper, env []string, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, name: name, lines: make(chan string, 1024), done: make(chan struct{})}
	argv := append(append(slices.Clone(wrapper), Sortie(t)), args...)
	p.Cmd = exec.Command(argv[0], argv[1:]...)
	p.Cmd.Env = append(os.Environ(), env...)
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := p.Cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- line:
			default:
			}
		}
		p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("%s log:\n%s", name, p.Output())
		}
	})
	return p
}

// Output is the log so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// Stop signals the process and waits for it (SIGKILL after a grace).
func (p *Proc) Stop(sig syscall.Signal) {
	if p.Cmd.Process == nil {
		return
	}
	p.Cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.Cmd.Process.Kill()
		<-p.done
	}
}

// Wait waits (two minutes at most) for the process to exit by itself and
// returns its state.
func (p *Proc) Wait() *os.ProcessState {
	p.t.Helper()
	select {
	case <-p.done:
		return p.Cmd.ProcessState
	case <-time.After(2 * time.Minute):
		p.t.Fatalf("%s did not exit within two minutes", p.name)
		return nil
	}
}

// Drain forgets the log lines not read yet.
func (p *Proc) Drain() {
	for {
		select {
		case <-p.lines:
		default:
			return
		}
	}
}

// WaitLine waits for a log line matching re and returns its submatches.
func (p *Proc) WaitLine(re *regexp.Regexp) []string {
	p.t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case line := <-p.lines:
			if m := re.FindStringSubmatch(line); m != nil {
				return m
			}
		case <-p.done:
			p.t.Fatalf("%s exited before logging %s:\n%s", p.name, re, p.Output())
		case <-timeout:
			p.t.Fatalf("%s did not log %s:\n%s", p.name, re, p.Output())
		}
	}
}

// ServerArgs is the command line of StartServerIn: `sortie server` on a
// free loopback port with data directory dir, then args.
func ServerArgs(dir string, args ...string) []string {
	return append([]string{"server", "--addr", "127.0.0.1:0", "--data-dir", dir}, args...)
}

var listening = regexp.MustCompile(`msg="sortie server listening" addr=(\S+)`)

// Server is a `sortie server` process with a data directory of its own.
type Server struct {
	*Proc
	// Addr is where it listens (a loopback port) and Data its data
	// directory; Admin is the bootstrap admin credential it wrote there.
	Addr, Data string
	Admin      auth.CredentialsFile
}

// StartServer runs `sortie server` on a free loopback port with a new data
// directory and args after them, its environment this process's plus env,
// and waits until it listens.
func StartServer(t testing.TB, env []string, args ...string) *Server {
	t.Helper()
	return StartServerIn(t, t.TempDir(), env, args...)
}

// StartServerIn is StartServer on data directory dir, new or one an
// earlier server left: a restart.
func StartServerIn(t testing.TB, dir string, env []string, args ...string) *Server {
	t.Helper()
	s := &Server{Data: dir}
	s.Proc = Start(t, "server", env, ServerArgs(dir, args...)...)
	s.Addr = s.WaitLine(listening)[1]
	b, err := os.ReadFile(filepath.Join(s.Data, auth.AdminCredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s.Admin); err != nil {
		t.Fatal(err)
	}
	return s
}

// WaitAny waits for a log line matching re from any of procs and returns
// the index of the one that logged it, with the line's submatches.
func WaitAny(t testing.TB, re *regexp.Regexp, procs ...*Proc) (int, []string) {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	cases := make([]reflect.SelectCase, 0, len(procs)+1)
	for _, p := range procs {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(p.lines)})
	}
	cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timeout)})
	for {
		i, v, _ := reflect.Select(cases)
		if i == len(procs) {
			t.Fatalf("timed out waiting for a log line matching %s from any of %d processes", re, len(procs))
		}
		if m := re.FindStringSubmatch(v.String()); m != nil {
			return i, m
		}
	}
}
