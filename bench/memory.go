package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
)

//go:embed testdata/fleet.yml
var fleetFile string

const (
	// fleetReplicas is each Deployment's size in the memory benchmark.
	fleetReplicas = 2
	// idleSettle is how long an agent idles before its idle memory is read.
	idleSettle = 5 * time.Second
	// sampleEvery is how often VmRSS is read during the deployment.
	sampleEvery = 10 * time.Millisecond
)

// benchMemory measures the resident memory of a fresh `sortie agent`
// process: idle after connecting, then during and after a deployment of
// one target whose manifests hold workloads Deployments (a first
// deployment, then a 3-step canary of a new image).
func benchMemory(ctx context.Context, out io.Writer, r *rig, workloads int) error {
	fmt.Fprintf(os.Stderr, "bench: agent memory, %d Deployments\n", workloads)
	agent, err := r.srv.startAgent(ctx, "fleet", r.cluster.Kubeconfig)
	if err != nil {
		return err
	}
	ns, err := r.namespace(ctx, "bench-fleet")
	if err != nil {
		return err
	}
	if err := sleep(ctx, idleSettle); err != nil {
		return err
	}
	idle, err := readMemory(agent.pid())
	if err != nil {
		return err
	}

	s := sampleMemory(agent.pid(), sampleEvery)
	first, _, err := deployFleet(ctx, r, ns, "registry.example/fleet:1", workloads)
	if err != nil {
		s.stop()
		return fmt.Errorf("first deployment: %w", err)
	}
	canary, steps, err := deployFleet(ctx, r, ns, "registry.example/fleet:2", workloads)
	peak, samples, serr := s.stop()
	if err != nil {
		return fmt.Errorf("canary: %w", err)
	}
	if serr != nil {
		return serr
	}
	after, err := readMemory(agent.pid())
	if err != nil {
		return err
	}
	if err := sleep(ctx, 10*time.Second); err != nil {
		return err
	}
	later, err := readMemory(agent.pid())
	if err != nil {
		return err
	}
	local, err := readMemory(r.agent.pid())
	if err != nil {
		return err
	}

	// For scale, not memory: the same change of all the Deployments by
	// kubectl, on the same cluster.
	k, err := newKubectlSide(ctx, r, "bench-fleet-kubectl")
	if err != nil {
		return err
	}
	if _, err := kubectlFleet(ctx, k, "registry.example/fleet:1", workloads); err != nil {
		return err
	}
	kubectl, err := kubectlFleet(ctx, k, "registry.example/fleet:2", workloads)
	if err != nil {
		return err
	}
	if err := checkFleet(ctx, r, k.ns, "registry.example/fleet:2", workloads); err != nil {
		return err
	}

	fmt.Fprintf(out, "Agent memory: resident set of the `sortie agent` process (VmRSS and VmHWM, the kernel's peak since it started, from /proc/PID/status)\n")
	fmt.Fprintf(out, "A fresh agent deploys one target whose manifests hold %d Deployments of %d replicas: a first deployment (%s), then a 3-step canary of a new image (%s), each checked in the cluster.\n",
		workloads, fleetReplicas, ms(first), ms(canary))
	fmt.Fprintf(out, "The agent watches no workload between commands: it watches a Deployment only while a command runs on it (here all %d at once, in each step),\n", workloads)
	fmt.Fprintf(out, "so \"%d watched workloads\" exist only during a deployment, and the figure for them is the peak during this one.\n\n", workloads)
	table(out, [][]string{
		{"", "VmRSS", "VmHWM"},
		{fmt.Sprintf("idle, %s after connecting", idleSettle), mib(idle.rss), mib(idle.hwm)},
		{fmt.Sprintf("peak during the %d-Deployment deployment (VmRSS read every %s, %d reads)", workloads, sampleEvery, samples), mib(peak), ""},
		{"right after it", mib(after.rss), mib(after.hwm)},
		{"10 s later, idle", mib(later.rss), mib(later.hwm)},
		{"for comparison: the agent of the rollout and rollback runs, now", mib(local.rss), mib(local.hwm)},
	})
	fmt.Fprintf(out, "\nthe canary's steps: %s\n", steps)
	fmt.Fprintf(out, "for scale, the same image change by kubectl apply + rollout status of the %d Deployments: %s (the canary / this: %.2f×)\n", workloads, ms(kubectl), float64(canary)/float64(kubectl))
	fmt.Fprintf(out, "peak (VmHWM after the deployment) / idle VmRSS: %.2f×\n", float64(after.hwm)/float64(idle.rss))
	if n := agent.count("client-side throttling"); n > 0 {
		fmt.Fprintf(out, "the agent's Kubernetes client logged %d waits for client-side throttling during the deployment\n", n)
	}
	fmt.Fprintln(out)
	return nil
}

// fleetManifest is workloads Deployments running image.
func fleetManifest(image string, workloads int) string {
	var m strings.Builder
	for i := range workloads {
		if i > 0 {
			m.WriteString("---\n")
		}
		fmt.Fprintf(&m, `apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: %[2]d
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      containers:
        - name: app
          image: %[3]s
`, fmt.Sprintf("w%02d", i), fleetReplicas, image)
	}
	return m.String()
}

// deployFleet deploys workloads Deployments running image through the
// agent of account fleet, and checks them in the cluster. It returns the
// time taken and the steps' times.
func deployFleet(ctx context.Context, r *rig, ns, image string, workloads int) (time.Duration, string, error) {
	req := runner.StartRequest{
		FileName:  "fleet.yml",
		File:      strings.ReplaceAll(fleetFile, "NAMESPACE", ns),
		Manifests: map[string]string{"workloads.yml": fleetManifest(image, workloads)},
	}
	start := time.Now()
	id, err := r.srv.start(ctx, req)
	if err != nil {
		return 0, "", err
	}
	p, _, err := r.srv.follow(ctx, id, 0, ended)
	took := time.Since(start)
	if err != nil {
		return 0, "", err
	}
	if p.Status != pipeline.StatusSucceeded {
		return 0, "", fmt.Errorf("pipeline %s ended %s: %s", id, p.Status, describe(p))
	}
	var steps []string
	for _, st := range p.Targets[0].Steps {
		steps = append(steps, fmt.Sprintf("%s %s", st.ID, ms(st.EndedAt.Sub(st.StartedAt))))
	}
	return took, strings.Join(steps, ", "), checkFleet(ctx, r, ns, image, workloads)
}

// kubectlFleet is the baseline of the same change: kubectl apply of the
// Deployments running image, then kubectl rollout status of each.
func kubectlFleet(ctx context.Context, k *kubectlSide, image string, workloads int) (time.Duration, error) {
	if err := os.WriteFile(k.manifest, []byte(fleetManifest(image, workloads)), 0o600); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := k.run(ctx, "apply", "-f", k.manifest); err != nil {
		return 0, err
	}
	if err := k.run(ctx, "rollout", "status", "-f", k.manifest, "--timeout="+rolloutLimit.String()); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// checkFleet makes sure ns holds exactly the workloads Deployments, all
// running image on every replica.
func checkFleet(ctx context.Context, r *rig, ns, image string, workloads int) error {
	ds, err := r.cluster.Client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	if len(ds.Items) != workloads {
		return fmt.Errorf("%d deployments in %s, want %d", len(ds.Items), ns, workloads)
	}
	for _, d := range ds.Items {
		if got := d.Spec.Template.Spec.Containers[0].Image; got != image || d.Status.ReadyReplicas != fleetReplicas || d.Status.UpdatedReplicas != fleetReplicas || strings.Contains(d.Name, "-sortie-") {
			return fmt.Errorf("deployment %s/%s: image %s, %d updated and %d ready replicas; want %s and %d", ns, d.Name, got, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, image, fleetReplicas)
		}
	}
	return nil
}

// sampler reads a process's VmRSS periodically and keeps the largest.
type sampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	peak int64
	n    int
	err  error
}

func sampleMemory(pid int, every time.Duration) *sampler {
	s := &sampler{done: make(chan struct{})}
	s.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			m, err := readMemory(pid)
			if err != nil {
				s.err = err
				return
			}
			s.peak = max(s.peak, m.rss)
			s.n++
			select {
			case <-s.done:
				return
			case <-t.C:
			}
		}
	})
	return s
}

// stop ends the sampling and returns the largest VmRSS read and how many
// reads there were.
func (s *sampler) stop() (int64, int, error) {
	close(s.done)
	s.wg.Wait()
	return s.peak, s.n, s.err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
