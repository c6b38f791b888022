package kube_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/kubetest"
)

// hpaManager is the field manager the test scales with, as the HPA
// controller would (through the scale subresource): no metrics server runs
// on the local cluster, so the real HPA controller only holds the count
// within its bounds and the test plays its decisions.
const hpaManager = "horizontal-pod-autoscaler-test"

// autoscaledManifests is the sample application with a HorizontalPodAutoscaler
// (2 to 10 replicas) on its Deployment.
func autoscaledManifests(t *testing.T, image string) []*unstructured.Unstructured {
	t.Helper()
	hpa, err := kube.Decode([]byte(`
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 10
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}
`))
	if err != nil {
		t.Fatal(err)
	}
	return append(manifests(t, image, 4, ""), hpa...)
}

// scaleAsHPA sets the Deployment's count through its scale subresource and
// waits until that many pods are Ready.
func scaleAsHPA(t *testing.T, ns string, n int32) {
	t.Helper()
	c := kubetest.Client(t).AppsV1().Deployments(ns)
	s := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: n}}
	if _, err := c.UpdateScale(context.Background(), "web", s, metav1.UpdateOptions{FieldManager: hpaManager}); err != nil {
		t.Fatal(err)
	}
	kubetest.Until(t, ns, "the autoscaled deployment runs its new count", time.Minute, func() bool {
		d, err := c.Get(context.Background(), "web", metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == n && d.Status.Replicas == n && d.Status.ObservedGeneration >= d.Generation
	})
}

// userCount is the user's Deployment's spec.replicas, and whether its HPA
// still targets it.
func userCount(t *testing.T, ns string) (int32, bool) {
	t.Helper()
	d := deployments(t, ns)["web"]
	hpa, err := kubetest.Client(t).AutoscalingV2().HorizontalPodAutoscalers(ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return *d.Spec.Replicas, hpa.Spec.ScaleTargetRef.Name == "web" && hpa.Spec.ScaleTargetRef.Kind == "Deployment"
}

// TestAutoscaledCanaryLeavesTheCountToTheHPA drives a canary of a
// Deployment an HPA scales: the split is based on the live count, follows
// the HPA when it scales mid-canary, and neither a promotion nor a rollback
// writes the count the HPA set.
func TestAutoscaledCanaryLeavesTheCountToTheHPA(t *testing.T) {
	e := newExecutor(t)
	ns := kubetest.Namespace(t)
	if _, err := e.Finalize(ctxFor(t), target(ns, "p1", autoscaledManifests(t, "web:v1"))); err != nil {
		t.Fatal(err)
	}
	scaleAsHPA(t, ns, 6)

	v2 := target(ns, "p2", autoscaledManifests(t, "web:v2"))
	step := func(weight int, wantNew, wantOld int) {
		t.Helper()
		p, err := e.SetWeight(ctxFor(t), v2, weight)
		if err != nil {
			t.Fatalf("weight %d: %v", weight, err)
		}
		if got := readyByImage(t, ns); got["web:v2"] != wantNew || got["web:v1"] != wantOld {
			t.Errorf("weight %d: ready pods by image %v, want %d new beside %d old", weight, got, wantNew, wantOld)
		}
		if int(p.NewPods) != wantNew || int(p.OldPods) != wantOld {
			t.Errorf("weight %d: progress %+v", weight, p)
		}
	}
	step(25, 2, 6) // ceil(6·25/75): 2 of 8 pods
	if n, _ := userCount(t, ns); n != 6 {
		t.Errorf("the canary changed the autoscaled count to %d, want the HPA's 6", n)
	}
	scaleAsHPA(t, ns, 8) // load grows mid-canary
	step(50, 8, 8)       // the share follows the HPA's new count
	scaleAsHPA(t, ns, 3)
	step(50, 3, 3) // and when it shrinks, the same step again resizes the canary
	step(75, 9, 3)

	// A rollback leaves the count as the HPA set it.
	if _, err := e.Rollback(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
	if n, targeted := userCount(t, ns); n != 3 || !targeted {
		t.Errorf("after the rollback: count %d (want the HPA's 3), HPA still targets the deployment: %v", n, targeted)
	}
	if got := readyByImage(t, ns); got["web:v1"] != 3 || len(got) != 1 {
		t.Errorf("ready pods after the rollback: %v", got)
	}

	// A canary to 100 % and its promotion keep the HPA's count too.
	v3 := target(ns, "p3", autoscaledManifests(t, "web:v3"))
	for _, w := range []int{50, 100} {
		if _, err := e.SetWeight(ctxFor(t), v3, w); err != nil {
			t.Fatalf("weight %d: %v", w, err)
		}
	}
	if got := readyByImage(t, ns); got["web:v3"] != 3 || len(got) != 1 {
		t.Errorf("ready pods at 100 %%: %v, want the HPA's 3 of the new version", got)
	}
	scaleAsHPA(t, ns, 5)
	if _, err := e.Finalize(ctxFor(t), v3); err != nil {
		t.Fatal(err)
	}
	ds := deployments(t, ns)
	if len(ds) != 1 {
		t.Errorf("deployments after promotion: %v, want only the user's", keys(ds))
	}
	if n, targeted := userCount(t, ns); n != 5 || !targeted {
		t.Errorf("after the promotion: count %d (want the HPA's 5), HPA still targets the deployment: %v", n, targeted)
	}
	if got := readyByImage(t, ns); got["web:v3"] != 5 || len(got) != 1 {
		t.Errorf("ready pods after the promotion: %v", got)
	}
	for _, a := range []string{kube.AnnotationOriginalReplicas, kube.AnnotationPreviousTemplate} {
		if _, ok := ds["web"].Annotations[a]; ok {
			t.Errorf("annotation %s left on the deployment", a)
		}
	}
	// Sortie's own field manager no longer owns the count, so no later
	// apply of the file can reset it.
	for _, m := range ds["web"].ManagedFields {
		if m.Manager == kube.FieldManager && m.Operation == metav1.ManagedFieldsOperationApply && m.FieldsV1 != nil &&
			ownsSpecField(m.FieldsV1.GetRawBytes(), "replicas") {
			t.Errorf("Sortie's apply still owns spec.replicas: %s", m.FieldsV1.GetRawString())
		}
	}
	// Scaling after the promotion is the HPA's alone: a redeploy of the
	// same file changes nothing.
	scaleAsHPA(t, ns, 7)
	if _, err := e.SetWeight(ctxFor(t), target(ns, "p4", autoscaledManifests(t, "web:v3")), 25); err != nil {
		t.Fatal(err)
	}
	if n, _ := userCount(t, ns); n != 7 {
		t.Errorf("a redeploy of the same version changed the autoscaled count to %d, want 7", n)
	}
}

// TestAutoscaledRollbackAfterFullWeight rolls back a canary that reached
// 100 % under an HPA (the new template already in the user's Deployment):
// the old template comes back at the HPA's count.
func TestAutoscaledRollbackAfterFullWeight(t *testing.T) {
	e := newExecutor(t)
	ns := kubetest.Namespace(t)
	if _, err := e.Finalize(ctxFor(t), target(ns, "p1", autoscaledManifests(t, "web:v1"))); err != nil {
		t.Fatal(err)
	}
	scaleAsHPA(t, ns, 3)
	v2 := target(ns, "p2", autoscaledManifests(t, "web:v2"))
	for _, w := range []int{25, 100, 100} { // 100 twice, as after a restart
		if _, err := e.SetWeight(ctxFor(t), v2, w); err != nil {
			t.Fatalf("weight %d: %v", w, err)
		}
	}
	if _, err := e.Rollback(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
	if got := readyByImage(t, ns); got["web:v1"] != 3 || len(got) != 1 {
		t.Errorf("ready pods after rolling back from 100 %%: %v, want web:v1 ×3", got)
	}
	if n, targeted := userCount(t, ns); n != 3 || !targeted {
		t.Errorf("after the rollback: count %d, HPA targets the deployment: %v", n, targeted)
	}
}

// ownsSpecField reports whether a managedFields entry's fields hold
// spec.<field>.
func ownsSpecField(raw []byte, field string) bool {
	var fields struct {
		Spec map[string]json.RawMessage `json:"f:spec"`
	}
	if err := json.Unmarshal(raw, &fields); err != nil {
		return false
	}
	_, ok := fields.Spec["f:"+field]
	return ok
}

func TestCanaryPodsBeside(t *testing.T) {
	for _, c := range []struct {
		n     int32
		w     int
		limit int32
		want  int32
	}{
		{6, 25, 10, 2}, {8, 50, 10, 8}, {3, 75, 10, 9}, {4, 75, 10, 10}, {4, 1, 0, 1}, {4, 0, 10, 0},
		{0, 50, 10, 0}, {4, 50, 0, 4}, {2, 99, 0, 198}, {4, 100, 10, 10},
	} {
		if got := kube.CanaryPodsBeside(c.n, c.w, c.limit); got != c.want {
			t.Errorf("CanaryPodsBeside(%d, %d, %d) = %d, want %d", c.n, c.w, c.limit, got, c.want)
		}
	}
}

// TestAutoscaledCountSurvivesTheHandover promotes a new version of a
// Deployment whose count Sortie's own apply set (the HPA came with the file
// and never had to scale): leaving spec.replicas out of the apply must not
// reset the count to the default of 1.
func TestAutoscaledCountSurvivesTheHandover(t *testing.T) {
	e := newExecutor(t)
	ns := kubetest.Namespace(t)
	if _, err := e.Finalize(ctxFor(t), target(ns, "p1", autoscaledManifests(t, "web:v1"))); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Finalize(ctxFor(t), target(ns, "p2", autoscaledManifests(t, "web:v2"))); err != nil {
		t.Fatal(err)
	}
	if n, _ := userCount(t, ns); n != 4 {
		t.Errorf("after the promotion the count is %d, want the 4 it had", n)
	}
	if got := readyByImage(t, ns); got["web:v2"] != 4 || len(got) != 1 {
		t.Errorf("ready pods after the promotion: %v, want web:v2 ×4", got)
	}
}
