package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sortie-cd/sortie/localkube"
)

// rig is what the cluster benchmarks share: one local cluster, one
// `sortie server` process and the agent of account local, and a scratch
// directory.
type rig struct {
	cluster *localkube.Cluster
	bins    localkube.Binaries
	dir     string
	srv     *server
	agent   *proc
}

// benchCluster starts the cluster, the server and an agent once, and runs
// the cluster benchmarks that o selects on them.
func benchCluster(ctx context.Context, out io.Writer, bin string, o options) error {
	fmt.Fprintln(os.Stderr, "bench: starting a local Kubernetes cluster (the first run builds it, which takes several minutes)")
	bins, err := localkube.EnsureBinaries(ctx, localkube.BuildOptions{Log: os.Stderr})
	if err != nil {
		return err
	}
	cluster, err := localkube.Start(ctx, localkube.Options{Binaries: bins})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	dir, err := os.MkdirTemp("", "sortie-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Fprintln(os.Stderr, "bench: starting `sortie server` and `sortie agent` as processes")
	srv, err := startServer(ctx, bin, dir)
	if err != nil {
		return err
	}
	defer srv.close()
	agent, err := srv.startAgent(ctx, "local", cluster.Kubeconfig)
	if err != nil {
		return err
	}
	r := &rig{cluster: cluster, bins: bins, dir: dir, srv: srv, agent: agent}

	if o.wants("rollout") {
		if err := benchRollout(ctx, out, r, o.rollouts, o.idle); err != nil {
			return fmt.Errorf("rollout: %w", err)
		}
	}
	if o.wants("rollback") {
		if err := benchRollback(ctx, out, r, o.rollbacks); err != nil {
			return fmt.Errorf("rollback: %w", err)
		}
	}
	if o.wants("memory") {
		if err := benchMemory(ctx, out, r, o.workloads); err != nil {
			return fmt.Errorf("memory: %w", err)
		}
	}
	return nil
}

// namespace creates a namespace and waits for its default ServiceAccount.
func (r *rig) namespace(ctx context.Context, name string) (string, error) {
	_, err := r.cluster.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return name, localkube.WaitServiceAccount(wctx, r.cluster.Client, name)
}
