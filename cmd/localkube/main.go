package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sortie-cd/sortie/localkube"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "localkube: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: localkube build|helm|up|down|run [--dir DIR]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	dir := fs.String("dir", "", "cluster state directory (default: <cache>/sortie/cluster)")
	readyFD := fs.Int("ready-fd", 0, "internal: file descriptor to report readiness on")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *dir == "" {
		cache, err := localkube.DefaultCacheDir()
		if err != nil {
			return err
		}
		*dir = filepath.Join(cache, "cluster")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "build":
		bins, err := localkube.EnsureBinaries(ctx, localkube.BuildOptions{Log: os.Stderr})
		if err != nil {
			return err
		}
		fmt.Println(filepath.Join(bins.Dir, "bin"))
		return nil
	case "helm":
		bin, err := localkube.EnsureHelm(ctx, localkube.BuildOptions{Log: os.Stderr})
		if err != nil {
			return err
		}
		fmt.Println(bin)
		return nil
	case "up":
		return up(ctx, *dir)
	case "down":
		return down(*dir)
	case "run":
		return runForeground(ctx, *dir, *readyFD)
	default:
		return fmt.Errorf("unknown command %q: want build, helm, up, down or run", args[0])
	}
}

func pidFile(dir string) string { return filepath.Join(dir, "localkube.pid") }

// running returns the pid of the cluster supervisor of dir, if it is alive.
func running(dir string) (int, bool) {
	b, err := os.ReadFile(pidFile(dir))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return 0, false
	}
	// The pid may have been reused: check that it is one of ours.
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return pid, strings.Contains(string(cmdline), "localkube")
}

// up starts the supervisor in the background and returns when the cluster is
// ready; if a cluster already runs in dir it only prints its kubeconfig.
func up(ctx context.Context, dir string) error {
	if _, ok := running(dir); ok {
		fmt.Printf("KUBECONFIG=%s\n", filepath.Join(dir, "kubeconfig"))
		return nil
	}
	// Build in the foreground so the user sees progress on the first run.
	if _, err := localkube.EnsureBinaries(ctx, localkube.BuildOptions{Log: os.Stderr}); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil { // state of a cluster that died
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "localkube.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(self, "run", "--dir", dir, "--ready-fd", "3")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlive this shell
	if err := cmd.Start(); err != nil {
		return err
	}
	w.Close()
	// The supervisor writes one line when ready ("ok") or failed (the reason);
	// EOF without a line means it died.
	line, _ := bufio.NewReader(r).ReadString('\n')
	r.Close()
	_ = cmd.Process.Release()
	line = strings.TrimSpace(line)
	if line != "ok" {
		if line == "" {
			line = "the cluster supervisor exited; see " + filepath.Join(dir, "localkube.log")
		}
		return errors.New(line)
	}
	fmt.Printf("KUBECONFIG=%s\n", filepath.Join(dir, "kubeconfig"))
	return nil
}

func runForeground(ctx context.Context, dir string, readyFD int) error {
	var ready io.WriteCloser = nopCloser{io.Discard}
	if readyFD > 0 {
		ready = os.NewFile(uintptr(readyFD), "ready")
	}
	defer ready.Close()
	fail := func(err error) error {
		fmt.Fprintf(ready, "%s\n", strings.ReplaceAll(err.Error(), "\n", " | "))
		return err
	}
	bins, err := localkube.EnsureBinaries(ctx, localkube.BuildOptions{Log: os.Stderr})
	if err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	c, err := localkube.Start(ctx, localkube.Options{Binaries: bins, Dir: dir})
	if err != nil {
		return fail(err)
	}
	defer c.Stop()
	if err := os.WriteFile(pidFile(dir), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return fail(err)
	}
	defer os.Remove(pidFile(dir))
	fmt.Fprintf(os.Stderr, "localkube: cluster ready, KUBECONFIG=%s\n", c.Kubeconfig)
	fmt.Fprintln(ready, "ok")
	ready.Close()
	select {
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "localkube: stopping")
		return nil
	case <-c.Done():
		return fmt.Errorf("cluster component exited: %v\n%s", c.Err(), c.LogTail(20))
	}
}

// down stops the supervisor of dir and waits until it has exited (it stops
// the components first).
func down(dir string) error {
	pid, ok := running(dir)
	if !ok {
		fmt.Fprintln(os.Stderr, "localkube: no cluster running in", dir)
		return nil
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("watch pid %d: %w", pid, err)
	}
	defer unix.Close(fd)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return err
	}
	// A pidfd becomes readable when the process exits.
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := unix.Poll(fds, int(time.Until(deadline).Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return fmt.Errorf("cluster supervisor %d did not stop in 30s; killed it", pid)
		}
		fmt.Fprintln(os.Stderr, "localkube: cluster stopped")
		return nil
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
