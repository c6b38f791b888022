package kube_test

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/kubetest"
)

// podLog records, from a watch started before the rollout, every pod
// created and deleted in a namespace.
type podLog struct {
	mu      sync.Mutex
	added   map[string]*corev1.Pod // by name, as first seen
	deleted map[string]bool
	before  map[string]bool // the pods when it began
}

func watchPods(t *testing.T, ns string) *podLog {
	t.Helper()
	c := kubetest.Client(t)
	list, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := c.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	l := &podLog{added: map[string]*corev1.Pod{}, deleted: map[string]bool{}, before: map[string]bool{}}
	for _, p := range list.Items {
		l.before[p.Name] = true
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			l.mu.Lock()
			switch ev.Type {
			case watch.Added:
				l.added[p.Name] = p
			case watch.Deleted:
				l.deleted[p.Name] = true
			}
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); w.Stop(); <-done })
	return l
}

// settle waits until the log has seen every pod created since it began
// and the deletion of every pod since gone.
func (l *podLog) settle(t *testing.T, ns string) {
	t.Helper()
	kubetest.Until(t, ns, "the pod watch caught up", time.Minute, func() bool {
		list, err := kubetest.Client(t).CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		live := map[string]bool{}
		for _, p := range list.Items {
			live[p.Name] = true
			if _, seen := l.added[p.Name]; !seen && !l.before[p.Name] {
				return false
			}
		}
		for name := range l.added {
			if !live[name] && !l.deleted[name] {
				return false
			}
		}
		return true
	})
}

// byImage counts the pods created and deleted per image.
func (l *podLog) byImage() (added, deleted map[string]int, owners map[string]map[types.UID]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	added, deleted, owners = map[string]int{}, map[string]int{}, map[string]map[types.UID]bool{}
	for name, p := range l.added {
		img := p.Spec.Containers[0].Image
		added[img]++
		if l.deleted[name] {
			deleted[img]++
		}
		if owners[img] == nil {
			owners[img] = map[types.UID]bool{}
		}
		if c := metav1.GetControllerOf(p); c != nil {
			owners[img][c.UID] = true
		}
	}
	return added, deleted, owners
}

func replicaSets(t *testing.T, ns string) map[string]*appsv1.ReplicaSet {
	t.Helper()
	list, err := kubetest.Client(t).AppsV1().ReplicaSets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*appsv1.ReplicaSet{}
	for i := range list.Items {
		out[list.Items[i].Name] = &list.Items[i]
	}
	return out
}

// activeReplicaSetOf is the one ReplicaSet of d that wants pods.
func activeReplicaSetOf(t *testing.T, ns string, d *appsv1.Deployment) *appsv1.ReplicaSet {
	t.Helper()
	var active []*appsv1.ReplicaSet
	for _, rs := range replicaSets(t, ns) {
		if c := metav1.GetControllerOf(rs); c != nil && c.UID == d.UID && *rs.Spec.Replicas > 0 {
			active = append(active, rs)
		}
	}
	if len(active) != 1 {
		t.Fatalf("deployment %s has %d active replica sets, want one", d.Name, len(active))
	}
	return active[0]
}

func noHold(t *testing.T, ns string) {
	t.Helper()
	if _, err := kubetest.Client(t).CoreV1().ConfigMaps(ns).Get(context.Background(), "web-sortie-hold", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the hold is left behind (err %v)", err)
	}
}

// The new version's pods are created once, by the user's Deployment, in
// one ReplicaSet, and none is deleted: finalize has nothing to hand over.
// The old version's ReplicaSet stays the Deployment's, as its history.
func TestCanaryCreatesTheNewPodsOnce(t *testing.T) {
	e := newExecutor(t)
	ns := kubetest.Namespace(t)
	deployV1(t, e, ns)
	old := activeReplicaSetOf(t, ns, deployments(t, ns)["web"])
	log := watchPods(t, ns)
	v2 := target(ns, "p2", manifests(t, "web:v2", 4, ""))
	for _, w := range []int{25, 50, 100} {
		p, err := e.SetWeight(ctxFor(t), v2, w)
		if err != nil {
			t.Fatalf("weight %d: %v", w, err)
		}
		c := int(kube.CanaryPods(4, w))
		if int(p.NewPods) != c || int(p.OldPods) != 4-c {
			t.Errorf("weight %d: progress %+v, want %d new and %d old", w, p, c, 4-c)
		}
		if got := readyByImage(t, ns); got["web:v2"] != c || got["web:v1"] != 4-c {
			t.Errorf("weight %d: ready pods by image %v", w, got)
		}
		if ds := deployments(t, ns); len(ds) != 1 {
			t.Errorf("weight %d: deployments %v, want the user's only", w, keys(ds))
		}
	}
	if _, err := e.Finalize(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
	log.settle(t, ns)
	added, deleted, owners := log.byImage()
	if added["web:v2"] != 4 || deleted["web:v2"] != 0 || len(owners["web:v2"]) != 1 {
		t.Errorf("new pods: %d created, %d deleted, by %d replica sets; want 4, 0 and 1", added["web:v2"], deleted["web:v2"], len(owners["web:v2"]))
	}
	if added["web:v1"] != 0 {
		// Sortie and the ReplicaSet controller picked different old pods.
		t.Errorf("%d old-version pods created during the canary", added["web:v1"])
	}
	web := deployments(t, ns)["web"]
	if web.Spec.Paused || *web.Spec.Replicas != 4 || web.Spec.Template.Spec.Containers[0].Image != "web:v2" {
		t.Errorf("user's deployment: paused %v, %d × %s", web.Spec.Paused, *web.Spec.Replicas, web.Spec.Template.Spec.Containers[0].Image)
	}
	if rs := activeReplicaSetOf(t, ns, web); !owners["web:v2"][rs.UID] {
		t.Errorf("the deployment's replica set %s is not the one that created the new pods", rs.Name)
	}
	back := replicaSets(t, ns)[old.Name]
	if back == nil || back.UID != old.UID || *back.Spec.Replicas != 0 {
		t.Fatalf("old replica set after the canary: %+v, want it kept at 0", back)
	}
	if c := metav1.GetControllerOf(back); c == nil || c.UID != web.UID {
		t.Errorf("old replica set controlled by %+v, want the user's deployment", c)
	}
	for _, a := range []string{kube.AnnotationOriginalReplicas, kube.AnnotationPreviousTemplate} {
		if _, ok := web.Annotations[a]; ok {
			t.Errorf("annotation %s left on the deployment", a)
		}
	}
	noHold(t, ns)
	// Finalize ended on the pods; the controllers' statuses catch up.
	kubetest.Until(t, ns, "the deployment's status says rolled out", time.Minute, func() bool {
		return rolledOut(deployments(t, ns)["web"], 4)
	})
}

// rolledOut reports whether d's status says it runs n pods of its
// current template, all available.
func rolledOut(d *appsv1.Deployment, n int32) bool {
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.Replicas == n && s.UpdatedReplicas == n && s.ReadyReplicas == n && s.AvailableReplicas == n
}

// With minReadySeconds, a pod counts once Ready that long, which only
// the Deployment's status says: finalize of a canary inside the
// Deployment waits for it, where it would otherwise end on the pods.
func TestFinalizeWaitsForMinReadySeconds(t *testing.T) {
	e := newExecutor(t)
	ns := kubetest.Namespace(t)
	slow := func(image string) []*unstructured.Unstructured {
		objs := manifests(t, image, 4, "")
		if err := unstructured.SetNestedField(objs[0].Object, int64(1), "spec", "minReadySeconds"); err != nil {
			t.Fatal(err)
		}
		return objs
	}
	if _, err := e.Finalize(ctxFor(t), target(ns, "p1", slow("web:v1"))); err != nil {
		t.Fatal(err)
	}
	v2 := target(ns, "p2", slow("web:v2"))
	for _, w := range []int{50, 100} {
		if _, err := e.SetWeight(ctxFor(t), v2, w); err != nil {
			t.Fatalf("weight %d: %v", w, err)
		}
	}
	if _, err := e.Finalize(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
	if d := deployments(t, ns)["web"]; !rolledOut(d, 4) {
		t.Errorf("deployment status after finalize: %+v, want 4 available of the new template", d.Status)
	}
	noHold(t, ns)
}

// A rollback at any step of a canary inside the user's Deployment brings
// back the ReplicaSet that ran before, with the old pods that still ran,
// and leaves nothing of the new version.
func TestCanaryRollbackKeepsTheOldReplicaSet(t *testing.T) {
	for _, w := range []int{25, 50, 100} {
		t.Run(strconv.Itoa(w), func(t *testing.T) {
			e := newExecutor(t)
			ns := kubetest.Namespace(t)
			deployV1(t, e, ns)
			before := deployments(t, ns)["web"]
			old := activeReplicaSetOf(t, ns, before)
			v2 := target(ns, "p2", manifests(t, "web:v2", 4, ""))
			if _, err := e.SetWeight(ctxFor(t), v2, 25); err != nil {
				t.Fatal(err)
			}
			if w > 25 {
				if _, err := e.SetWeight(ctxFor(t), v2, w); err != nil {
					t.Fatal(err)
				}
			}
			survivors := podsOf(t, ns, "web:v1")
			if _, err := e.Rollback(ctxFor(t), v2); err != nil {
				t.Fatal(err)
			}
			web := deployments(t, ns)["web"]
			if web.Spec.Paused || *web.Spec.Replicas != 4 || web.Spec.Template.Spec.Containers[0].Image != "web:v1" {
				t.Errorf("user's deployment: paused %v, %d × %s", web.Spec.Paused, *web.Spec.Replicas, web.Spec.Template.Spec.Containers[0].Image)
			}
			if rs := activeReplicaSetOf(t, ns, web); rs.UID != old.UID {
				t.Errorf("active replica set %s, want the one before the canary, %s", rs.Name, old.Name)
			}
			if got := readyByImage(t, ns); got["web:v1"] != 4 || len(got) != 1 {
				t.Errorf("ready pods after the rollback: %v", got)
			}
			now := podsOf(t, ns, "web:v1")
			for _, name := range survivors {
				if !slices.Contains(now, name) {
					t.Errorf("old pod %s was replaced by the rollback", name)
				}
			}
			for name, rs := range replicaSets(t, ns) {
				if rs.Spec.Template.Spec.Containers[0].Image == "web:v2" {
					t.Errorf("replica set %s of the new version left", name)
				}
				if c := metav1.GetControllerOf(rs); c == nil || c.UID != web.UID {
					t.Errorf("replica set %s controlled by %+v, want the user's deployment", name, c)
				}
			}
			if !maps.Equal(web.Spec.Template.Labels, before.Spec.Template.Labels) {
				t.Errorf("pod labels %v after the rollback, want %v", web.Spec.Template.Labels, before.Spec.Template.Labels)
			}
			for _, a := range []string{kube.AnnotationOriginalReplicas, kube.AnnotationPreviousTemplate} {
				if _, ok := web.Annotations[a]; ok {
					t.Errorf("annotation %s left on the deployment", a)
				}
			}
			noHold(t, ns)
		})
	}
}

// podsOf names the live pods of image in ns.
func podsOf(t *testing.T, ns, image string) []string {
	t.Helper()
	list, err := kubetest.Client(t).CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Spec.Containers[0].Image == image {
			out = append(out, p.Name)
		}
	}
	return out
}

// A canary step that stops at any write of the takeover (the agent killed,
// the connection lost) and is run again goes on where it stopped: the new
// pods are still created once, no old one is replaced, and finalize leaves
// the old ReplicaSet as the Deployment's history.
func TestInterruptedTakeOverResumes(t *testing.T) {
	writes := map[string]func(r *http.Request, ns string) bool{
		"the hold's creation": func(r *http.Request, ns string) bool {
			return r.Method == http.MethodPost && r.URL.Path == "/api/v1/namespaces/"+ns+"/configmaps"
		},
		"the pause": func(r *http.Request, ns string) bool {
			return r.Method == http.MethodPatch && r.URL.Path == "/apis/apps/v1/namespaces/"+ns+"/deployments/web" && strings.Contains(r.Header.Get("Content-Type"), "merge-patch")
		},
		"a ReplicaSet's move": func(r *http.Request, ns string) bool {
			return r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/apis/apps/v1/namespaces/"+ns+"/replicasets/")
		},
		"the new template's apply": func(r *http.Request, ns string) bool {
			return r.Method == http.MethodPatch && r.URL.Path == "/apis/apps/v1/namespaces/"+ns+"/deployments/web" && strings.Contains(r.Header.Get("Content-Type"), "apply-patch")
		},
	}
	for name, write := range writes {
		t.Run(name, func(t *testing.T) {
			ns := kubetest.Namespace(t)
			deployV1(t, newExecutor(t), ns)
			old := activeReplicaSetOf(t, ns, deployments(t, ns)["web"])
			proxy := kubetest.NewFaultProxy(t)
			e, err := kube.New(proxy.Config(), nil)
			if err != nil {
				t.Fatal(err)
			}
			log := watchPods(t, ns)
			proxy.Inject(func(r *http.Request) bool { return write(r, ns) }, kubetest.Reset)
			v2 := target(ns, "p2", manifests(t, "web:v2", 4, ""))
			if _, err := e.SetWeight(ctxFor(t), v2, 25); err == nil {
				t.Fatal("the interrupted step succeeded")
			}
			if proxy.Pending() != 0 {
				t.Fatal("the step never made the write")
			}
			for _, w := range []int{25, 50, 100} {
				if _, err := e.SetWeight(ctxFor(t), v2, w); err != nil {
					t.Fatalf("weight %d: %v", w, err)
				}
				c := int(kube.CanaryPods(4, w))
				if got := readyByImage(t, ns); got["web:v2"] != c || got["web:v1"] != 4-c {
					t.Errorf("weight %d: ready pods by image %v", w, got)
				}
			}
			if _, err := e.Finalize(ctxFor(t), v2); err != nil {
				t.Fatal(err)
			}
			log.settle(t, ns)
			added, deleted, _ := log.byImage()
			if added["web:v2"] != 4 || deleted["web:v2"] != 0 || added["web:v1"] != 0 {
				t.Errorf("pods created %v and deleted %v, want 4 new ones created and none deleted", added, deleted)
			}
			web := deployments(t, ns)["web"]
			if back := replicaSets(t, ns)[old.Name]; back == nil || back.UID != old.UID || metav1.GetControllerOf(back).UID != web.UID {
				t.Errorf("old replica set after the canary: %+v", back)
			}
			noHold(t, ns)
		})
	}
}

// nth accepts the n-th request (from 1) that m accepts.
func nth(n int, m func(*http.Request) bool) func(*http.Request) bool {
	var mu sync.Mutex
	seen := 0
	return func(r *http.Request) bool {
		if !m(r) {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		seen++
		return seen == n
	}
}

// A rollback of a canary inside the user's Deployment that stops at any of
// its writes and is run again still brings back the ReplicaSet that ran
// before, with the old pods that still ran, and leaves nothing of the new
// version.
func TestInterruptedRollbackResumes(t *testing.T) {
	patch := func(ns, path, contentType string) func(*http.Request) bool {
		return func(r *http.Request) bool {
			return r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/apis/apps/v1/namespaces/"+ns+"/"+path) && strings.Contains(r.Header.Get("Content-Type"), contentType)
		}
	}
	writes := map[string]func(ns string) func(*http.Request) bool{
		"the old version's scale-up": func(ns string) func(*http.Request) bool { return nth(1, patch(ns, "replicasets/", "merge-patch")) },
		"the pause":                  func(ns string) func(*http.Request) bool { return nth(1, patch(ns, "deployments/web", "merge-patch")) },
		"the new ReplicaSet's hold":  func(ns string) func(*http.Request) bool { return nth(2, patch(ns, "replicasets/", "merge-patch")) },
		"the template's restore":     func(ns string) func(*http.Request) bool { return nth(1, patch(ns, "deployments/web", "json-patch")) },
		"the old ReplicaSet's return": func(ns string) func(*http.Request) bool {
			return nth(3, patch(ns, "replicasets/", "merge-patch"))
		},
		"the unpause": func(ns string) func(*http.Request) bool { return nth(2, patch(ns, "deployments/web", "merge-patch")) },
	}
	for name, write := range writes {
		t.Run(name, func(t *testing.T) {
			ns := kubetest.Namespace(t)
			direct := newExecutor(t)
			deployV1(t, direct, ns)
			old := activeReplicaSetOf(t, ns, deployments(t, ns)["web"])
			v2 := target(ns, "p2", manifests(t, "web:v2", 4, ""))
			if _, err := direct.SetWeight(ctxFor(t), v2, 50); err != nil {
				t.Fatal(err)
			}
			survivors := podsOf(t, ns, "web:v1")
			proxy := kubetest.NewFaultProxy(t)
			e, err := kube.New(proxy.Config(), nil)
			if err != nil {
				t.Fatal(err)
			}
			proxy.Inject(write(ns), kubetest.Reset)
			if _, err := e.Rollback(ctxFor(t), v2); err == nil {
				t.Fatal("the interrupted rollback succeeded")
			}
			if proxy.Pending() != 0 {
				t.Fatal("the rollback never made the write")
			}
			if _, err := e.Rollback(ctxFor(t), v2); err != nil {
				t.Fatal(err)
			}
			web := deployments(t, ns)["web"]
			if web.Spec.Paused || *web.Spec.Replicas != 4 || web.Spec.Template.Spec.Containers[0].Image != "web:v1" {
				t.Errorf("user's deployment: paused %v, %d × %s", web.Spec.Paused, *web.Spec.Replicas, web.Spec.Template.Spec.Containers[0].Image)
			}
			if rs := activeReplicaSetOf(t, ns, web); rs.UID != old.UID {
				t.Errorf("active replica set %s, want the one before the canary, %s", rs.Name, old.Name)
			}
			kubetest.Until(t, ns, "4 old pods Ready and no new one", time.Minute, func() bool {
				got := readyByImage(t, ns)
				return got["web:v1"] == 4 && len(got) == 1
			})
			now := podsOf(t, ns, "web:v1")
			for _, p := range survivors {
				if !slices.Contains(now, p) {
					t.Errorf("old pod %s was replaced by the rollback", p)
				}
			}
			for name, rs := range replicaSets(t, ns) {
				if rs.Spec.Template.Spec.Containers[0].Image == "web:v2" {
					t.Errorf("replica set %s of the new version left", name)
				}
			}
			noHold(t, ns)
		})
	}
}

// Where the agent may not patch or delete pods (an install whose role
// predates it), the old version's pods are retired by the ReplicaSet
// controller as before: the canary still ends with the new pods created
// once and no old one created.
func TestCanaryWithoutRightsOnPods(t *testing.T) {
	ns := kubetest.Namespace(t)
	deployV1(t, newExecutor(t), ns)
	proxy := kubetest.NewFaultProxy(t)
	e, err := kube.New(proxy.Config(), nil)
	if err != nil {
		t.Fatal(err)
	}
	podWrite := func(r *http.Request) bool {
		return (r.Method == http.MethodPatch || r.Method == http.MethodDelete) && strings.HasPrefix(r.URL.Path, "/api/v1/namespaces/"+ns+"/pods/")
	}
	// One refusal per old pod the canary retires.
	for range 4 {
		proxy.Inject(podWrite, kubetest.Forbidden)
	}
	log := watchPods(t, ns)
	v2 := target(ns, "p2", manifests(t, "web:v2", 4, ""))
	for _, w := range []int{25, 50, 100} {
		if _, err := e.SetWeight(ctxFor(t), v2, w); err != nil {
			t.Fatalf("weight %d: %v", w, err)
		}
		c := int(kube.CanaryPods(4, w))
		if got := readyByImage(t, ns); got["web:v2"] != c || got["web:v1"] != 4-c {
			t.Errorf("weight %d: ready pods by image %v", w, got)
		}
	}
	if _, err := e.Finalize(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
	if got := proxy.Injected()["403"]; got != 4 || proxy.Pending() != 0 {
		t.Errorf("%d pod writes refused, want 4: the steps did not try to retire the old pods themselves", got)
	}
	log.settle(t, ns)
	added, deleted, _ := log.byImage()
	if added["web:v2"] != 4 || deleted["web:v2"] != 0 || added["web:v1"] != 0 {
		t.Errorf("pods created %v and deleted %v, want 4 new ones created and none deleted", added, deleted)
	}
	noHold(t, ns)
}

// The Deployment's revision history (ReplicaSets of other versions at 0)
// is its own again after a canary's rollback and after a promotion, and no
// pod of it starts meanwhile. It is held with the stable ReplicaSet: a
// Deployment whose controller finds no active ReplicaSet of its own scales
// the newest one up, and while it is paused that is the history's newest.
func TestRevisionHistoryComesBack(t *testing.T) {
	e := newExecutor(t)
	ns := kubetest.Namespace(t)
	canary := func(v *kube.Target, weights ...int) {
		t.Helper()
		for _, w := range weights {
			if _, err := e.SetWeight(ctxFor(t), v, w); err != nil {
				t.Fatalf("weight %d: %v", w, err)
			}
		}
	}
	deployV1(t, e, ns)
	v2 := target(ns, "p2", manifests(t, "web:v2", 4, ""))
	canary(v2, 50, 100)
	if _, err := e.Finalize(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
	kubetest.Until(t, ns, "the statuses catch up with v2's promotion", time.Minute, func() bool {
		for _, rs := range replicaSets(t, ns) {
			if *rs.Spec.Replicas == 0 && rs.Status.Replicas != 0 {
				return false
			}
		}
		return rolledOut(deployments(t, ns)["web"], 4)
	})
	web := deployments(t, ns)["web"]
	history := activeReplicaSetOf(t, ns, web) // v2's
	var v1 *appsv1.ReplicaSet
	for _, rs := range replicaSets(t, ns) {
		if rs.Spec.Template.Spec.Containers[0].Image == "web:v1" {
			v1 = rs
		}
	}
	if v1 == nil {
		t.Fatal("no replica set of web:v1 in the history")
	}
	ownedByWeb := func(when string, names ...string) {
		t.Helper()
		rss := replicaSets(t, ns)
		for _, name := range names {
			rs := rss[name]
			if rs == nil {
				t.Errorf("%s: replica set %s is gone", when, name)
			} else if c := metav1.GetControllerOf(rs); c == nil || c.UID != web.UID {
				t.Errorf("%s: replica set %s controlled by %+v, want the user's deployment", when, name, c)
			}
		}
	}

	log := watchPods(t, ns)
	v3 := target(ns, "p3", manifests(t, "web:v3", 4, ""))
	canary(v3, 50)
	if _, err := e.Rollback(ctxFor(t), v3); err != nil {
		t.Fatal(err)
	}
	ownedByWeb("after the rollback", v1.Name, history.Name)
	if got := readyByImage(t, ns); got["web:v2"] != 4 || len(got) != 1 {
		t.Errorf("ready pods after the rollback: %v, want v2's 4", got)
	}

	v3 = target(ns, "p4", manifests(t, "web:v3", 4, ""))
	canary(v3, 50, 100)
	if _, err := e.Finalize(ctxFor(t), v3); err != nil {
		t.Fatal(err)
	}
	ownedByWeb("after the promotion", v1.Name, history.Name)
	images := map[string]bool{}
	for name, rs := range replicaSets(t, ns) {
		images[rs.Spec.Template.Spec.Containers[0].Image] = true
		if img := rs.Spec.Template.Spec.Containers[0].Image; img != "web:v3" && *rs.Spec.Replicas != 0 {
			t.Errorf("replica set %s of %s wants %d pods, want 0", name, img, *rs.Spec.Replicas)
		}
	}
	if !images["web:v1"] || !images["web:v2"] || !images["web:v3"] {
		t.Errorf("replica sets by image %v, want v1, v2 and v3", images)
	}
	if got := readyByImage(t, ns); got["web:v3"] != 4 || len(got) != 1 {
		t.Errorf("ready pods after the promotion: %v, want v3's 4", got)
	}
	log.settle(t, ns)
	// v2's 2 are those the rollback brought back of the 2 retired at 50 %.
	if added, _, _ := log.byImage(); added["web:v1"] != 0 || added["web:v2"] != 2 {
		t.Errorf("pods created by image: %v, want no v1 and 2 of v2", added)
	}
	noHold(t, ns)
}
