package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/kubeexec"
	"github.com/sortie-cd/sortie/localkube"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/sqlite"
)

//go:embed testdata/canary.yml
var canaryFile string

//go:embed testdata/web.yml
var webManifest string

var benchUser = pipeline.Principal{Name: "bench", Roles: []string{pipeline.RoleDeployer}}

// rolloutLimit bounds one rollout, either side.
const rolloutLimit = 5 * time.Minute

// benchRollout times n rollouts of a new image each way, alternating which
// goes first, after one untimed warm-up each (Sortie's first deployment of
// an application goes straight to 100 %, and kubectl's creates the
// Deployment).
func benchRollout(ctx context.Context, out io.Writer, n int) error {
	if n < 1 {
		return errors.New("-rollouts must be at least 1")
	}
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

	sortie, err := newSortieSide(ctx, cluster, dir)
	if err != nil {
		return err
	}
	defer sortie.close()
	kubectl, err := newKubectlSide(ctx, cluster, bins, dir)
	if err != nil {
		return err
	}
	sides := []side{sortie, kubectl}
	took := make([][]time.Duration, len(sides))
	fmt.Fprintf(os.Stderr, "bench: %d rollouts each way", n)
	for i := 0; i <= n; i++ {
		image := fmt.Sprintf("registry.example/web:%d", i+1)
		for j := range sides {
			s := sides[(i+j)%len(sides)]
			d, err := s.rollout(ctx, image)
			if err != nil {
				return fmt.Errorf("%s, %s: %w", s.name(), image, err)
			}
			if err := checkRolledOut(ctx, cluster, s.namespace(), image); err != nil {
				return fmt.Errorf("%s, %s: %w", s.name(), image, err)
			}
			if i > 0 {
				k := (i + j) % len(sides)
				took[k] = append(took[k], d)
			}
		}
		fmt.Fprint(os.Stderr, ".")
	}
	fmt.Fprintln(os.Stderr)

	fmt.Fprintf(out, "Rollout of a new image on a 4-replica Deployment, local cluster (real control plane, kwok pods), %d timed runs each\n\n", n)
	rows := [][]string{{"", "median", "mean", "min", "max"}}
	for k, s := range sides {
		d := took[k]
		rows = append(rows, []string{s.name(), ms(median(d)), ms(mean(d)), ms(slices.Min(d)), ms(slices.Max(d))})
	}
	table(out, rows)
	fmt.Fprintf(out, "\nratio sortie / kubectl (medians): %.2f×\n", float64(median(took[0]))/float64(median(took[1])))
	fmt.Fprintf(out, "sortie's steps, mean: %s\n\n", sortie.stepSummary())
	return nil
}

// side is one way of rolling out an image.
type side interface {
	name() string
	namespace() string
	rollout(ctx context.Context, image string) (time.Duration, error)
}

// sortieSide runs the canary through the runner, the SQLite store and the
// in-process executor, as `sortie dev` does, minus HTTP.
type sortieSide struct {
	ns    string
	store *sqlite.Store
	r     *runner.Runner
	// steps sums the time spent in each step over the timed runs.
	steps map[string]time.Duration
	order []string
	runs  int
}

func newSortieSide(ctx context.Context, c *localkube.Cluster, dir string) (*sortieSide, error) {
	ns, err := namespace(ctx, c, "bench-sortie")
	if err != nil {
		return nil, err
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "sortie.db"), sqlite.Options{})
	if err != nil {
		return nil, err
	}
	kx, err := kube.New(c.Config, nil)
	if err != nil {
		st.Close()
		return nil, err
	}
	r := runner.New(runner.Options{Store: st, Executor: kubeexec.New(store.DefaultTenant, map[string]*kube.Executor{"local": kx}, nil)})
	return &sortieSide{ns: ns, store: st, r: r, steps: map[string]time.Duration{}}, nil
}

func (s *sortieSide) name() string      { return "sortie 3-step canary" }
func (s *sortieSide) namespace() string { return s.ns }

func (s *sortieSide) close() {
	s.r.Close()
	s.store.Close()
}

// rollout starts the pipeline and waits, on the runner's event stream,
// until it ends.
func (s *sortieSide) rollout(ctx context.Context, image string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, rolloutLimit)
	defer cancel()
	events := s.r.Subscribe(ctx, store.DefaultTenant)
	req := runner.StartRequest{
		FileName:  "canary.yml",
		File:      strings.ReplaceAll(canaryFile, "NAMESPACE", s.ns),
		Manifests: map[string]string{"web.yml": strings.ReplaceAll(webManifest, "IMAGE", image)},
	}
	start := time.Now()
	res, err := s.r.Start(ctx, benchUser, store.DefaultTenant, req)
	if err != nil {
		return 0, err
	}
	for {
		p, err := s.r.Get(ctx, store.DefaultTenant, res.PipelineID)
		if err != nil {
			return 0, err
		}
		if p.Status.Terminal() {
			took := time.Since(start)
			if p.Status != pipeline.StatusSucceeded {
				return 0, fmt.Errorf("pipeline %s ended %s: %s", p.ID, p.Status, p.State.Message)
			}
			s.record(p)
			return took, nil
		}
		select {
		case _, ok := <-events:
			if !ok { // dropped for falling behind: subscribe again
				events = s.r.Subscribe(ctx, store.DefaultTenant)
			}
		case <-ctx.Done():
			return 0, fmt.Errorf("pipeline %s did not end: %w", res.PipelineID, ctx.Err())
		}
	}
}

// record adds the pipeline's step durations to the summary; the warm-up
// (a first deployment, with finalize only) is left out.
func (s *sortieSide) record(p *store.Pipeline) {
	t := p.State.Targets[0]
	if len(t.Steps) == 1 {
		return
	}
	s.runs++
	for _, st := range t.Steps {
		if _, ok := s.steps[st.ID]; !ok {
			s.order = append(s.order, st.ID)
		}
		s.steps[st.ID] += st.EndedAt.Sub(st.StartedAt)
	}
}

func (s *sortieSide) stepSummary() string {
	var parts []string
	for _, id := range s.order {
		parts = append(parts, fmt.Sprintf("%s %s", id, ms(s.steps[id]/time.Duration(s.runs))))
	}
	return strings.Join(parts, ", ")
}

// kubectlSide is the baseline: what a person or a CI job without Sortie
// runs, process start-up included.
type kubectlSide struct {
	ns, kubectl, kubeconfig, manifest string
}

func newKubectlSide(ctx context.Context, c *localkube.Cluster, bins localkube.Binaries, dir string) (*kubectlSide, error) {
	ns, err := namespace(ctx, c, "bench-kubectl")
	if err != nil {
		return nil, err
	}
	return &kubectlSide{ns: ns, kubectl: bins.Path(localkube.Kubectl), kubeconfig: c.Kubeconfig, manifest: filepath.Join(dir, "web.yml")}, nil
}

func (k *kubectlSide) name() string      { return "kubectl apply + rollout status" }
func (k *kubectlSide) namespace() string { return k.ns }

func (k *kubectlSide) rollout(ctx context.Context, image string) (time.Duration, error) {
	if err := os.WriteFile(k.manifest, []byte(strings.ReplaceAll(webManifest, "IMAGE", image)), 0o600); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := k.run(ctx, "apply", "-f", k.manifest); err != nil {
		return 0, err
	}
	if err := k.run(ctx, "rollout", "status", "deployment/web", "--timeout="+rolloutLimit.String()); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func (k *kubectlSide) run(ctx context.Context, args ...string) error {
	args = append([]string{"--kubeconfig", k.kubeconfig, "--namespace", k.ns}, args...)
	out, err := exec.CommandContext(ctx, k.kubectl, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func namespace(ctx context.Context, c *localkube.Cluster, name string) (string, error) {
	_, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return name, localkube.WaitServiceAccount(wctx, c.Client, name)
}

// checkRolledOut makes sure a timed rollout really happened: the
// Deployment web runs image on all 4 replicas, and no other Deployment is
// left beside it.
func checkRolledOut(ctx context.Context, c *localkube.Cluster, ns, image string) error {
	ds, err := c.Client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	if len(ds.Items) != 1 {
		return fmt.Errorf("%d deployments in %s after the rollout, want 1", len(ds.Items), ns)
	}
	d := ds.Items[0]
	if got := d.Spec.Template.Spec.Containers[0].Image; got != image || d.Status.ReadyReplicas != 4 || d.Status.UpdatedReplicas != 4 {
		return fmt.Errorf("deployment %s after the rollout: image %s, %d updated and %d ready replicas; want %s, 4 and 4", d.Name, got, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, image)
	}
	return nil
}
