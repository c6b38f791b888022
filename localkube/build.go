package localkube

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Binary names, as built into a Binaries directory.
const (
	Etcd              = "etcd"
	KubeAPIServer     = "kube-apiserver"
	ControllerManager = "kube-controller-manager"
	Scheduler         = "kube-scheduler"
	Kwok              = "kwok"
	Kubectl           = "kubectl"
)

// toolPackages are the main packages the tools module builds, in the order of
// the Binaries they produce.
var toolPackages = []string{
	"./etcd",
	"k8s.io/kubernetes/cmd/kube-apiserver",
	"k8s.io/kubernetes/cmd/kube-controller-manager",
	"k8s.io/kubernetes/cmd/kube-scheduler",
	"k8s.io/kubernetes/cmd/kubectl",
	"sigs.k8s.io/kwok/cmd/kwok",
}

// kwokStages are the kwok Stage sets (relative to the kwok module's
// kustomize/stage folder) that make nodes Ready and pods run fast.
var kwokStages = []string{"node/fast", "node/heartbeat", "pod/fast"}

// Binaries is a directory holding the built control-plane binaries and the
// kwok stage configuration.
type Binaries struct {
	Dir string
}

// Path returns the path of the named binary.
func (b Binaries) Path(name string) string { return filepath.Join(b.Dir, "bin", name) }

// StagesFile is the kwok configuration (Stage documents) for simulated nodes and pods.
func (b Binaries) StagesFile() string { return filepath.Join(b.Dir, "kwok-stages.yaml") }

// BuildOptions say where the tools module is and where to cache its output.
type BuildOptions struct {
	// ToolsDir is the tools module (tools/kube of the repository). Empty means
	// FindToolsDir from the working directory.
	ToolsDir string
	// CacheDir is the root of the cache. Empty means DefaultCacheDir.
	CacheDir string
	// Log receives the build's progress and the go tool's output. Nil discards it.
	Log io.Writer
}

// DefaultCacheDir is $XDG_CACHE_HOME/sortie (usually ~/.cache/sortie).
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find cache dir: %w", err)
	}
	return filepath.Join(d, "sortie"), nil
}

// FindToolsDir walks up from the working directory to the repository root that
// holds tools/kube/go.mod.
func FindToolsDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		cand := filepath.Join(dir, "tools", "kube")
		if _, err := os.Stat(filepath.Join(cand, "go.mod")); err == nil {
			return cand, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("localkube: tools/kube/go.mod not found above the working directory; run from the Sortie repository")
		}
		dir = parent
	}
}

// EnsureBinaries returns the cached binaries for the tools module, building
// them first if this version of the module has not been built yet. It is safe
// to call from several processes at once: one builds, the others wait for it.
func EnsureBinaries(ctx context.Context, opts BuildOptions) (Binaries, error) {
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	tools := opts.ToolsDir
	if tools == "" {
		var err error
		if tools, err = FindToolsDir(); err != nil {
			return Binaries{}, err
		}
	}
	cache := opts.CacheDir
	if cache == "" {
		var err error
		if cache, err = DefaultCacheDir(); err != nil {
			return Binaries{}, err
		}
	}
	key, err := toolsKey(tools)
	if err != nil {
		return Binaries{}, err
	}
	root := filepath.Join(cache, "kube")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return Binaries{}, err
	}
	bins := Binaries{Dir: filepath.Join(root, key)}
	if complete(bins) {
		return bins, nil
	}

	unlock, err := lockFile(ctx, filepath.Join(root, ".lock"))
	if err != nil {
		return Binaries{}, err
	}
	defer unlock()
	if complete(bins) { // another process built it while we waited
		return bins, nil
	}
	fmt.Fprintf(log, "localkube: building the Kubernetes control plane (%s) into %s; the first build takes several minutes\n", key, bins.Dir)
	tmp, err := os.MkdirTemp(root, ".build-")
	if err != nil {
		return Binaries{}, err
	}
	defer os.RemoveAll(tmp)
	if err := goBuild(ctx, tools, filepath.Join(tmp, "bin"), log); err != nil {
		return Binaries{}, err
	}
	if err := writeStages(ctx, tools, filepath.Join(tmp, "kwok-stages.yaml")); err != nil {
		return Binaries{}, err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), []byte(key+"\n"), 0o644); err != nil {
		return Binaries{}, err
	}
	_ = os.RemoveAll(bins.Dir) // a partial directory from an interrupted build
	if err := os.Rename(tmp, bins.Dir); err != nil {
		return Binaries{}, fmt.Errorf("localkube: install binaries: %w", err)
	}
	return bins, nil
}

func complete(b Binaries) bool {
	_, err := os.Stat(filepath.Join(b.Dir, ".complete"))
	return err == nil
}

// toolsKey names a build by the Kubernetes version and a hash of the tools
// module's files, so any change to the pins builds a new cache entry.
func toolsKey(tools string) (string, error) {
	return moduleKey(tools, "k8s.io/kubernetes", "go.mod", "go.sum", "tools.go", "etcd/main.go")
}

// moduleKey is the version the module in dir requires of pinned, a dash,
// and a hash of its files.
func moduleKey(dir, pinned string, files ...string) (string, error) {
	h := sha256.New()
	version := ""
	for _, name := range files {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "", fmt.Errorf("localkube: read tools module: %w", err)
		}
		h.Write([]byte(name))
		h.Write(b)
		if name == "go.mod" {
			sc := bufio.NewScanner(strings.NewReader(string(b)))
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if f = slices.DeleteFunc(f, func(s string) bool { return s == "require" }); len(f) == 2 && f[0] == pinned {
					version = f[1]
				}
			}
		}
	}
	if version == "" {
		return "", fmt.Errorf("localkube: %s/go.mod does not require %s", dir, pinned)
	}
	return version + "-" + hex.EncodeToString(h.Sum(nil))[:12], nil
}

func toolEnv() []string {
	env := os.Environ()
	out := env[:0:0]
	for _, e := range env {
		if strings.HasPrefix(e, "GOFLAGS=") || strings.HasPrefix(e, "GOWORK=") {
			continue
		}
		out = append(out, e)
	}
	return append(out, "GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
}

func goBuild(ctx context.Context, tools, out string, log io.Writer) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	args := append([]string{"build", "-trimpath", "-ldflags=-s -w", "-o", out + "/"}, toolPackages...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = tools
	cmd.Env = toolEnv()
	cmd.Stdout = log
	cmd.Stderr = log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("localkube: go build in %s: %w", tools, err)
	}
	return nil
}

// writeStages concatenates kwok's own Stage documents from its module source.
func writeStages(ctx context.Context, tools, dst string) error {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok")
	cmd.Dir = tools
	cmd.Env = toolEnv()
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("localkube: locate kwok module: %w", err)
	}
	kwokDir := strings.TrimSpace(string(out))
	var docs []string
	for _, set := range kwokStages {
		dir := filepath.Join(kwokDir, "kustomize", "stage", filepath.FromSlash(set))
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("localkube: kwok stages: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() || e.Name() == "kustomization.yaml" || !strings.HasSuffix(e.Name(), ".yaml") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return err
			}
			docs = append(docs, strings.TrimSpace(string(b)))
		}
	}
	if len(docs) == 0 {
		return errors.New("localkube: no kwok stages found")
	}
	return os.WriteFile(dst, []byte(strings.Join(docs, "\n---\n")+"\n"), 0o644)
}

// lockFile takes an exclusive flock on path, giving up when ctx ends.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- unix.Flock(int(f.Fd()), unix.LOCK_EX) }()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("localkube: lock %s: %w", path, err)
		}
		return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
	case <-ctx.Done():
		// Closing the file releases the lock if the goroutine gets it later.
		go func() { <-done; f.Close() }()
		return nil, ctx.Err()
	}
}
