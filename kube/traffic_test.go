package kube_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/kubetest"
)

var (
	gvrSplit = schema.GroupVersionResource{Group: "split.smi-spec.io", Version: "v1alpha2", Resource: "trafficsplits"}
	gvrVS    = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1beta1", Resource: "virtualservices"}
	gvrDR    = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1beta1", Resource: "destinationrules"}
	gvrRoute = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
)

// installTrafficCRDs installs the minimal CRDs of kube/testdata (shared by
// every test of the cluster, never removed).
func installTrafficCRDs(t *testing.T, e *kube.Executor) {
	t.Helper()
	b, err := os.ReadFile("testdata/traffic-crds.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := kube.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Apply(ctxFor(t), "default", objs); err != nil {
		t.Fatal(err)
	}
}

const istioObjects = `
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web]
  http:
  - name: primary
    route:
    - destination: {host: web, subset: stable, port: {number: 80}}
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: web}
spec:
  host: web
  subsets:
  - name: stable
    labels: {app: web}
`

const routeObjects = `
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gateway}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: web, port: 80}]
`

type trafficCase struct {
	name    string
	extra   string // objects of the user's besides Deployment and Service
	traffic kube.Traffic
	// weights reads the weights now in the cluster, as "backend=weight ...";
	// "" when the object Sortie creates is gone.
	weights func(t *testing.T, ns string) string
	// original is weights after the end or a rollback.
	original string
}

func dyn(t *testing.T) dynamic.Interface {
	t.Helper()
	d, err := dynamic.NewForConfig(kubetest.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func getObject(t *testing.T, gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := dyn(t).Resource(gvr).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return u
}

func pairs(list []any, name func(map[string]any) string) string {
	var out []string
	for _, x := range list {
		m, _ := x.(map[string]any)
		w, ok := m["weight"]
		if !ok {
			w = "-"
		}
		out = append(out, fmt.Sprintf("%s=%v", name(m), w))
	}
	return strings.Join(out, " ")
}

var trafficCases = []trafficCase{
	{
		name:    "smi",
		traffic: kube.Traffic{SMI: []kube.SMITraffic{{RootService: "web"}}},
		weights: func(t *testing.T, ns string) string {
			u := getObject(t, gvrSplit, ns, "web-sortie-split")
			if u == nil {
				return ""
			}
			if svc, _, _ := unstructured.NestedString(u.Object, "spec", "service"); svc != "web" {
				t.Errorf("TrafficSplit root service %q", svc)
			}
			b, _, _ := unstructured.NestedSlice(u.Object, "spec", "backends")
			return pairs(b, func(m map[string]any) string { return fmt.Sprint(m["service"]) })
		},
		original: "",
	},
	{
		name:  "istio",
		extra: istioObjects,
		traffic: kube.Traffic{Istio: []kube.IstioTraffic{{
			VirtualService: "web", Route: "primary", DestinationRule: "web", ActiveSubset: "stable", CanarySubset: "canary",
		}}},
		weights: func(t *testing.T, ns string) string {
			u := getObject(t, gvrVS, ns, "web")
			http, _, _ := unstructured.NestedSlice(u.Object, "spec", "http")
			r, _, _ := unstructured.NestedSlice(http[0].(map[string]any), "route")
			return pairs(r, func(m map[string]any) string {
				d := m["destination"].(map[string]any)
				return fmt.Sprintf("%v/%v", d["host"], d["subset"])
			})
		},
		original: "web/stable=-",
	},
	{
		name:    "httpRoute",
		extra:   routeObjects,
		traffic: kube.Traffic{HTTPRoute: []kube.HTTPRouteTraffic{{Name: "web", RootService: "web"}}},
		weights: func(t *testing.T, ns string) string {
			u := getObject(t, gvrRoute, ns, "web")
			rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
			refs, _, _ := unstructured.NestedSlice(rules[0].(map[string]any), "backendRefs")
			return pairs(refs, func(m map[string]any) string { return fmt.Sprintf("%v:%v", m["name"], m["port"]) })
		},
		original: "web:80=-",
	},
}

func (c trafficCase) target(t *testing.T, ns, pipeline, image string) *kube.Target {
	objs := manifests(t, image, 4, "")
	more, err := kube.Decode([]byte(c.extra))
	if err != nil {
		t.Fatal(err)
	}
	tg := target(ns, pipeline, append(objs, more...))
	tr := c.traffic
	tg.Traffic = &tr
	return tg
}

// wantWeights formats the weights expected at weight w.
func (c trafficCase) wantWeights(w int) string {
	switch c.name {
	case "smi":
		return fmt.Sprintf("web-sortie-stable=%d web-canary=%d", 100-w, w)
	case "istio":
		return fmt.Sprintf("web/stable=%d web/canary=%d", 100-w, w)
	default:
		return fmt.Sprintf("web-sortie-stable:80=%d web-canary:80=%d", 100-w, w)
	}
}

// sortieLeftovers names what Sortie made for the canary and left behind:
// Deployments and Services named *-sortie-*, or with its traffic role,
// and any annotation of remembered state.
func sortieLeftovers(t *testing.T, ns string) []string {
	t.Helper()
	ctx := context.Background()
	c := kubetest.Client(t)
	var out []string
	ds, _ := c.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	for _, d := range ds.Items {
		if strings.Contains(d.Name, "-sortie-") {
			out = append(out, "deployment/"+d.Name)
		}
	}
	svcs, _ := c.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	for _, s := range svcs.Items {
		if strings.Contains(s.Name, "-sortie-") || s.Labels[kube.LabelRole] != "" || s.Name == "web-canary" {
			out = append(out, "service/"+s.Name)
		}
	}
	for _, gvr := range []schema.GroupVersionResource{gvrSplit, gvrVS, gvrDR, gvrRoute} {
		list, err := dyn(t).Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range list.Items {
			if strings.Contains(u.GetName(), "-sortie-") || u.GetLabels()[kube.LabelRole] != "" {
				out = append(out, gvr.Resource+"/"+u.GetName())
			}
			if _, ok := u.GetAnnotations()[kube.AnnotationOriginalSpec]; ok {
				out = append(out, gvr.Resource+"/"+u.GetName()+" annotated")
			}
		}
	}
	return out
}

// selected returns the images of the pods (not being deleted) a label
// selector picks.
func selected(t *testing.T, ns string, labels map[string]string) map[string]int {
	t.Helper()
	sel := metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: labels})
	pods, err := kubetest.Client(t).CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			out[p.Spec.Containers[0].Image]++
		}
	}
	return out
}

// checkBackends checks that the stable backend selects only the old
// version's pods and the canary backend only the new one's.
func (c trafficCase) checkBackends(t *testing.T, ns, oldImage, newImage string) {
	t.Helper()
	want := func(what string, got map[string]int, image string) {
		if got[image] != 4 || len(got) != 1 {
			t.Errorf("%s selects %v, want %s ×4", what, got, image)
		}
	}
	if c.name == "istio" {
		dr := getObject(t, gvrDR, ns, "web")
		subsets, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
		for _, s := range subsets {
			sm := s.(map[string]any)
			labels, _, _ := unstructured.NestedStringMap(sm, "labels")
			labels["app"] = "web" // the host's own selector
			image := oldImage
			if sm["name"] == "canary" {
				image = newImage
			}
			want("subset "+fmt.Sprint(sm["name"]), selected(t, ns, labels), image)
		}
		return
	}
	want("stable service", servedImages(t, ns, "web-sortie-stable"), oldImage)
	want("canary service", servedImages(t, ns, "web-canary"), newImage)
}

func TestTrafficManagement(t *testing.T) {
	e := newExecutor(t)
	installTrafficCRDs(t, e)
	for _, c := range trafficCases {
		t.Run(c.name, func(t *testing.T) {
			ns := kubetest.Namespace(t)
			if _, err := e.Finalize(ctxFor(t), c.target(t, ns, "p1", "web:v1")); err != nil {
				t.Fatal(err)
			}
			if got := c.weights(t, ns); got != c.original {
				t.Errorf("weights after the first deployment: %q, want %q", got, c.original)
			}
			v2 := c.target(t, ns, "p2", "web:v2")
			for _, w := range []int{25, 50, 100} {
				p, err := e.SetWeight(ctxFor(t), v2, w)
				if err != nil {
					t.Fatalf("weight %d: %v", w, err)
				}
				if got, want := c.weights(t, ns), c.wantWeights(w); got != want {
					t.Errorf("weights at %d%%: %q, want %q", w, got, want)
				}
				// Both versions at full size: only weights move.
				if got := readyByImage(t, ns); got["web:v1"] != 4 || got["web:v2"] != 4 {
					t.Errorf("ready pods at %d%%: %v, want 4 of each", w, got)
				}
				if p.AchievedWeight != w || p.NewPods != 4 || p.OldPods != 4 {
					t.Errorf("progress at %d%%: %+v", w, p)
				}
				c.checkBackends(t, ns, "web:v1", "web:v2")
			}
			if _, err := e.Finalize(ctxFor(t), v2); err != nil {
				t.Fatal(err)
			}
			if got := c.weights(t, ns); got != c.original {
				t.Errorf("weights after the canary: %q, want %q", got, c.original)
			}
			if got := sortieLeftovers(t, ns); len(got) != 0 {
				t.Errorf("left after the canary: %v", got)
			}
			if got := readyByImage(t, ns); got["web:v2"] != 4 || len(got) != 1 {
				t.Errorf("ready pods after the canary: %v", got)
			}
			if ds := deployments(t, ns); len(ds) != 1 || ds["web"].Spec.Template.Spec.Containers[0].Image != "web:v2" {
				t.Errorf("deployments after the canary: %v", keys(ds))
			}

			// A rollback at 50% gives the old version all traffic back and
			// leaves nothing behind.
			v3 := c.target(t, ns, "p3", "web:v3")
			if _, err := e.SetWeight(ctxFor(t), v3, 50); err != nil {
				t.Fatal(err)
			}
			if got, want := c.weights(t, ns), c.wantWeights(50); got != want {
				t.Errorf("weights at 50%% of v3: %q, want %q", got, want)
			}
			if _, err := e.Rollback(ctxFor(t), v3); err != nil {
				t.Fatal(err)
			}
			if got := c.weights(t, ns); got != c.original {
				t.Errorf("weights after the rollback: %q, want %q", got, c.original)
			}
			if got := sortieLeftovers(t, ns); len(got) != 0 {
				t.Errorf("left after the rollback: %v", got)
			}
			if got := readyByImage(t, ns); got["web:v2"] != 4 || len(got) != 1 {
				t.Errorf("ready pods after the rollback: %v", got)
			}
			if rs := activeReplicaSets(t, ns); len(rs) != 1 {
				t.Errorf("replica sets wanting pods after the rollback: %v", rs)
			}
		})
	}
}

// A canary of two Deployments under SMI, one root Service each (the
// borealis demo's potato-facts and potato-lies): each Deployment is split
// by the entry of its own root Service, and the other entry leaves it be.
func TestTrafficSMIOfTwoDeployments(t *testing.T) {
	e := newExecutor(t)
	installTrafficCRDs(t, e)
	ns := kubetest.Namespace(t)
	smi := func(pipeline, version string) *kube.Target {
		tg := twoApps(t, ns, pipeline, version)
		tg.ActiveService, tg.PreviewService, tg.MoreServices = "", "", nil
		tg.Traffic = &kube.Traffic{SMI: []kube.SMITraffic{{RootService: "web"}, {RootService: "api"}}}
		return tg
	}
	if _, err := e.Finalize(ctxFor(t), smi("p1", "v1")); err != nil {
		t.Fatal(err)
	}
	v2 := smi("p2", "v2")
	if _, err := e.SetWeight(ctxFor(t), v2, 25); err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"web", "api"} {
		u := getObject(t, gvrSplit, ns, app+"-sortie-split")
		if u == nil {
			t.Fatalf("no TrafficSplit for %s", app)
		}
		b, _, _ := unstructured.NestedSlice(u.Object, "spec", "backends")
		if got, want := pairs(b, func(m map[string]any) string { return fmt.Sprint(m["service"]) }), app+"-sortie-stable=75 "+app+"-canary=25"; got != want {
			t.Errorf("%s split: %q, want %q", app, got, want)
		}
		for svc, image := range map[string]string{app + "-sortie-stable": app + ":v1", app + "-canary": app + ":v2"} {
			if got := servedImages(t, ns, svc); got[image] != 2 || len(got) != 1 {
				t.Errorf("%s serves %v, want 2 pods of %s", svc, got, image)
			}
		}
	}
	if _, err := e.Finalize(ctxFor(t), v2); err != nil {
		t.Fatal(err)
	}
	if got := sortieLeftovers(t, ns); len(got) != 0 {
		t.Errorf("left after the canary: %v", got)
	}
}
