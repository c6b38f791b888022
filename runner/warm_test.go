package runner_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

const straight = `  s:
    canary:
      steps:
        - setWeight: 100`

const keepWarm = "deploymentConfig:\n  keepPrevious: {for: {duration: 30, unit: minutes}, replicas: 4}\n"

// serving counts, by image, the pods Service name sends traffic to: the
// Ready pods, not being deleted, that its selector matches now.
func (e *env) serving(name string) map[string]int {
	e.t.Helper()
	c := kubetest.Client(e.t)
	svc, err := c.CoreV1().Services(e.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	pods, err := c.CoreV1().Pods(e.ns).List(context.Background(), metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]int{}
	for _, p := range pods.Items {
		for _, cond := range p.Status.Conditions {
			if p.DeletionTimestamp == nil && cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				out[p.Spec.Containers[0].Image]++
			}
		}
	}
	return out
}

// rollbackAfterSuccess rolls target prod of pipeline id back to the version
// before it and returns how long traffic took to be on image only, and the
// whole rollback.
func (e *env) rollbackAfterSuccess(id, image string) (traffic, total time.Duration) {
	e.t.Helper()
	ctx := context.Background()
	prev, err := e.r.Previous(ctx, store.DefaultTenant, id, "prod")
	if err != nil {
		e.t.Fatal(err)
	}
	begin := time.Now()
	res, err := e.r.Restore(ctx, deployer, store.DefaultTenant, prev, []string{"prod"}, "checkout errors")
	if err != nil {
		e.t.Fatal(err)
	}
	last := ""
	kubetest.Until(e.t, e.ns, "traffic on "+image+" only", time.Minute, func() bool {
		s := e.serving("web")
		if now := fmt.Sprint(s, kubetest.ReadyByImage(e.t, e.ns)); now != last {
			e.t.Logf("%s serving %s", time.Since(begin).Round(time.Millisecond), now)
			last = now
		}
		return s[image] > 0 && len(s) == 1
	})
	traffic = time.Since(begin)
	if p := e.waitEnd(res.PipelineID); p.Status != pipeline.StatusSucceeded {
		e.t.Fatalf("the rollback ended %s\n%s", p.Status, dump(p))
	}
	return traffic, time.Since(begin)
}

func (e *env) deployed(image, extra string) string {
	e.t.Helper()
	req := e.file("web", e.oneTarget("prod", "s"), straight, image, "")
	req.File = extra + req.File
	id := e.start(req)
	if p := e.waitEnd(id); p.Status != pipeline.StatusSucceeded {
		e.t.Fatalf("deployment of %s ended %s\n%s", image, p.Status, dump(p))
	}
	return id
}

// A SUCCEEDED target rolled back on the real cluster, with its previous
// version kept warm (keepPrevious, 4 pods) and without: warm, the pods
// take no traffic until the rollback, which points the Service at them at
// once; the warm version is removed at its deadline by a timer that a
// restart arms again from the store.
func TestRollbackAfterSuccessWithAWarmPreviousVersion(t *testing.T) {
	st := openStore(t)
	clock := &fakeClock{now: time.Now()}
	e := newEnvClock(t, st, clock)
	ctx := context.Background()
	// Previous goes back to the pipeline created before: each starts a
	// second after the one before it.
	later := func() { clock.Advance(clock.Now().Add(time.Second)) }

	e.deployed("web:v1", "")
	later()
	v2 := e.deployed("web:v2", keepWarm)
	p, err := e.r.Get(ctx, store.DefaultTenant, v2)
	if err != nil {
		t.Fatal(err)
	}
	until := target(p, "prod").WarmUntil
	if want := target(p, "prod").EndedAt.Add(30 * time.Minute); !until.Equal(want) {
		t.Errorf("prod warm until %v, want 30 minutes after its success (%v)", until, want)
	}
	if ws, err := st.ListWarm(ctx); err != nil || len(ws) != 1 || ws[0].Pipeline != v2 || !ws[0].Until.Equal(until) {
		t.Errorf("stored warm versions: %+v, %v; want pipeline %s's prod until %v", ws, err, v2, until)
	}
	if got := kubetest.ReadyByImage(t, e.ns); got["web:v1"] != 4 || got["web:v2"] != 4 {
		t.Errorf("Ready pods with v1 warm: %v, want 4 of each", got)
	}
	if got := e.serving("web"); got["web:v2"] != 4 || len(got) != 1 {
		t.Errorf("the Service serves %v while v1 is warm, want only the 4 pods of v2", got)
	}

	later()
	warmTraffic, warmTotal := e.rollbackAfterSuccess(v2, "web:v1")
	if d := e.warm(); d != nil {
		t.Errorf("the warm deployment is left after the rollback: %s", d.Name)
	}
	svc, err := kubetest.Client(t).CoreV1().Services(e.ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Selector["app"] != "web" || len(svc.Spec.Selector) != 1 || svc.Annotations[kube.AnnotationOriginalSelector] != "" {
		t.Errorf("the Service after the rollback: selector %v, annotations %v; want its own selector back", svc.Spec.Selector, svc.Annotations)
	}
	if got := kubetest.ReadyByImage(t, e.ns); got["web:v1"] != 4 || len(got) != 1 {
		t.Errorf("Ready pods after the rollback: %v, want 4 of v1", got)
	}

	later()
	v3 := e.deployed("web:v3", "")
	later()
	coldTraffic, coldTotal := e.rollbackAfterSuccess(v3, "web:v1")
	t.Logf("rollback of a SUCCEEDED target, 4 pods: with a warm previous version traffic on it after %s (rollback done after %s); without one after %s (done after %s)",
		warmTraffic.Round(time.Millisecond), warmTotal.Round(time.Millisecond), coldTraffic.Round(time.Millisecond), coldTotal.Round(time.Millisecond))

	// Kept warm again, then a restart: the new runner's timer, armed from
	// the store, removes it at its deadline, not before.
	later()
	v4 := e.deployed("web:v4", keepWarm)
	if d := e.warm(); d == nil || d.Annotations[kube.AnnotationWarmPipeline] != v4 {
		t.Fatalf("no warm deployment kept by %s: %+v", v4, d)
	}
	p, _ = e.r.Get(ctx, store.DefaultTenant, v4)
	until = target(p, "prod").WarmUntil
	e.r.Close()
	ns := e.ns
	e = newEnvClock(t, st, clock)
	e.ns = ns
	clock.Advance(until.Add(-time.Second))
	if d := e.warm(); d == nil {
		t.Fatal("the warm deployment was removed before its deadline")
	}
	clock.Advance(until)
	kubetest.Until(t, e.ns, "the warm deployment is removed", time.Minute, func() bool { return e.warm() == nil })
	kubetest.Until(t, e.ns, "the warm pods are gone", time.Minute, func() bool {
		got := kubetest.ReadyByImage(t, e.ns)
		return got["web:v1"] == 0 && got["web:v4"] == 4
	})
	// Close waits for the timer's callback, which forgets the warm version
	// once the cluster removed it.
	e.r.Close()
	if ws, err := st.ListWarm(ctx); err != nil || len(ws) != 0 {
		t.Errorf("stored warm versions after the removal: %+v, %v; want none", ws, err)
	}
}

// warm returns the warm Deployment of web, or nil.
func (e *env) warm() *appsv1.Deployment {
	e.t.Helper()
	d, err := kubetest.Client(e.t).AppsV1().Deployments(e.ns).Get(context.Background(), "web-sortie-warm", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// Kept at zero (keepPrevious without replicas), the previous version costs
// no pod until a rollback, which starts its pods and moves traffic to them
// once they are Ready.
func TestRollbackAfterSuccessToAVersionKeptAtZero(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	e := newEnvClock(t, openStore(t), clock)
	later := func() { clock.Advance(clock.Now().Add(time.Second)) }
	e.deployed("web:v1", "")
	later()
	v2 := e.deployed("web:v2", "deploymentConfig:\n  keepPrevious: {for: {duration: 1, unit: hours}}\n")
	d := e.warm()
	if d == nil || d.Spec.Replicas == nil || *d.Spec.Replicas != 0 {
		t.Fatalf("warm deployment after v2: %+v, want one at 0 replicas", d)
	}
	if got := kubetest.ReadyByImage(t, e.ns); got["web:v1"] != 0 || got["web:v2"] != 4 {
		t.Errorf("Ready pods with v1 kept at zero: %v, want only 4 of v2", got)
	}
	later()
	traffic, total := e.rollbackAfterSuccess(v2, "web:v1")
	t.Logf("rollback of a SUCCEEDED target to a version kept at zero, 4 pods: traffic on it after %s (done after %s)", traffic.Round(time.Millisecond), total.Round(time.Millisecond))
	if e.warm() != nil {
		t.Error("the warm deployment is left after the rollback")
	}
	if got := kubetest.ReadyByImage(t, e.ns); got["web:v1"] != 4 || len(got) != 1 {
		t.Errorf("Ready pods after the rollback: %v, want 4 of v1", got)
	}
}
