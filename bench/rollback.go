package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/pipeline"
)

//go:embed testdata/rollback.yml
var rollbackFile string

// stableImage is the version every rollback goes back to.
const stableImage = "registry.example/web:stable"

// benchRollback times n rollbacks through the server and the agent: each
// canary of a new image stops at its 50 % pause (2 old and 2 new pods),
// and the time runs from the rollback request (POST
// /api/v1/pipelines/{id}/rollback) until a pod watch on the namespace sees
// the old version fully Ready again: 4 Ready pods of the old image, no pod
// of the new one left. Beside it, in the same run and watched the same
// way: `kubectl rollout undo` of a finished rollout.
func benchRollback(ctx context.Context, out io.Writer, r *rig, n int) error {
	ns, err := r.namespace(ctx, "bench-rollback")
	if err != nil {
		return err
	}
	undo, err := newKubectlSide(ctx, r, "bench-undo")
	if err != nil {
		return err
	}
	watches := map[string]*podWatch{}
	for _, ns := range []string{ns, undo.ns} {
		w, err := watchPods(ctx, r.cluster.Client, ns)
		if err != nil {
			return err
		}
		defer w.stop()
		watches[ns] = w
	}

	// Untimed: the stable version's first deployment, each way.
	id, err := r.srv.start(ctx, webRequest("rollback.yml", rollbackFile, ns, stableImage))
	if err != nil {
		return err
	}
	if p, _, err := r.srv.follow(ctx, id, 0, ended); err != nil {
		return err
	} else if p.Status != pipeline.StatusSucceeded {
		return fmt.Errorf("first deployment: %s", describe(p))
	}
	if _, err := undo.rollout(ctx, stableImage); err != nil {
		return err
	}

	var sortie, kubectl rollbackTimes
	fmt.Fprintf(os.Stderr, "bench: %d rollbacks each way", n)
	for i := range n {
		image := fmt.Sprintf("registry.example/web:rollback-%d", i+1)
		t, err := sortieRollback(ctx, r, watches[ns], ns, image)
		if err != nil {
			return fmt.Errorf("sortie, %s: %w", image, err)
		}
		sortie.add(t)
		if t, err = kubectlUndo(ctx, r, undo, watches[undo.ns], image); err != nil {
			return fmt.Errorf("kubectl, %s: %w", image, err)
		}
		kubectl.add(t)
		fmt.Fprint(os.Stderr, ".")
	}
	fmt.Fprintln(os.Stderr)

	fmt.Fprintf(out, "Rollback: from the request until the old version is fully Ready again, %d runs each way\n", n)
	fmt.Fprintf(out, "Measured by a pod watch on the namespace (not polling): 4 Ready pods of the old image, none of the new one left\n\n")
	base := median(kubectl.back)
	rows := [][]string{{"", "median", "mean", "min", "max", "median / kubectl"}}
	for _, x := range []struct {
		name string
		ds   []time.Duration
	}{
		{"sortie: POST …/rollback at the 50% pause (2 old + 2 new pods), server + agent", sortie.back},
		{"baseline: kubectl rollout undo of a finished rollout (4 new pods -> 4 old)", kubectl.back},
	} {
		rows = append(rows, []string{x.name, ms(median(x.ds)), ms(mean(x.ds)), ms(slices.Min(x.ds)), ms(slices.Max(x.ds)), fmt.Sprintf("%.2f×", float64(median(x.ds))/float64(base))})
	}
	table(out, rows)
	fmt.Fprintf(out, "\nsortie, medians from the request: old version 4/4 Ready %s, last new pod gone %s, API says rolled back %s (the POST itself %s)\n",
		ms(median(sortie.ready)), ms(median(sortie.gone)), ms(median(sortie.api)), ms(median(sortie.posted)))
	fmt.Fprintf(out, "kubectl, medians from the start of `kubectl rollout undo`: old version 4/4 Ready %s, last new pod gone %s\n", ms(median(kubectl.ready)), ms(median(kubectl.gone)))
	fmt.Fprintf(out, "(the two start from different states: Sortie's canary runs both versions at 50%%, kubectl's rollout has replaced every pod)\n\n")
	return nil
}

// rollbackTime is one rollback's times, from the request.
type rollbackTime struct {
	back        time.Duration // the old version fully Ready, no new pod
	ready, gone time.Duration // each half of that, first seen
	api         time.Duration // the API reports the pipeline ended (sortie)
	posted      time.Duration // the rollback request answered (sortie)
}

type rollbackTimes struct {
	back, ready, gone, api, posted []time.Duration
}

func (t *rollbackTimes) add(x rollbackTime) {
	t.back = append(t.back, x.back)
	t.ready = append(t.ready, x.ready)
	t.gone = append(t.gone, x.gone)
	t.api = append(t.api, x.api)
	t.posted = append(t.posted, x.posted)
}

// sortieRollback deploys image as a canary through the server and the
// agent, and rolls it back at the 50 % pause.
func sortieRollback(ctx context.Context, r *rig, w *podWatch, ns, image string) (rollbackTime, error) {
	id, err := r.srv.start(ctx, webRequest("rollback.yml", rollbackFile, ns, image))
	if err != nil {
		return rollbackTime{}, err
	}
	_, seq, err := r.srv.follow(ctx, id, 0, awaiting(50))
	if err != nil {
		return rollbackTime{}, err
	}
	if got := w.census(); got != fmt.Sprintf("%s: 2 ready; %s: 2 ready", image, stableImage) && got != fmt.Sprintf("%s: 2 ready; %s: 2 ready", stableImage, image) {
		return rollbackTime{}, fmt.Errorf("pods at the 50%% pause: %s; want 2 Ready of each version", got)
	}
	type ending struct {
		took time.Duration
		p    *api.PipelineView
		err  error
	}
	ends := make(chan ending, 1)
	start := time.Now()
	if _, err := r.srv.api.Act(ctx, id, client.ActionRollback, api.ActionRequest{Target: "local", Reason: "bench"}); err != nil {
		return rollbackTime{}, err
	}
	t := rollbackTime{posted: time.Since(start)}
	go func() {
		p, _, err := r.srv.follow(ctx, id, seq, ended)
		ends <- ending{time.Since(start), p, err}
	}()
	if err := w.untilBack(ctx, start, stableImage, &t); err != nil {
		return t, err
	}
	e := <-ends
	if e.err != nil {
		return t, e.err
	}
	if st := e.p.Targets[0].Status; st != pipeline.StatusRolledBack {
		return t, fmt.Errorf("target after the rollback: %s, want %s: %s", st, pipeline.StatusRolledBack, describe(e.p))
	}
	t.api = e.took
	return t, checkRolledOut(ctx, r.cluster, ns, stableImage)
}

// kubectlUndo rolls image out with kubectl (untimed), then times
// `kubectl rollout undo` back to the stable image.
func kubectlUndo(ctx context.Context, r *rig, k *kubectlSide, w *podWatch, image string) (rollbackTime, error) {
	if _, err := k.rollout(ctx, image); err != nil {
		return rollbackTime{}, err
	}
	if err := checkRolledOut(ctx, r.cluster, k.ns, image); err != nil {
		return rollbackTime{}, err
	}
	var t rollbackTime
	start := time.Now()
	if err := k.run(ctx, "rollout", "undo", "deployment/web"); err != nil {
		return t, err
	}
	if err := w.untilBack(ctx, start, stableImage, &t); err != nil {
		return t, err
	}
	// The Deployment's status may trail its pods: wait for it, untimed.
	if err := k.run(ctx, "rollout", "status", "deployment/web", "--timeout="+rolloutLimit.String()); err != nil {
		return t, err
	}
	return t, checkRolledOut(ctx, r.cluster, k.ns, stableImage)
}

// podWatch keeps a namespace's pods through an informer (a list, then a
// watch) and says when they change.
type podWatch struct {
	store   cache.Store
	changed chan struct{}
	stop    context.CancelFunc
}

func watchPods(ctx context.Context, c kubernetes.Interface, ns string) (*podWatch, error) {
	ctx, cancel := context.WithCancel(ctx)
	lw := cache.NewListWatchFromClient(c.CoreV1().RESTClient(), "pods", ns, fields.Everything())
	inf := cache.NewSharedIndexInformer(lw, &corev1.Pod{}, 0, cache.Indexers{})
	w := &podWatch{store: inf.GetStore(), changed: make(chan struct{}, 1), stop: cancel}
	poke := func() {
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	}); err != nil {
		cancel()
		return nil, err
	}
	go inf.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		cancel()
		return nil, fmt.Errorf("pod watch of %s: %w", ns, ctx.Err())
	}
	return w, nil
}

// count is the pods of one image: all of them, the Ready ones not being
// deleted, and the ones being deleted.
type count struct{ all, ready, terminating int }

func (w *podWatch) counts() map[string]count {
	out := map[string]count{}
	for _, o := range w.store.List() {
		p := o.(*corev1.Pod)
		c := out[p.Spec.Containers[0].Image]
		c.all++
		switch {
		case p.DeletionTimestamp != nil:
			c.terminating++
		case podReady(p):
			c.ready++
		}
		out[p.Spec.Containers[0].Image] = c
	}
	return out
}

// census describes the pods that serve or may: "image: N ready; …", with
// the ones not ready counted apart. Pods being deleted are left out: they
// are out of every Service already, and a scaled-down ReplicaSet's pods
// stay so for their grace period.
func (w *podWatch) census() string {
	var parts []string
	for image, c := range w.counts() {
		if c.all == c.terminating {
			continue
		}
		s := fmt.Sprintf("%s: %d ready", image, c.ready)
		if n := c.all - c.terminating - c.ready; n > 0 {
			s += fmt.Sprintf(", %d not", n)
		}
		parts = append(parts, s)
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// untilBack waits until exactly 4 pods of image are Ready and no pod of
// another image is left, and fills in t's times since start: when the
// first half held, when the second did, and when both did.
func (w *podWatch) untilBack(ctx context.Context, start time.Time, image string, t *rollbackTime) error {
	ctx, cancel := context.WithTimeout(ctx, rolloutLimit)
	defer cancel()
	for {
		cs := w.counts()
		now := time.Since(start)
		old := cs[image]
		ready := old.ready == 4 && old.all == 4
		gone := len(cs) == 0 || (len(cs) == 1 && old.all > 0)
		if ready && t.ready == 0 {
			t.ready = now
		}
		if gone && t.gone == 0 {
			t.gone = now
		}
		if ready && gone {
			t.back = now
			return nil
		}
		select {
		case <-w.changed:
		case <-ctx.Done():
			return fmt.Errorf("the old version is not back: pods %s: %w", w.census(), ctx.Err())
		}
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
