package localkube

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// EnsureHelm returns the path of the helm command of the tools/helm module
// (helm.sh/helm/v3, pinned there), building it first into
// <cache>/tools/helm-<version>-<hash>/helm if this version has not been
// built yet. Like EnsureBinaries it is safe to call from several processes
// at once: one builds under a flock, the others wait for it, and the result
// is moved into place whole.
func EnsureHelm(ctx context.Context, opts BuildOptions) (string, error) {
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	kubeTools := opts.ToolsDir
	if kubeTools == "" {
		var err error
		if kubeTools, err = FindToolsDir(); err != nil {
			return "", err
		}
	}
	tools := filepath.Join(filepath.Dir(kubeTools), "helm")
	cache := opts.CacheDir
	if cache == "" {
		var err error
		if cache, err = DefaultCacheDir(); err != nil {
			return "", err
		}
	}
	key, err := moduleKey(tools, "helm.sh/helm/v3", "go.mod", "go.sum", "tools.go")
	if err != nil {
		return "", err
	}
	root := filepath.Join(cache, "tools")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	dir := filepath.Join(root, "helm-"+key)
	bin := filepath.Join(dir, "helm")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	unlock, err := lockFile(ctx, filepath.Join(root, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(bin); err == nil { // built while we waited
		return bin, nil
	}
	fmt.Fprintf(log, "localkube: building helm (%s) into %s; the first build takes a few minutes\n", key, dir)
	tmp, err := os.MkdirTemp(root, ".build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(tmp, "helm"), "helm.sh/helm/v3/cmd/helm")
	cmd.Dir = tools
	cmd.Env = toolEnv()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("localkube: go build helm in %s: %w", tools, err)
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("localkube: install helm: %w", err)
	}
	return bin, nil
}
