package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/build"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/localkube"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/sqlite"
)

// These tests run the real `sortie dev` binary against the local cluster,
// SIGKILL it at chosen points of a canary, start it again on the same data
// directory, and check that each pipeline resumes exactly where it was: in
// the API, in the event log and in the cluster's objects.

func TestMain(m *testing.M) { kubetest.Main(m) }

// waitLimit bounds every wait of these tests; none sleeps to wait.
const waitLimit = 90 * time.Second

// TestKillDuringTimedPause kills the server during a timed pause and keeps
// it down for a while: the pause still ends at the deadline it had before
// the kill, not a full pause after the restart.
func TestKillDuringTimedPause(t *testing.T) {
	t.Parallel()
	const pause = 12 * time.Second
	// outage is how long the server stays down, counted from the pause's
	// start: were the pause's timer started again on restart, the pause
	// would end at least this much late.
	const outage = 4 * time.Second
	c := newCase(t, `        - setWeight: 25
        - pause: {duration: 12, unit: seconds}
        - setWeight: 100`)
	id, ev := c.upgrade()
	ev.waitStep("prod", "canary/1", pipeline.StatusPaused)
	before := c.srv.get(id)
	paused := step(t, before, "prod", "canary/1")
	if got := paused.Deadline.Sub(paused.StartedAt); got != pause {
		t.Fatalf("pause deadline is %s after its start, want %s", got, pause)
	}

	c.srv.kill()
	c.checkCanaryPods("web:v1", 3, "web:v2", 1) // as the pause found it
	// An outage, not a wait: the real binary's timers run on the wall
	// clock, so the time the server is down is the thing under test.
	time.Sleep(time.Until(paused.StartedAt.Add(outage)))
	c.srv.restart()
	ev.reconnect()

	after := c.srv.get(id)
	if s := step(t, after, "prod", "canary/1"); s.Status != pipeline.StatusPaused || !s.StartedAt.Equal(paused.StartedAt) || !s.Deadline.Equal(paused.Deadline) {
		t.Fatalf("after the restart the pause is %s, started %v, deadline %v; want PAUSED, started %v, deadline %v",
			s.Status, s.StartedAt, s.Deadline, paused.StartedAt, paused.Deadline)
	}
	end := ev.waitEnd()
	if end != pipeline.StatusSucceeded {
		t.Fatalf("pipeline ended %s\n%s", end, c.srv.dump(id))
	}
	done := step(t, c.srv.get(id), "prod", "canary/1")
	if late := done.EndedAt.Sub(paused.Deadline); late < 0 || late > time.Second {
		t.Errorf("the pause ended at %v, %s after its original deadline %v; want within a second (a restarted timer would be %s late)",
			done.EndedAt, late, paused.Deadline, outage)
	}
	ev.checkOnce()
	c.checkFinal("web:v2")
	c.srv.checkResumed(id, 0)
}

// TestPauseEndsAtRestartWhenItsDeadlinePassedMeanwhile keeps the server
// down past a pause's deadline: the restarted server ends the pause at once,
// before it even listens, and goes on.
func TestPauseEndsAtRestartWhenItsDeadlinePassedMeanwhile(t *testing.T) {
	t.Parallel()
	c := newCase(t, `        - setWeight: 25
        - pause: {duration: 2, unit: seconds}
        - setWeight: 100`)
	id, ev := c.upgrade()
	ev.waitStep("prod", "canary/1", pipeline.StatusPaused)
	paused := step(t, c.srv.get(id), "prod", "canary/1")
	c.srv.kill()
	// An outage, not a wait: the server stays down until a second past the
	// pause's deadline.
	time.Sleep(time.Until(paused.Deadline.Add(time.Second)))
	restarted := time.Now()
	c.srv.restart()
	listening := time.Now()
	ev.reconnect()

	if end := ev.waitEnd(); end != pipeline.StatusSucceeded {
		t.Fatalf("pipeline ended %s\n%s", end, c.srv.dump(id))
	}
	done := step(t, c.srv.get(id), "prod", "canary/1")
	if done.EndedAt.Before(restarted) || done.EndedAt.After(listening) {
		t.Errorf("the overdue pause ended at %v; want while the server started again, between %v and %v", done.EndedAt, restarted, listening)
	}
	ev.checkOnce()
	c.checkFinal("web:v2")
	c.srv.checkResumed(id, 0)
}

// TestKillDuringApproval kills the server while a canary awaits approval:
// after the restart it still does, and an approval then finishes it.
func TestKillDuringApproval(t *testing.T) {
	t.Parallel()
	c := newCase(t, `        - setWeight: 25
        - pause: {untilApproved: true}
        - setWeight: 100`)
	id, ev := c.upgrade()
	ev.waitStep("prod", "canary/1", pipeline.StatusAwaitingApproval)
	c.srv.kill()
	c.checkCanaryPods("web:v1", 3, "web:v2", 1)
	c.srv.restart()
	ev.reconnect()

	p := c.srv.get(id)
	if p.Status != pipeline.StatusAwaitingApproval || step(t, p, "prod", "canary/1").Status != pipeline.StatusAwaitingApproval {
		t.Fatalf("after the restart the pipeline is %s, want AWAITING_APPROVAL\n%s", p.Status, c.srv.dump(id))
	}
	c.checkCanaryPods("web:v1", 3, "web:v2", 1)
	c.srv.approve(id)
	if end := ev.waitEnd(); end != pipeline.StatusSucceeded {
		t.Fatalf("pipeline ended %s\n%s", end, c.srv.dump(id))
	}
	p = c.srv.get(id)
	if n := len(p.History); n < 2 || p.History[n-1].Action != "approve" || p.History[n-1].By == "" {
		t.Errorf("history does not record the approval: %+v", p.History)
	}
	ev.checkOnce()
	c.checkFinal("web:v2")
	c.srv.checkResumed(id, 0)
}

// TestKillWhilePodsRoll kills the server twice while a command is waiting
// for pods: during setWeight 25, with the canary (in the user's
// Deployment) at 0 of its 1 pod, and during the promotion, with 3 of its 4
// new pods up. A ResourceQuota on pods holds each rollout part-way, so the kills land
// mid-command whatever the cluster's speed; the quota is raised (then
// removed) while the server is down. Each time the restarted server issues
// the unanswered command again and the pipeline ends as if nothing happened.
func TestKillWhilePodsRoll(t *testing.T) {
	t.Parallel()
	c := newCase(t, `        - setWeight: 25
        - setWeight: 50`)
	c.firstDeployment("web:v1")
	// 4 pods run: the canary's first new one, in the user's Deployment,
	// does not fit.
	c.setPodQuota(4)

	id := c.srv.start(c.request("web:v2", ""))
	ev := c.follow(id)
	ev.waitStep("prod", "canary/0", pipeline.StatusRunning)
	c.waitDeployment("web", "the canary asking for its first pod", func(d *appsv1.Deployment) bool {
		return d.Spec.Template.Spec.Containers[0].Image == "web:v2" && replicas(d) == 1 && d.Status.ReadyReplicas == 0
	})
	c.srv.kill()
	c.checkOutstanding(id, "canary/0")
	// The canary steps need 1+4, then 2+3 pods: within 5. The promotion
	// (4 new beside the old 2) stalls at 3 of 4.
	c.setPodQuota(5)
	c.srv.restart()
	ev.reconnect()

	ev.waitStep("prod", "finalize", pipeline.StatusRunning)
	c.waitDeployment("web", "the new version at 3 of 4 pods", func(d *appsv1.Deployment) bool {
		return d.Spec.Template.Spec.Containers[0].Image == "web:v2" && replicas(d) == 4 && d.Status.ReadyReplicas == 3
	})
	c.srv.kill()
	c.checkOutstanding(id, "finalize")
	c.deletePodQuota()
	c.srv.restart()
	ev.reconnect()

	if end := ev.waitEnd(); end != pipeline.StatusSucceeded {
		t.Fatalf("pipeline ended %s\n%s", end, c.srv.dump(id))
	}
	if tg := c.srv.get(id).Targets[0]; tg.AchievedWeight != 100 {
		t.Errorf("achieved weight %d, want 100", tg.AchievedWeight)
	}
	ev.checkOnce()
	c.checkFinal("web:v2")
	c.srv.checkResumed(id, 1)
}

// TestKillDuringRollback kills the server while a rollback brings the old
// version back to full size (a pod quota holds it at 3 of 4): the restarted
// server rolls back again, and the cluster ends as before the pipeline.
func TestKillDuringRollback(t *testing.T) {
	t.Parallel()
	c := newCase(t, `        - setWeight: 25
        - pause: {untilApproved: true}
        - setWeight: 100`)
	id, ev := c.upgrade()
	ev.waitStep("prod", "canary/1", pipeline.StatusAwaitingApproval)
	c.setPodQuota(4) // the 3 old pods and the canary's one: no room for more
	c.srv.call("POST", api.Prefix+"/pipelines/"+id+"/rollback", api.ActionRequest{Target: "prod", Reason: "durability test"}, nil, http.StatusOK)
	ev.waitStep("prod", "rollback", pipeline.StatusRunning)
	// The canary runs inside the user's Deployment, the old version's
	// ReplicaSet held aside: the rollback scales that ReplicaSet back first.
	c.waitReplicaSet("the old version's ReplicaSet back at 4 replicas, 3 Ready", func(rs *appsv1.ReplicaSet) bool {
		return rs.Spec.Template.Spec.Containers[0].Image == "web:v1" && rs.Spec.Replicas != nil && *rs.Spec.Replicas == 4 && rs.Status.ReadyReplicas == 3
	})
	c.srv.kill()
	c.checkOutstanding(id, "rollback")
	c.deletePodQuota()
	c.srv.restart()
	ev.reconnect()

	ev.waitEnd()
	if tg := c.srv.get(id).Targets[0]; tg.Status != pipeline.StatusRolledBack {
		t.Fatalf("target ended %s (%s), want ROLLED_BACK\n%s", tg.Status, tg.Message, c.srv.dump(id))
	}
	ev.checkOnce()
	c.checkFinal("web:v1")
	c.srv.checkResumed(id, 1)
}

// TestKillDuringFailingFirstDeployment kills the server while the first
// deployment of an application waits for pods that never become Ready.
// After the restart the re-issued command applies the manifest again and
// waits on; a rollback then removes the Deployment the pipeline created, as
// it would have without the kill. (Repeating the apply once dropped the
// mark that says the pipeline created the Deployment, and the rollback left
// it behind.)
func TestKillDuringFailingFirstDeployment(t *testing.T) {
	t.Parallel()
	c := newCase(t, "        - setWeight: 100")
	req := c.request("web:broken", ", "+localkube.FailLabel+": ImagePullBackOff")

	id := c.srv.start(req)
	ev := c.follow(id)
	ev.waitStep("prod", "finalize", pipeline.StatusRunning)
	c.waitDeployment("web", "the Deployment created, its pods not Ready", func(d *appsv1.Deployment) bool {
		return d.Status.Replicas == 4 && d.Status.ReadyReplicas == 0
	})
	c.srv.kill()
	c.checkOutstanding(id, "finalize")
	// Someone scales the Deployment while the server is down. The re-issued
	// command applies the manifest again, which puts 4 replicas back: the
	// sign that it ran, before the rollback supersedes it.
	patch := []byte(`{"spec":{"replicas":1}}`)
	if _, err := kubetest.Client(t).AppsV1().Deployments(c.ns).Patch(context.Background(), "web", types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "durability-test"}); err != nil {
		t.Fatal(err)
	}
	c.srv.restart()
	ev.reconnect()
	c.waitDeployment("web", "the manifest applied again", func(d *appsv1.Deployment) bool { return replicas(d) == 4 })

	c.srv.call("POST", api.Prefix+"/pipelines/"+id+"/rollback", api.ActionRequest{Target: "prod", Reason: "pods never became Ready"}, nil, http.StatusOK)
	if end := ev.waitEnd(); end.Terminal() && end == pipeline.StatusSucceeded {
		t.Fatalf("pipeline ended %s after a rollback\n%s", end, c.srv.dump(id))
	}
	if tg := c.srv.get(id).Targets[0]; tg.Status != pipeline.StatusRolledBack {
		t.Errorf("target ended %s (%s), want ROLLED_BACK\n%s", tg.Status, tg.Message, c.srv.dump(id))
	}
	if ds, err := kubetest.Client(t).AppsV1().Deployments(c.ns).List(context.Background(), metav1.ListOptions{}); err != nil || len(ds.Items) != 0 {
		var names []string
		for _, d := range ds.Items {
			names = append(names, d.Name)
		}
		t.Errorf("deployments left after rolling back a first deployment: %v %v", names, err)
	}
	ev.checkOnce()
	c.srv.checkResumed(id, 1)
}

// testCase is one application deployed by one server into one namespace.
type testCase struct {
	t     *testing.T
	srv   *sortieServer
	ns    string
	steps string
}

func newCase(t *testing.T, steps string) *testCase {
	t.Helper()
	ns := kubetest.Namespace(t)
	return &testCase{t: t, ns: ns, steps: steps, srv: startServer(t)}
}

// request is the deployment as `sortie deploy start` sends it: the file and
// the manifest it names, from testdata. podLabels are more labels for the
// pod template, as YAML flow-mapping entries.
func (c *testCase) request(image, podLabels string) api.StartRequest {
	c.t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			c.t.Fatal(err)
		}
		return strings.NewReplacer("$NAMESPACE", c.ns, "$STEPS", c.steps, "$IMAGE", image, "$POD_LABELS", podLabels).Replace(string(b))
	}
	return api.StartRequest{
		FileName:  "deploy.yml",
		File:      read("deploy.yml"),
		Manifests: map[string]string{"manifests/web.yml": read("manifests/web.yml")},
	}
}

// upgrade deploys web:v1, then starts the canary to web:v2 and follows it.
func (c *testCase) upgrade() (string, *eventLog) {
	c.t.Helper()
	c.firstDeployment("web:v1")
	id := c.srv.start(c.request("web:v2", ""))
	return id, c.follow(id)
}

// firstDeployment deploys image (straight to 100 %) and waits for it.
func (c *testCase) firstDeployment(image string) {
	c.t.Helper()
	id := c.srv.start(c.request(image, ""))
	ev := c.follow(id)
	if end := ev.waitEnd(); end != pipeline.StatusSucceeded {
		c.t.Fatalf("first deployment ended %s\n%s", end, c.srv.dump(id))
	}
	ev.close()
	c.checkFinal(image)
}

func (c *testCase) follow(id string) *eventLog {
	l := &eventLog{t: c.t, srv: c.srv, id: id, changed: make(chan struct{}, 1)}
	l.reconnect()
	c.t.Cleanup(l.close)
	return l
}

// checkCanaryPods checks the Ready pods of each image.
func (c *testCase) checkCanaryPods(oldImage string, old int, newImage string, n int) {
	c.t.Helper()
	got := c.readyPods()
	if got[oldImage] != old || got[newImage] != n || len(got) != 2 {
		c.t.Errorf("ready pods by image: %v, want %d of %s and %d of %s", got, old, oldImage, n, newImage)
	}
}

func (c *testCase) readyPods() map[string]int {
	c.t.Helper()
	pods, err := kubetest.Client(c.t).CoreV1().Pods(c.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]int{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && podReady(&p) {
			out[p.Spec.Containers[0].Image]++
		}
	}
	return out
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// checkFinal checks the cluster after a successful pipeline: only the
// user's Deployment, on image, at full size, without Sortie's in-flight
// annotations; four Ready pods of image and no other; once the
// controllers' statuses caught up, the Deployment's saying it rolled out,
// and its ReplicaSets only, the current one alone holding pods.
func (c *testCase) checkFinal(image string) {
	c.t.Helper()
	ctx := context.Background()
	client := kubetest.Client(c.t)
	ds, err := client.AppsV1().Deployments(c.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	if len(ds.Items) != 1 || ds.Items[0].Name != "web" {
		var names []string
		for _, d := range ds.Items {
			names = append(names, d.Name)
		}
		c.t.Fatalf("deployments: %v, want only the user's web", names)
	}
	d := &ds.Items[0]
	if img := d.Spec.Template.Spec.Containers[0].Image; img != image || replicas(d) != 4 {
		c.t.Errorf("deployment web: image %s, %d replicas; want %s, 4 replicas", img, replicas(d), image)
	}
	// The pods at once; the statuses their controllers write may trail
	// the end of the pipeline, and must catch up.
	if got := c.readyPods(); got[image] != 4 || len(got) != 1 {
		c.t.Errorf("ready pods by image: %v, want 4 of %s only", got, image)
	}
	c.waitDeployment("web", "its status: 4 replicas, all updated and Ready", func(d *appsv1.Deployment) bool {
		s := d.Status
		return s.ObservedGeneration >= d.Generation && s.Replicas == 4 && s.UpdatedReplicas == 4 && s.ReadyReplicas == 4
	})
	for _, a := range []string{kube.AnnotationOriginalReplicas, kube.AnnotationPreviousTemplate} {
		if v, ok := d.Annotations[a]; ok {
			c.t.Errorf("deployment web still carries %s=%q", a, v)
		}
	}
	rss, err := client.AppsV1().ReplicaSets(c.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	current := 0
	for _, rs := range rss.Items {
		if !metav1.IsControlledBy(&rs, d) {
			c.t.Errorf("replicaset %s is not web's (owners %v): orphaned", rs.Name, rs.OwnerReferences)
			continue
		}
		n := int32(1)
		if rs.Spec.Replicas != nil {
			n = *rs.Spec.Replicas
		}
		if n == 0 && rs.Status.Replicas == 0 {
			continue
		}
		current++
		if img := rs.Spec.Template.Spec.Containers[0].Image; img != image || n != 4 || rs.Status.ReadyReplicas != 4 {
			c.t.Errorf("replicaset %s holds pods: image %s, %d replicas, %d ready; want only the current one, %s, 4 Ready", rs.Name, img, n, rs.Status.ReadyReplicas, image)
		}
	}
	if current != 1 {
		c.t.Errorf("%d replicasets hold pods, want 1", current)
	}
}

func replicas(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// waitDeployment watches a Deployment of the namespace until cond holds.
func (c *testCase) waitDeployment(name, what string, cond func(*appsv1.Deployment) bool) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	client := kubetest.Client(c.t)
	lw := cache.NewListWatchFromClient(client.AppsV1().RESTClient(), "deployments", c.ns, fields.OneTermEqualSelector("metadata.name", name))
	var last *appsv1.Deployment
	_, err := watchtools.UntilWithSync(ctx, lw, &appsv1.Deployment{}, nil, func(ev watch.Event) (bool, error) {
		d, ok := ev.Object.(*appsv1.Deployment)
		if !ok || ev.Type == watch.Deleted {
			return false, nil
		}
		last = d
		return cond(d), nil
	})
	if err != nil {
		c.t.Fatalf("deployment %s: waiting for %s: %v; last seen: %+v", name, what, err, lastStatus(last))
	}
}

// waitReplicaSet waits until a ReplicaSet of the case's namespace holds cond.
func (c *testCase) waitReplicaSet(what string, cond func(*appsv1.ReplicaSet) bool) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	client := kubetest.Client(c.t)
	lw := cache.NewListWatchFromClient(client.AppsV1().RESTClient(), "replicasets", c.ns, fields.Everything())
	seen := map[string]string{}
	_, err := watchtools.UntilWithSync(ctx, lw, &appsv1.ReplicaSet{}, nil, func(ev watch.Event) (bool, error) {
		rs, ok := ev.Object.(*appsv1.ReplicaSet)
		if !ok || ev.Type == watch.Deleted {
			return false, nil
		}
		seen[rs.Name] = fmt.Sprintf("%s: %d wanted, status %+v", rs.Spec.Template.Spec.Containers[0].Image, *rs.Spec.Replicas, rs.Status)
		return cond(rs), nil
	})
	if err != nil {
		c.t.Fatalf("waiting for %s: %v; last seen: %v", what, err, seen)
	}
}

func lastStatus(d *appsv1.Deployment) any {
	if d == nil {
		return "nothing"
	}
	return fmt.Sprintf("replicas %d, status %+v", replicas(d), d.Status)
}

const quotaName = "pods"

// setPodQuota creates or updates a ResourceQuota on the namespace's pod
// count and waits until the quota controller enforces that limit.
func (c *testCase) setPodQuota(pods int64) {
	c.t.Helper()
	ctx := context.Background()
	quotas := kubetest.Client(c.t).CoreV1().ResourceQuotas(c.ns)
	hard := corev1.ResourceList{corev1.ResourcePods: *resource.NewQuantity(pods, resource.DecimalSI)}
	q, err := quotas.Get(ctx, quotaName, metav1.GetOptions{})
	switch {
	case err == nil:
		q.Spec.Hard = hard
		_, err = quotas.Update(ctx, q, metav1.UpdateOptions{})
	default:
		_, err = quotas.Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: quotaName}, Spec: corev1.ResourceQuotaSpec{Hard: hard}}, metav1.CreateOptions{})
	}
	if err != nil {
		c.t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, waitLimit)
	defer cancel()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (k8sruntime.Object, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", quotaName).String()
			return quotas.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", quotaName).String()
			return quotas.Watch(ctx, o)
		},
	}
	_, err = watchtools.UntilWithSync(wctx, lw, &corev1.ResourceQuota{}, nil, func(ev watch.Event) (bool, error) {
		q, ok := ev.Object.(*corev1.ResourceQuota)
		if !ok {
			return false, nil
		}
		h, used := q.Status.Hard[corev1.ResourcePods], q.Status.Used[corev1.ResourcePods]
		_, counted := q.Status.Used[corev1.ResourcePods]
		return h.Value() == pods && counted && used.Value() >= 0, nil
	})
	if err != nil {
		c.t.Fatalf("quota of %d pods not in force: %v", pods, err)
	}
}

func (c *testCase) deletePodQuota() {
	c.t.Helper()
	if err := kubetest.Client(c.t).CoreV1().ResourceQuotas(c.ns).Delete(context.Background(), quotaName, metav1.DeleteOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

// checkOutstanding reads the killed server's database: the command of step
// was saved as sent and not answered, so the restart must send it again.
func (c *testCase) checkOutstanding(id, stepID string) {
	c.t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(c.srv.dataDir, "sortie.db"), sqlite.Options{})
	if err != nil {
		c.t.Fatal(err)
	}
	defer st.Close()
	p, err := st.GetPipeline(ctx, store.DefaultTenant, id)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, cmd := range p.State.Outstanding {
		if cmd.Step == stepID {
			return
		}
	}
	c.t.Fatalf("at the kill, the command of %s was not outstanding: %+v", stepID, p.State.Outstanding)
}

func step(t *testing.T, p api.PipelineView, target, id string) pipeline.StepState {
	t.Helper()
	for _, tg := range p.Targets {
		if tg.Name != target {
			continue
		}
		if s := tg.Step(id); s != nil {
			return *s
		}
	}
	t.Fatalf("pipeline %s has no step %s/%s", p.ID, target, id)
	return pipeline.StepState{}
}

// sortieServer is `sortie dev` as a child process, on one data directory
// and address across restarts.
type sortieServer struct {
	t          *testing.T
	bin        string
	dataDir    string
	addr       string
	kubeconfig string
	token      string
	log        *lockedBuffer // every run's output

	cmd    *exec.Cmd
	exited chan struct{}
}

func startServer(t *testing.T) *sortieServer {
	t.Helper()
	s := &sortieServer{
		t:          t,
		bin:        sortieBinary(t),
		dataDir:    t.TempDir(),
		addr:       freeAddr(t),
		kubeconfig: kubetest.Cluster(t).Kubeconfig,
		log:        &lockedBuffer{},
	}
	t.Cleanup(func() {
		if s.cmd != nil {
			s.kill()
		}
		if t.Failed() {
			t.Logf("sortie output:\n%s", s.log.String())
		}
	})
	s.run()
	s.token = s.newToken()
	return s
}

// run starts the process and returns once it listens.
func (s *sortieServer) run() {
	s.t.Helper()
	cmd := exec.Command(s.bin, "dev", "--kubeconfig", s.kubeconfig, "--account", "local",
		"--data-dir", s.dataDir, "--addr", s.addr, "--log-level", "debug")
	// Nothing outlives the test, even a test binary that is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout = s.log
	stderr, err := cmd.StderrPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	fmt.Fprintf(s.log, "--- %s start\n", time.Now().Format(time.RFC3339Nano))
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(s.log, line)
			if strings.Contains(line, "sortie server listening") {
				once.Do(func() { close(ready) })
			}
		}
		_ = cmd.Wait()
		close(s.exited)
	}()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	select {
	case <-ready:
	case <-s.exited:
		s.cmd = nil
		s.t.Fatalf("sortie dev exited before listening:\n%s", s.log.String())
	case <-timer.C:
		s.t.Fatalf("sortie dev did not listen within %s:\n%s", waitLimit, s.log.String())
	}
}

// kill SIGKILLs the server and waits until it is gone.
func (s *sortieServer) kill() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Fatal(err)
	}
	<-s.exited
	fmt.Fprintf(s.log, "--- %s killed\n", time.Now().Format(time.RFC3339Nano))
	s.cmd = nil
}

// restart starts the server again on the same data directory and address.
// The token from before the kill must still work: keys are persisted.
func (s *sortieServer) restart() {
	s.t.Helper()
	s.run()
}

func (s *sortieServer) url(path string) string { return "http://" + s.addr + path }

// newToken logs in as the bootstrap admin, as `sortie login
// --credentials-file` does.
func (s *sortieServer) newToken() string {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dataDir, auth.AdminCredentialsFile))
	if err != nil {
		s.t.Fatal(err)
	}
	var cf auth.CredentialsFile
	if err := json.Unmarshal(b, &cf); err != nil {
		s.t.Fatal(err)
	}
	if cf.Server != "http://"+s.addr {
		s.t.Errorf("credentials file names server %q, want http://%s", cf.Server, s.addr)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {cf.ClientID}, "client_secret": {cf.ClientSecret}}
	resp, err := http.PostForm(s.url(auth.TokenPath), form)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		s.t.Fatalf("token: %s: %s", resp.Status, body)
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		s.t.Fatalf("token: %v", err)
	}
	return tok.AccessToken
}

// call sends a JSON request and decodes a JSON answer of status want.
func (s *sortieServer) call(method, path string, body, out any, want int) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url(path), rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	if resp.StatusCode != want {
		s.t.Fatalf("%s %s: %s, want %d: %s", method, path, resp.Status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

func (s *sortieServer) start(req api.StartRequest) string {
	s.t.Helper()
	var res api.StartResult
	s.call("POST", api.Prefix+"/pipelines", req, &res, http.StatusAccepted)
	if res.PipelineID == "" {
		s.t.Fatalf("start answered no pipeline id: %+v", res)
	}
	return res.PipelineID
}

func (s *sortieServer) get(id string) api.PipelineView {
	s.t.Helper()
	var v api.PipelineView
	s.call("GET", api.Prefix+"/pipelines/"+id, nil, &v, http.StatusOK)
	return v
}

func (s *sortieServer) approve(id string) {
	s.t.Helper()
	s.call("POST", api.Prefix+"/pipelines/"+id+"/approve", api.ActionRequest{}, nil, http.StatusOK)
}

func (s *sortieServer) dump(id string) string {
	p := s.get(id)
	var b strings.Builder
	fmt.Fprintf(&b, "pipeline %s: %s %s\n", p.ID, p.Status, p.Message)
	for _, t := range p.Targets {
		fmt.Fprintf(&b, "  target %s: %s %s\n", t.Name, t.Status, t.Message)
		steps := t.Steps
		if t.Rollback != nil {
			steps = append(steps, *t.Rollback)
		}
		for _, st := range steps {
			fmt.Fprintf(&b, "    %s: %s %s\n", st.ID, st.Status, st.Message)
		}
	}
	return b.String()
}

// checkResumed checks that every restart resumed the pipeline, with
// outstanding unanswered commands each time.
func (s *sortieServer) checkResumed(id string, outstanding int) {
	s.t.Helper()
	want := fmt.Sprintf("pipeline=%s", id)
	n := 0
	for line := range strings.SplitSeq(s.log.String(), "\n") {
		if strings.Contains(line, "resuming pipeline") && strings.Contains(line, want) {
			n++
			if !strings.Contains(line, "outstanding="+strconv.Itoa(outstanding)) {
				s.t.Errorf("resumed with other than %d outstanding commands: %s", outstanding, line)
			}
		}
	}
	if n == 0 {
		s.t.Errorf("the server never logged resuming pipeline %s", id)
	}
}

// eventLog follows a pipeline's Server-Sent Events across restarts,
// resuming each stream after the last event it saw.
type eventLog struct {
	t   *testing.T
	srv *sortieServer
	id  string

	mu      sync.Mutex
	events  []store.Event
	gaps    []string
	cancel  context.CancelFunc
	changed chan struct{}
	next    int // the first event waitFor has not looked at
}

// reconnect (re)opens the stream after the last event received.
func (l *eventLog) reconnect() {
	l.t.Helper()
	l.close()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", l.srv.url(api.Prefix+"/pipelines/"+l.id+"/events"), nil)
	if err != nil {
		cancel()
		l.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+l.srv.token)
	l.mu.Lock()
	if n := len(l.events); n > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(l.events[n-1].Seq, 10))
	}
	l.cancel = cancel
	l.mu.Unlock()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		l.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		l.t.Fatalf("event stream: %s: %s", resp.Status, b)
	}
	go l.read(resp.Body)
}

func (l *eventLog) read(body io.ReadCloser) {
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev store.Event
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			l.mu.Lock()
			l.gaps = append(l.gaps, fmt.Sprintf("undecodable event %q: %v", data, err))
			l.mu.Unlock()
			continue
		}
		l.mu.Lock()
		if n := len(l.events); (n == 0 && ev.Seq != 1) || (n > 0 && ev.Seq != l.events[n-1].Seq+1) {
			l.gaps = append(l.gaps, fmt.Sprintf("event %d after %d", ev.Seq, len(l.events)))
		}
		l.events = append(l.events, ev)
		l.mu.Unlock()
		select {
		case l.changed <- struct{}{}:
		default:
		}
	}
}

func (l *eventLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancel != nil {
		l.cancel()
		l.cancel = nil
	}
}

// waitFor waits for the next event after those already looked at for
// which match holds.
func (l *eventLog) waitFor(what string, match func(store.Event) bool) store.Event {
	l.t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		l.mu.Lock()
		for l.next < len(l.events) {
			ev := l.events[l.next]
			l.next++
			if match(ev) {
				l.mu.Unlock()
				return ev
			}
		}
		l.mu.Unlock()
		select {
		case <-l.changed:
		case <-timer.C:
			l.t.Fatalf("pipeline %s: no event %s within %s\n%s", l.id, what, waitLimit, l.srv.dump(l.id))
		}
	}
}

func statusChange(ev store.Event) (pipeline.Change, bool) {
	var c pipeline.Change
	if ev.Type != "status" || json.Unmarshal(ev.Data, &c) != nil {
		return c, false
	}
	return c, true
}

func (l *eventLog) waitStep(target, stepID string, to pipeline.Status) {
	l.t.Helper()
	l.waitFor(fmt.Sprintf("%s/%s → %s", target, stepID, to), func(ev store.Event) bool {
		c, ok := statusChange(ev)
		return ok && c.Target == target && c.Step == stepID && c.To == to
	})
}

// waitEnd waits for the pipeline to end and returns how.
func (l *eventLog) waitEnd() pipeline.Status {
	l.t.Helper()
	ev := l.waitFor("ending the pipeline", func(ev store.Event) bool {
		c, ok := statusChange(ev)
		return ok && c.Target == "" && c.To.Terminal()
	})
	c, _ := statusChange(ev)
	return c.To
}

// checkOnce checks the whole log: no gap or repeat in the sequence, every
// step left QUEUED once and ran (RUNNING, PAUSED or AWAITING_APPROVAL) from
// then on without starting again, and every command got one result.
func (l *eventLog) checkOnce() {
	l.t.Helper()
	stored := l.stored()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, g := range l.gaps {
		l.t.Errorf("event stream: %s", g)
	}
	if len(stored) != len(l.events) {
		l.t.Errorf("the stream delivered %d events, the store holds %d", len(l.events), len(stored))
	}
	started := map[string]int{}
	running := map[string]int{}
	results := map[string]int{}
	for _, ev := range stored {
		if c, ok := statusChange(ev); ok && c.Step != "" {
			k := c.Target + "/" + c.Step
			if c.From == pipeline.StatusQueued && c.To.Active() {
				started[k]++
			}
			if c.To == pipeline.StatusRunning {
				running[k]++
			}
		}
		if ev.Type == "command" {
			var r pipeline.CommandResult
			if err := json.Unmarshal(ev.Data, &r); err != nil {
				l.t.Errorf("command event %d: %v", ev.Seq, err)
			}
			results[r.CommandID]++
		}
	}
	for k, n := range started {
		if n != 1 {
			l.t.Errorf("step %s started %d times", k, n)
		}
	}
	for k, n := range running {
		if n != 1 {
			l.t.Errorf("step %s went RUNNING %d times", k, n)
		}
	}
	for id, n := range results {
		if n != 1 {
			l.t.Errorf("command %s has %d results", id, n)
		}
	}
	if len(results) == 0 {
		l.t.Error("no command results in the event log")
	}
}

// stored reads the event log as the JSON list, for comparison with what
// the stream delivered.
func (l *eventLog) stored() []store.Event {
	l.t.Helper()
	var list api.EventList
	l.srv.call("GET", api.Prefix+"/pipelines/"+l.id+"/events", nil, &list, http.StatusOK)
	return list.Events
}

// lockedBuffer is a bytes.Buffer safe for the output goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// sortieBinary builds ./cmd/sortie once per test run into a directory of
// its own, named after this process, and removes such directories left by
// runs that are over.
func sortieBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		removeStaleBuilds()
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("%s%d", buildPrefix, os.Getpid()))
		if buildErr = os.MkdirAll(dir, 0o700); buildErr != nil {
			return
		}
		binPath = filepath.Join(dir, "sortie")
		cmd := exec.Command(goTool(), "build", "-o", binPath, "github.com/sortie-cd/sortie/cmd/sortie")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/sortie: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

const buildPrefix = "sortie-servertest-"

func removeStaleBuilds() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), buildPrefix+"*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), buildPrefix))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(build.Default.GOROOT, "bin", "go")
}
