package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

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

// rolloutGoal is issue 17's: a 3-step canary through server + agent in at
// most this share of kubectl's time.
const rolloutGoal = 0.6

// benchRollout times n rollouts of a new image each way, rotating which
// goes first, after one untimed warm-up each (Sortie's first deployment of
// an application goes straight to 100 %, and kubectl's creates the
// Deployment). Each way has its own namespace, and every rollout is checked
// in the cluster. It does so twice: on a quiet cluster (each rollout
// starts once the controllers are done with the previous one and the
// cluster has been idle for idle more, as a deployment usually finds it),
// then back to back (each rollout starts once the controllers' statuses
// have caught up, while the controller manager still pays for the previous
// rollout's requests under its client-side limit).
func benchRollout(ctx context.Context, out io.Writer, r *rig, n int, idle time.Duration) error {
	remote, err := newAgentSide(ctx, r)
	if err != nil {
		return err
	}
	local, err := newSortieSide(ctx, r)
	if err != nil {
		return err
	}
	defer local.close()
	kubectl, err := newKubectlSide(ctx, r, "bench-kubectl")
	if err != nil {
		return err
	}
	q, err := newQuiet(ctx, r.cluster.Client)
	if err != nil {
		return err
	}
	defer q.stop()
	fmt.Fprintf(out, "Rollout of a new image on a 4-replica Deployment, local cluster (real control plane, kwok pods), %d timed runs each way\n", n)
	fmt.Fprintf(out, "Sortie runs a 3-step canary without pauses (setWeight 25, 50, 100, then finalize); each run checked in the cluster (4 Ready replicas of the image, one Deployment)\n\n")
	conditions := []struct {
		title string
		idle  time.Duration
	}{
		{fmt.Sprintf("On a quiet cluster: each rollout starts %s after the controllers are done with the previous one", idle), idle},
		{"Back to back: each rollout starts as soon as the controllers' statuses have caught up with the previous one", 0},
	}
	round := 0
	for _, c := range conditions {
		remote.steps, local.steps = stepTimes{}, stepTimes{}
		sides := []side{remote, local, kubectl}
		took := make([][]time.Duration, len(sides))
		fmt.Fprintf(os.Stderr, "bench: %d rollouts each way, idle %s (%s)", n, c.idle, strings.Join(names(sides), "; "))
		for i := 0; i <= n; i++ {
			round++
			image := fmt.Sprintf("registry.example/web:%d", round)
			for j := range sides {
				k := (i + j) % len(sides)
				s := sides[k]
				if err := q.wait(ctx, c.idle); err != nil {
					return err
				}
				d, err := s.rollout(ctx, image)
				if err != nil {
					return fmt.Errorf("%s, %s: %w", s.name(), image, err)
				}
				if err := checkRolledOut(ctx, r.cluster, s.namespace(), image); err != nil {
					return fmt.Errorf("%s, %s: %w", s.name(), image, err)
				}
				if i > 0 {
					took[k] = append(took[k], d)
				}
			}
			fmt.Fprint(os.Stderr, ".")
		}
		fmt.Fprintln(os.Stderr)

		base := median(took[len(sides)-1])
		fmt.Fprintln(out, c.title)
		rows := [][]string{{"", "median", "mean", "min", "max", "median / kubectl"}}
		for k, s := range sides {
			d := took[k]
			rows = append(rows, []string{s.name(), ms(median(d)), ms(mean(d)), ms(slices.Min(d)), ms(slices.Max(d)), fmt.Sprintf("%.2f×", float64(median(d))/float64(base))})
		}
		table(out, rows)
		ratio := float64(median(took[0])) / float64(base)
		verdict := "met"
		if ratio > rolloutGoal {
			verdict = "NOT met"
		}
		fmt.Fprintf(out, "goal, server + agent ≤ %.1f× kubectl: %s (%.2f×)\n", rolloutGoal, verdict, ratio)
		fmt.Fprintf(out, "server + agent / in-process (medians): %.2f×\n", float64(median(took[0]))/float64(median(took[1])))
		fmt.Fprintf(out, "steps, median, server + agent: %s\n", remote.steps.String())
		fmt.Fprintf(out, "steps, median, in-process:     %s\n\n", local.steps.String())
	}
	return nil
}

func names(sides []side) []string {
	var out []string
	for _, s := range sides {
		out = append(out, s.name())
	}
	return out
}

// side is one way of rolling out an image.
type side interface {
	name() string
	namespace() string
	rollout(ctx context.Context, image string) (time.Duration, error)
}

// webRequest is the deployment file (named name, with text file) of the
// application of web.yml to ns, with image.
func webRequest(name, file, ns, image string) runner.StartRequest {
	return runner.StartRequest{
		FileName:  name,
		File:      strings.ReplaceAll(file, "NAMESPACE", ns),
		Manifests: map[string]string{"web.yml": strings.ReplaceAll(webManifest, "IMAGE", image)},
	}
}

// agentSide runs the canary as users do: `sortie server` and `sortie
// agent` as separate processes, the pipeline started over HTTP and
// followed on its event stream.
type agentSide struct {
	ns    string
	srv   *server
	steps stepTimes
	// timeline, when set, prints what the cluster showed of each rollout.
	timeline kubernetes.Interface
}

func newAgentSide(ctx context.Context, r *rig) (*agentSide, error) {
	ns, err := r.namespace(ctx, "bench-agent")
	if err != nil {
		return nil, err
	}
	s := &agentSide{ns: ns, srv: r.srv}
	if os.Getenv("SORTIE_BENCH_TIMELINE") != "" {
		s.timeline = r.cluster.Client
	}
	return s, nil
}

func (s *agentSide) name() string      { return "sortie server + agent (processes, HTTP)" }
func (s *agentSide) namespace() string { return s.ns }

func (s *agentSide) rollout(ctx context.Context, image string) (time.Duration, error) {
	var tl *timeline
	if s.timeline != nil {
		var err error
		if tl, err = startTimeline(ctx, s.timeline, s.ns); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	id, err := s.srv.start(ctx, webRequest("canary.yml", canaryFile, s.ns, image))
	if err != nil {
		return 0, err
	}
	p, _, err := s.srv.follow(ctx, id, 0, ended)
	took := time.Since(start)
	if err != nil {
		return 0, err
	}
	if p.Status != pipeline.StatusSucceeded {
		return 0, fmt.Errorf("pipeline %s ended %s: %s", id, p.Status, describe(p))
	}
	s.steps.add(p.Targets[0].Steps)
	if tl != nil {
		marks := map[time.Duration]string{took: "pipeline ended"}
		if tl.start.Before(start) {
			for _, st := range p.Targets[0].Steps {
				marks[st.StartedAt.Sub(tl.start)] = "step " + st.ID + " started"
				marks[st.EndedAt.Sub(tl.start)] = "step " + st.ID + " ended"
			}
		}
		fmt.Fprintf(os.Stderr, "\ntimeline of %s:\n", image)
		tl.print(os.Stderr, marks)
	}
	return took, nil
}

// sortieSide runs the canary through the runner, the SQLite store and the
// in-process executor, as `sortie dev` does, minus HTTP.
type sortieSide struct {
	ns    string
	store *sqlite.Store
	r     *runner.Runner
	steps stepTimes
}

func newSortieSide(ctx context.Context, r *rig) (*sortieSide, error) {
	ns, err := r.namespace(ctx, "bench-sortie")
	if err != nil {
		return nil, err
	}
	st, err := sqlite.Open(ctx, filepath.Join(r.dir, "sortie.db"), sqlite.Options{})
	if err != nil {
		return nil, err
	}
	kx, err := kube.New(r.cluster.Config, nil)
	if err != nil {
		st.Close()
		return nil, err
	}
	run := runner.New(runner.Options{Store: st, Executor: kubeexec.New(store.DefaultTenant, map[string]*kube.Executor{"local": kx}, nil)})
	return &sortieSide{ns: ns, store: st, r: run}, nil
}

func (s *sortieSide) name() string      { return "sortie in-process executor" }
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
	start := time.Now()
	res, err := s.r.Start(ctx, benchUser, store.DefaultTenant, webRequest("canary.yml", canaryFile, s.ns, image))
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
			s.steps.add(p.State.Targets[0].Steps)
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

// stepTimes records the time spent in each step of the canaries; the
// warm-up (a first deployment, with finalize only) is left out.
type stepTimes struct {
	took  map[string][]time.Duration
	order []string
}

func (s *stepTimes) add(steps []pipeline.StepState) {
	if len(steps) == 1 {
		return
	}
	if s.took == nil {
		s.took = map[string][]time.Duration{}
	}
	for _, st := range steps {
		if _, ok := s.took[st.ID]; !ok {
			s.order = append(s.order, st.ID)
		}
		s.took[st.ID] = append(s.took[st.ID], st.EndedAt.Sub(st.StartedAt))
	}
}

// String gives each step's median.
func (s *stepTimes) String() string {
	var parts []string
	for _, id := range s.order {
		parts = append(parts, fmt.Sprintf("%s %s", id, ms(median(s.took[id]))))
	}
	return strings.Join(parts, ", ")
}

// kubectlSide is the baseline: what a person or a CI job without Sortie
// runs, process start-up included.
type kubectlSide struct {
	ns, kubectl, kubeconfig, manifest string
}

func newKubectlSide(ctx context.Context, r *rig, ns string) (*kubectlSide, error) {
	ns, err := r.namespace(ctx, ns)
	if err != nil {
		return nil, err
	}
	return &kubectlSide{ns: ns, kubectl: r.bins.Path(localkube.Kubectl), kubeconfig: r.cluster.Kubeconfig, manifest: filepath.Join(r.dir, ns+".yml")}, nil
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

// checkRolledOut makes sure a timed rollout really happened, at the
// moment the tool said it was done: the Deployment web carries image, no
// other Deployment is left beside it, and its pods are 4 Ready ones of
// image and none else but those being deleted. The pods, not the
// Deployment's status: that status is the controllers' account of them,
// which may trail them (the waits between rollouts let it catch up).
func checkRolledOut(ctx context.Context, c *localkube.Cluster, ns, image string) error {
	ds, err := c.Client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	if len(ds.Items) != 1 {
		return fmt.Errorf("%d deployments in %s after the rollout, want 1", len(ds.Items), ns)
	}
	d := ds.Items[0]
	if got := d.Spec.Template.Spec.Containers[0].Image; got != image {
		return fmt.Errorf("deployment %s after the rollout: image %s, want %s", d.Name, got, image)
	}
	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	ready, other := 0, map[string]int{}
	for _, p := range pods.Items {
		switch {
		case p.DeletionTimestamp != nil:
		case p.Spec.Containers[0].Image == image && podReady(&p):
			ready++
		default:
			other[p.Spec.Containers[0].Image+" "+string(p.Status.Phase)]++
		}
	}
	if ready != 4 || len(other) > 0 {
		return fmt.Errorf("pods after the rollout: %d Ready of %s and %v beside them; want 4 and none", ready, image, other)
	}
	return nil
}
