package kube_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/localkube"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

func newExecutor(t *testing.T) *kube.Executor {
	t.Helper()
	e, err := kube.New(kubetest.Config(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// manifests renders the sample application: a Deployment of the given
// image and replicas, and a Service.
func manifests(t *testing.T, image string, replicas int, extraPodLabels string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := kube.Decode(fmt.Appendf(nil, `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: %d
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web%s}
    spec:
      containers:
      - name: web
        image: %s
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: somewhere-else
data:
  greeting: hello
`, replicas, extraPodLabels, image))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func target(ns, pipeline string, objs []*unstructured.Unstructured) *kube.Target {
	return &kube.Target{Application: "web", Pipeline: pipeline, Target: "staging", Namespace: ns, Objects: objs}
}

// readyByImage counts Ready pods per image in ns.
func readyByImage(t *testing.T, ns string) map[string]int { return kubetest.ReadyByImage(t, ns) }

func deployments(t *testing.T, ns string) map[string]*appsv1.Deployment {
	t.Helper()
	list, err := kubetest.Client(t).AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*appsv1.Deployment{}
	for i := range list.Items {
		out[list.Items[i].Name] = &list.Items[i]
	}
	return out
}

// activeReplicaSets lists the ReplicaSets in ns that still want pods.
func activeReplicaSets(t *testing.T, ns string) []string {
	t.Helper()
	list, err := kubetest.Client(t).AppsV1().ReplicaSets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rs := range list.Items {
		if rs.Spec.Replicas == nil || *rs.Spec.Replicas > 0 {
			out = append(out, rs.Name)
		}
	}
	return out
}

func deployV1(t *testing.T, e *kube.Executor, ns string) {
	t.Helper()
	p, err := e.Finalize(ctxFor(t), target(ns, "p1", manifests(t, "web:v1", 4, "")))
	if err != nil {
		t.Fatal(err)
	}
	if p.AchievedWeight != 100 || p.NewPods != 4 {
		t.Fatalf("first deployment progress = %+v, want 4 new pods at 100%%", p)
	}
}

func TestFirstDeploymentGoesStraightToFullSize(t *testing.T) {
	e := newExecutor(t)
	ns := kubetest.Namespace(t)
	p, err := e.SetWeight(ctxFor(t), target(ns, "p1", manifests(t, "web:v1", 3, "")), 25)
	if err != nil {
		t.Fatal(err)
	}
	if p.AchievedWeight != 100 || p.NewPods != 3 || p.OldPods != 0 {
		t.Errorf("progress = %+v, want 3 new pods, achieved 100", p)
	}
	if got := readyByImage(t, ns); got["web:v1"] != 3 || len(got) != 1 {
		t.Errorf("ready pods by image = %v", got)
	}
	d := deployments(t, ns)["web"]
	for _, k := range []string{kube.LabelApplication, kube.LabelTarget, kube.LabelVersion, kube.LabelPipeline} {
		if d.Spec.Template.Labels[k] == "" {
			t.Errorf("pod template lacks label %s: %v", k, d.Spec.Template.Labels)
		}
	}
	// The ConfigMap's namespace was forced to the target's.
	if _, err := kubetest.Client(t).CoreV1().ConfigMaps(ns).Get(context.Background(), "web-config", metav1.GetOptions{}); err != nil {
		t.Errorf("config map not applied into the target namespace: %v", err)
	}
}

func TestCanaryPodCountsAndPromotion(t *testing.T) {
	e := newExecutor(t)
	ns := kubetest.Namespace(t)
	deployV1(t, e, ns)
	v2 := target(ns, "p2", manifests(t, "web:v2", 4, ""))
	for _, step := range []struct {
		weight, newPods, oldPods, achieved int
	}{
		{25, 1, 3, 25},
		{50, 2, 2, 50},
		{60, 3, 1, 75}, // ceil(4·60/100) = 3
	} {
		p, err := e.SetWeight(ctxFor(t), v2, step.weight)
		if err != nil {
			t.Fatalf("weight %d: %v", step.weight, err)
		}
		if int(p.NewPods) != step.newPods || int(p.OldPods) != step.oldPods || p.AchievedWeight != step.achieved || p.RequestedWeight != step.weight {
			t.Errorf("weight %d: progress %+v, want new=%d old=%d achieved=%d", step.weight, p, step.newPods, step.oldPods, step.achieved)
		}
		got := readyByImage(t, ns)
		if got["web:v2"] != step.newPods || got["web:v1"] != step.oldPods {
			t.Errorf("weight %d: ready pods by image %v", step.weight, got)
		}
	}
	if _, err := e.Finalize(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
	ds := deployments(t, ns)
	if len(ds) != 1 || ds["web"] == nil {
		t.Fatalf("deployments after promotion: %v, want only the user's", keys(ds))
	}
	web := ds["web"]
	if img := web.Spec.Template.Spec.Containers[0].Image; img != "web:v2" || *web.Spec.Replicas != 4 {
		t.Errorf("user's deployment runs %s ×%d, want web:v2 ×4", img, *web.Spec.Replicas)
	}
	for _, a := range []string{kube.AnnotationOriginalReplicas, kube.AnnotationPreviousTemplate} {
		if _, ok := web.Annotations[a]; ok {
			t.Errorf("annotation %s left on the deployment", a)
		}
	}
	if got := readyByImage(t, ns); got["web:v2"] != 4 || len(got) != 1 {
		t.Errorf("ready pods by image after promotion: %v", got)
	}
	if rs := activeReplicaSets(t, ns); len(rs) != 1 {
		t.Errorf("replica sets still wanting pods: %v, want one", rs)
	}
	// Running the same file again changes nothing.
	gen := web.Generation
	if _, err := e.SetWeight(ctxFor(t), target(ns, "p3", manifests(t, "web:v2", 4, "")), 25); err != nil {
		t.Fatal(err)
	}
	if again := deployments(t, ns)["web"]; again.Generation != gen || len(deployments(t, ns)) != 1 {
		t.Errorf("a redeploy of the same version changed the deployment (generation %d → %d)", gen, again.Generation)
	}
}

func TestCanaryRollbackRestoresTheDeployment(t *testing.T) {
	e := newExecutor(t)
	ns := kubetest.Namespace(t)
	deployV1(t, e, ns)
	before := deployments(t, ns)["web"]
	v2 := target(ns, "p2", manifests(t, "web:v2", 4, ""))
	if _, err := e.SetWeight(ctxFor(t), v2, 50); err != nil {
		t.Fatal(err)
	}
	p, err := e.Rollback(ctxFor(t), v2)
	if err != nil {
		t.Fatal(err)
	}
	if p.NewPods != 0 || p.OldPods != 4 {
		t.Errorf("progress after rollback = %+v", p)
	}
	after := deployments(t, ns)
	if len(after) != 1 {
		t.Fatalf("deployments after rollback: %v", keys(after))
	}
	web := after["web"]
	if *web.Spec.Replicas != *before.Spec.Replicas || web.Spec.Template.Spec.Containers[0].Image != "web:v1" {
		t.Errorf("deployment after rollback: %s ×%d", web.Spec.Template.Spec.Containers[0].Image, *web.Spec.Replicas)
	}
	if len(web.Annotations[kube.AnnotationOriginalReplicas]) != 0 {
		t.Errorf("annotation left after rollback")
	}
	if got := readyByImage(t, ns); got["web:v1"] != 4 || len(got) != 1 {
		t.Errorf("ready pods after rollback: %v", got)
	}
	// Rolling back twice is harmless.
	if _, err := e.Rollback(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
}

func TestRollbackOfFirstDeploymentRemovesIt(t *testing.T) {
	e := newExecutor(t)
	ns := kubetest.Namespace(t)
	tg := target(ns, "p1", manifests(t, "web:v1", 2, ""))
	if _, err := e.SetWeight(ctxFor(t), tg, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Rollback(ctxFor(t), tg); err != nil {
		t.Fatal(err)
	}
	if ds := deployments(t, ns); len(ds) != 0 {
		t.Errorf("deployments left after rolling back a first deployment: %v", keys(ds))
	}
	if got := readyByImage(t, ns); len(got) != 0 {
		t.Errorf("pods left: %v", got)
	}
}

func TestNotReadyReportsTheReason(t *testing.T) {
	e := newExecutor(t)
	ns := kubetest.Namespace(t)
	deployV1(t, e, ns)
	bad := target(ns, "p2", manifests(t, "web:nope", 4, ", "+localkube.FailLabel+": ImagePullBackOff"))
	// The deployment timeout, as the engine sets it, is a context deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := e.SetWeight(ctx, bad, 25)
	var nre *kube.NotReadyError
	if !errors.As(err, &nre) {
		t.Fatalf("err = %v, want a NotReadyError", err)
	}
	if !strings.Contains(err.Error(), "ImagePullBackOff") || !strings.Contains(err.Error(), "web:nope") {
		t.Errorf("error does not say why: %v", err)
	}
	if _, err := e.Rollback(ctxFor(t), bad); err != nil {
		t.Fatal(err)
	}
	if got := readyByImage(t, ns); got["web:v1"] != 4 || len(got) != 1 {
		t.Errorf("ready pods after rolling back the broken version: %v", got)
	}
	if ds := deployments(t, ns); len(ds) != 1 {
		t.Errorf("deployments left: %v", keys(ds))
	}
}

func blueGreen(t *testing.T, ns, pipeline, image string) *kube.Target {
	objs := manifests(t, image, 3, "")
	preview, err := kube.Decode([]byte(`
apiVersion: v1
kind: Service
metadata: {name: web-preview}
spec:
  selector: {app: web}
  ports: [{port: 80}]
`))
	if err != nil {
		t.Fatal(err)
	}
	tg := target(ns, pipeline, append(objs, preview...))
	tg.ActiveService, tg.PreviewService = "web", "web-preview"
	return tg
}

// servedImages returns the images of the pods a Service selects.
func servedImages(t *testing.T, ns, svc string) map[string]int {
	t.Helper()
	s, err := kubetest.Client(t).CoreV1().Services(ns).Get(context.Background(), svc, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return selected(t, ns, s.Spec.Selector)
}

func TestBlueGreenRedirectAndPromote(t *testing.T) {
	e := newExecutor(t)
	ns := kubetest.Namespace(t)
	if _, err := e.Finalize(ctxFor(t), blueGreen(t, ns, "p1", "web:v1")); err != nil {
		t.Fatal(err)
	}
	v2 := blueGreen(t, ns, "p2", "web:v2")
	if _, err := e.DeployPreview(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
	if got := servedImages(t, ns, "web"); got["web:v1"] != 3 || len(got) != 1 {
		t.Errorf("active serves %v during preview, want only web:v1", got)
	}
	if got := servedImages(t, ns, "web-preview"); got["web:v2"] != 3 || len(got) != 1 {
		t.Errorf("preview serves %v, want only web:v2", got)
	}
	if _, err := e.RedirectActive(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
	if got := servedImages(t, ns, "web"); got["web:v2"] != 3 || len(got) != 1 {
		t.Errorf("active serves %v after redirect, want only web:v2", got)
	}
	if _, err := e.Finalize(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
	if got := servedImages(t, ns, "web"); got["web:v2"] != 3 || len(got) != 1 {
		t.Errorf("active serves %v after promotion", got)
	}
	svc, err := kubetest.Client(t).CoreV1().Services(ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Spec.Selector) != 1 || svc.Spec.Selector["app"] != "web" {
		t.Errorf("active selector after promotion = %v, want the user's own", svc.Spec.Selector)
	}
	if ds := deployments(t, ns); len(ds) != 1 || ds["web"].Spec.Template.Spec.Containers[0].Image != "web:v2" {
		t.Errorf("deployments after promotion: %v", keys(ds))
	}
}

func TestBlueGreenRollbackFlipsBack(t *testing.T) {
	e := newExecutor(t)
	ns := kubetest.Namespace(t)
	if _, err := e.Finalize(ctxFor(t), blueGreen(t, ns, "p1", "web:v1")); err != nil {
		t.Fatal(err)
	}
	v2 := blueGreen(t, ns, "p2", "web:v2")
	if _, err := e.DeployPreview(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RedirectActive(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Rollback(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
	if got := servedImages(t, ns, "web"); got["web:v1"] != 3 || len(got) != 1 {
		t.Errorf("active serves %v after rollback, want web:v1", got)
	}
	if ds := deployments(t, ns); len(ds) != 1 || ds["web"].Spec.Template.Spec.Containers[0].Image != "web:v1" {
		t.Errorf("deployments after rollback: %v", keys(ds))
	}
	svc, err := kubetest.Client(t).CoreV1().Services(ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := svc.Annotations[kube.AnnotationOriginalSelector]; ok || len(svc.Spec.Selector) != 1 {
		t.Errorf("active service after rollback: selector %v annotations %v", svc.Spec.Selector, svc.Annotations)
	}
}

func TestApplyCRDThenItsInstance(t *testing.T) {
	e := newExecutor(t)
	ns := kubetest.Namespace(t)
	group := strings.ReplaceAll(ns, "-", "") + ".example.com"
	objs, err := kube.Decode(fmt.Appendf(nil, `
apiVersion: %[1]s/v1
kind: Widget
metadata: {name: w1}
spec: {size: 3}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.%[1]s}
spec:
  group: %[1]s
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`, group))
	if err != nil {
		t.Fatal(err)
	}
	applied, err := e.Apply(ctxFor(t), ns, objs)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 2 || applied[0].Kind != "CustomResourceDefinition" || applied[1].Kind != "Widget" || applied[1].Namespace != ns {
		t.Errorf("applied = %v", applied)
	}
	t.Cleanup(func() {
		_ = kubetest.Client(t).Discovery().RESTClient().Delete().AbsPath("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets." + group).Do(context.Background()).Error()
	})
}

func TestCanaryPods(t *testing.T) {
	for _, c := range []struct {
		n    int32
		w    int
		want int32
	}{
		{4, 25, 1}, {4, 50, 2}, {4, 60, 3}, {4, 100, 4}, {4, 0, 0}, {10, 1, 1}, {3, 33, 1}, {3, 34, 2}, {1, 1, 1}, {0, 50, 0},
	} {
		if got := kube.CanaryPods(c.n, c.w); got != c.want {
			t.Errorf("CanaryPods(%d, %d) = %d, want %d", c.n, c.w, got, c.want)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestRepeatedFirstDeploymentStillRollsBack repeats a first deployment's
// Finalize, as a server restarted while its pods were starting does: the
// Deployment still says which pipeline created it, so the rollback removes
// it.
func TestRepeatedFirstDeploymentStillRollsBack(t *testing.T) {
	e := newExecutor(t)
	ns := kubetest.Namespace(t)
	tg := target(ns, "p1", manifests(t, "web:v1", 2, ", "+localkube.FailLabel+": ImagePullBackOff"))
	for range 2 {
		// The pods never become Ready: each attempt ends at its deadline,
		// as the first one does when its server is killed.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := e.Finalize(ctx, tg)
		cancel()
		var nre *kube.NotReadyError
		if !errors.As(err, &nre) {
			t.Fatalf("finalize: err = %v, want a NotReadyError", err)
		}
	}
	if got := deployments(t, ns)["web"].Annotations[kube.AnnotationCreatedBy]; got != "p1" {
		t.Errorf("after a repeated finalize the deployment's %s is %q, want p1", kube.AnnotationCreatedBy, got)
	}
	if _, err := e.Rollback(ctxFor(t), tg); err != nil {
		t.Fatal(err)
	}
	if ds := deployments(t, ns); len(ds) != 0 {
		t.Errorf("deployments left after rolling back a repeated first deployment: %v", keys(ds))
	}
}

// TestRollbackOfPromotionKeepsTheDeploymentAsBefore rolls back a promotion
// whose new pods never become Ready, of a Deployment an earlier pipeline
// created: the Deployment is as before, its annotations included (the
// promotion's apply once dropped the earlier pipeline's created-by, which
// the rollback did not put back).
func TestRollbackOfPromotionKeepsTheDeploymentAsBefore(t *testing.T) {
	e := newExecutor(t)
	ns := kubetest.Namespace(t)
	deployV1(t, e, ns)
	before := deployments(t, ns)["web"]
	v2 := target(ns, "p2", manifests(t, "web:v2", 4, ", "+localkube.FailLabel+": ImagePullBackOff"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err := e.Finalize(ctx, v2)
	cancel()
	var nre *kube.NotReadyError
	if !errors.As(err, &nre) {
		t.Fatalf("finalize: err = %v, want a NotReadyError", err)
	}
	if _, err := e.Rollback(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
	web := deployments(t, ns)["web"]
	if got := web.Spec.Template.Spec.Containers[0].Image; got != "web:v1" || *web.Spec.Replicas != 4 {
		t.Errorf("deployment after the rollback: %s ×%d", got, *web.Spec.Replicas)
	}
	sortie := func(d *appsv1.Deployment) map[string]string {
		out := map[string]string{}
		for k, v := range d.Annotations {
			if strings.HasPrefix(k, "sortie.dev/") {
				out[k] = v
			}
		}
		return out
	}
	if got, want := sortie(web), sortie(before); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Sortie's annotations after the rollback: %v, want %v as before", got, want)
	}
	if got := readyByImage(t, ns); got["web:v1"] != 4 || len(got) != 1 {
		t.Errorf("ready pods after the rollback: %v", got)
	}
}

// Armory's blueGreen needs only activeService (docs-cdaas-sample's
// deploy.yml gives no previewService): the preview runs, pinned away from
// the active Service, and is promoted, with no Service of its own.
func TestBlueGreenWithoutPreviewService(t *testing.T) {
	e := newExecutor(t)
	ns := kubetest.Namespace(t)
	only := func(pipeline, image string) *kube.Target {
		tg := target(ns, pipeline, manifests(t, image, 3, ""))
		tg.ActiveService = "web"
		return tg
	}
	if _, err := e.Finalize(ctxFor(t), only("p1", "web:v1")); err != nil {
		t.Fatal(err)
	}
	v2 := only("p2", "web:v2")
	if _, err := e.DeployPreview(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
	if got := servedImages(t, ns, "web"); got["web:v1"] != 3 || len(got) != 1 {
		t.Errorf("active serves %v during preview, want only web:v1", got)
	}
	if _, err := e.RedirectActive(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Finalize(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
	if got := servedImages(t, ns, "web"); got["web:v2"] != 3 || len(got) != 1 {
		t.Errorf("active serves %v after promotion, want only web:v2", got)
	}
}

// Armory's target names ("prod-west (canary-pod)") are no label values:
// they become valid ones, still distinct, and valid names stay as they are.
func TestLabelValue(t *testing.T) {
	for _, name := range []string{"prod-west", "staging", "potato-facts", "a.b_c"} {
		if got := kube.LabelValue(name); got != name {
			t.Errorf("LabelValue(%q) = %q, want it unchanged", name, got)
		}
	}
	seen := map[string]string{}
	for _, name := range []string{"prod-west (canary-pod)", "prod-west [canary-pod]", "prod-apac (canary-istio)", "CD-as-a-Service Demo Environment", "(((", strings.Repeat("x", 70), strings.Repeat("x", 70) + "y"} {
		got := kube.LabelValue(name)
		if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
			t.Errorf("LabelValue(%q) = %q: %v", name, got, errs)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("LabelValue(%q) = LabelValue(%q) = %q", name, other, got)
		}
		seen[got] = name
	}
	if got := kube.LabelValue("prod-west (canary-pod)"); !strings.HasPrefix(got, "prod-west--canary-pod-") {
		t.Errorf("LabelValue keeps no trace of the name: %q", got)
	}
}

// twoApps is a blue/green target of two Deployments, web and api, each
// with its active and preview Service, as the borealis demo deploys
// potato-facts and potato-lies.
func twoApps(t *testing.T, ns, pipeline, version string) *kube.Target {
	t.Helper()
	var docs []string
	for _, app := range []string{"web", "api"} {
		docs = append(docs, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: 2
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec: {containers: [{name: %[1]s, image: "%[1]s:%[2]s"}]}
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s}
spec: {selector: {app: %[1]s}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s-preview}
spec: {selector: {app: %[1]s}, ports: [{port: 80}]}`, app, version))
	}
	objs, err := kube.Decode([]byte(strings.Join(docs, "\n---\n")))
	if err != nil {
		t.Fatal(err)
	}
	tg := target(ns, pipeline, objs)
	tg.ActiveService, tg.PreviewService = "web", "web-preview"
	tg.MoreServices = []kube.ServicePair{{Active: "api", Preview: "api-preview"}}
	return tg
}

// Each Service pair of a blue/green of two Deployments follows its own
// Deployment: previews show the new pods, the active Services the old ones
// until the redirect, and a rollback flips both back.
func TestBlueGreenOfTwoDeployments(t *testing.T) {
	e := newExecutor(t)
	ns := kubetest.Namespace(t)
	if _, err := e.Finalize(ctxFor(t), twoApps(t, ns, "p1", "v1")); err != nil {
		t.Fatal(err)
	}
	served := func(when string, want map[string]string) {
		t.Helper()
		for svc, image := range want {
			if got := servedImages(t, ns, svc); got[image] != 2 || len(got) != 1 {
				t.Errorf("%s: Service %s serves %v, want 2 pods of %s", when, svc, got, image)
			}
		}
	}
	v2 := twoApps(t, ns, "p2", "v2")
	if _, err := e.DeployPreview(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
	served("during the preview", map[string]string{"web": "web:v1", "api": "api:v1", "web-preview": "web:v2", "api-preview": "api:v2"})
	if _, err := e.RedirectActive(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
	served("after the redirect", map[string]string{"web": "web:v2", "api": "api:v2"})
	if _, err := e.Rollback(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
	served("after the rollback", map[string]string{"web": "web:v1", "api": "api:v1"})

	v3 := twoApps(t, ns, "p3", "v3")
	for _, step := range []func(context.Context, *kube.Target) (kube.Progress, error){e.DeployPreview, e.RedirectActive, e.Finalize} {
		if _, err := step(ctxFor(t), v3); err != nil {
			t.Fatal(err)
		}
	}
	served("after the promotion", map[string]string{"web": "web:v3", "api": "api:v3", "web-preview": "web:v3", "api-preview": "api:v3"})
	if ds := deployments(t, ns); len(ds) != 2 {
		t.Errorf("deployments after the promotion: %v, want web and api", keys(ds))
	}
}
