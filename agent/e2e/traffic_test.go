package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
)

var (
	trafficSplitGVR    = schema.GroupVersionResource{Group: "split.smi-spec.io", Version: "v1alpha2", Resource: "trafficsplits"}
	virtualServiceGVR  = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1beta1", Resource: "virtualservices"}
	destinationRuleGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1beta1", Resource: "destinationrules"}
)

// trafficKind is one kind of traffic management, as a deployment file
// configures it: objects are the user's own beside the Deployment and
// Service, traffic the file's trafficManagement, weights reads the split
// in the cluster ("backend=weight ...", "" when there is no split object)
// and backends checks which pods each side of the split selects.
type trafficKind struct {
	name     string
	objects  string
	traffic  string
	weights  func(s *sortie) string
	want     func(weight int) string
	original string
	backends func(s *sortie, oldImage, newImage string)
}

func weightPairs(list []any, name func(map[string]any) string) string {
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

func (s *sortie) dynamic() dynamic.Interface {
	s.t.Helper()
	d, err := dynamic.NewForConfig(kubetest.Config(s.t))
	if err != nil {
		s.t.Fatal(err)
	}
	return d
}

// object returns the namespace's object, or nil when there is none.
func (s *sortie) object(gvr schema.GroupVersionResource, name string) *unstructured.Unstructured {
	s.t.Helper()
	u, err := s.dynamic().Resource(gvr).Namespace(s.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return u
}

// serviceBackends checks that the stable Service selects only the old
// version's pods, the canary Service only the new one's, all 4 of each.
func serviceBackends(s *sortie, oldImage, newImage string) {
	s.t.Helper()
	if got := s.servedBy("web-sortie-stable"); fmt.Sprint(got) != fmt.Sprintf("map[%s:4]", oldImage) {
		s.t.Errorf("the stable service selects %v, want %s ×4", got, oldImage)
	}
	if got := s.servedBy("web-canary"); fmt.Sprint(got) != fmt.Sprintf("map[%s:4]", newImage) {
		s.t.Errorf("the canary service selects %v, want %s ×4", got, newImage)
	}
}

var trafficKinds = []trafficKind{
	{
		name: "smi",
		traffic: `trafficManagement:
  - targets: [prod]
    smi:
      - {rootServiceName: web}
`,
		weights: func(s *sortie) string {
			u := s.object(trafficSplitGVR, "web-sortie-split")
			if u == nil {
				return ""
			}
			if root, _, _ := unstructured.NestedString(u.Object, "spec", "service"); root != "web" {
				s.t.Errorf("the TrafficSplit's root service is %q", root)
			}
			b, _, _ := unstructured.NestedSlice(u.Object, "spec", "backends")
			return weightPairs(b, func(m map[string]any) string { return fmt.Sprint(m["service"]) })
		},
		want:     func(w int) string { return fmt.Sprintf("web-sortie-stable=%d web-canary=%d", 100-w, w) },
		original: "",
		backends: serviceBackends,
	},
	{
		name: "istio",
		objects: `---
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
`,
		traffic: `trafficManagement:
  - targets: [prod]
    istio:
      - virtualService: {name: web, httpRouteName: primary}
        destinationRule: {name: web, activeSubsetName: stable, canarySubsetName: canary}
`,
		weights: func(s *sortie) string {
			u := s.object(virtualServiceGVR, "web")
			if u == nil {
				s.t.Fatal("the VirtualService is gone")
			}
			http, _, _ := unstructured.NestedSlice(u.Object, "spec", "http")
			r, _, _ := unstructured.NestedSlice(http[0].(map[string]any), "route")
			return weightPairs(r, func(m map[string]any) string {
				d := m["destination"].(map[string]any)
				return fmt.Sprintf("%v/%v", d["host"], d["subset"])
			})
		},
		want:     func(w int) string { return fmt.Sprintf("web/stable=%d web/canary=%d", 100-w, w) },
		original: "web/stable=-",
		backends: func(s *sortie, oldImage, newImage string) {
			s.t.Helper()
			dr := s.object(destinationRuleGVR, "web")
			if dr == nil {
				s.t.Fatal("the DestinationRule is gone")
			}
			subsets, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
			var got []string
			for _, sub := range subsets {
				sm := sub.(map[string]any)
				labels, _, _ := unstructured.NestedStringMap(sm, "labels")
				labels["app"] = "web" // the host's own selector
				got = append(got, fmt.Sprintf("%v:%v", sm["name"], s.selected(labels)))
			}
			if want := fmt.Sprintf("[stable:map[%s:4] canary:map[%s:4]]", oldImage, newImage); fmt.Sprint(got) != want {
				s.t.Errorf("the subsets select %v, want %s", got, want)
			}
		},
	},
	{
		name: "httpRoute",
		objects: `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gateway}]
  rules:
  - backendRefs: [{name: web, port: 80}]
`,
		traffic: `trafficManagement:
  - targets: [prod]
    httpRoute:
      - {name: web, rootServiceName: web}
`,
		weights: func(s *sortie) string {
			u := s.object(httpRouteGVR, "web")
			if u == nil {
				s.t.Fatal("the HTTPRoute is gone")
			}
			rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
			refs, _, _ := unstructured.NestedSlice(rules[0].(map[string]any), "backendRefs")
			return weightPairs(refs, func(m map[string]any) string { return fmt.Sprintf("%v:%v", m["name"], m["port"]) })
		},
		want:     func(w int) string { return fmt.Sprintf("web-sortie-stable:80=%d web-canary:80=%d", 100-w, w) },
		original: "web:80=-",
		backends: serviceBackends,
	},
}

// selected counts the images of the pods (not being deleted) labels pick.
func (s *sortie) selected(labels map[string]string) map[string]int {
	s.t.Helper()
	pods, err := kubetest.Client(s.t).CoreV1().Pods(s.ns).List(context.Background(), metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: labels})})
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string]int{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			out[p.Spec.Containers[0].Image]++
		}
	}
	return out
}

// trafficObjects describes the namespace's objects of the traffic kinds:
// name, labels, annotations and spec, as the user's own must be again
// after a canary or a rollback.
func (s *sortie) trafficObjects() string {
	s.t.Helper()
	var out []string
	for _, gvr := range []schema.GroupVersionResource{trafficSplitGVR, virtualServiceGVR, destinationRuleGVR, httpRouteGVR} {
		list, err := s.dynamic().Resource(gvr).Namespace(s.ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			s.t.Fatal(err)
		}
		for _, u := range list.Items {
			spec, _ := json.Marshal(u.Object["spec"])
			ann := maps.Clone(u.GetAnnotations())
			delete(ann, "kubectl.kubernetes.io/last-applied-configuration")
			out = append(out, fmt.Sprintf("%s/%s labels=%v annotations=%v spec=%s", gvr.Resource, u.GetName(), u.GetLabels(), ann, spec))
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// Weighted canaries through the agent for each kind of traffic management
// the deployment file offers: the weights at each pause, both versions at
// full size, each side of the split selecting its version's pods; at the
// end the user's objects are their own again and Sortie's are gone. Then
// a rollback at 50 % leaves the namespace, the traffic objects included,
// as it was.
func TestTrafficManagementThroughAgent(t *testing.T) {
	sortieBinary(t)
	installTrafficCRDs(t)
	for _, k := range trafficKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			s := newSortie(t)
			s.startAgent()
			file := func(image string) api.StartRequest {
				return deployFile(s.ns, image, twoPauses, k.traffic, k.objects)
			}
			s.succeed(file("web:v1"), "the first deployment")
			if got := k.weights(s); got != k.original {
				t.Errorf("weights after the first deployment: %q, want %q", got, k.original)
			}
			own := s.trafficObjects()

			id := s.start(file("web:v2"))
			for i, w := range []int{25, 50} {
				if i > 0 {
					s.act(id, "approve")
				}
				s.waitPipeline(id, fmt.Sprintf("the pause at %d%%", w), awaiting(w))
				if got, want := k.weights(s), k.want(w); got != want {
					t.Errorf("weights at %d%%: %q, want %q", w, got, want)
				}
				s.wantPods(fmt.Sprintf("at %d%% (both versions at full size)", w), 4, 4)
				k.backends(s, "web:v1", "web:v2")
			}
			s.act(id, "approve")
			if p := s.waitPipeline(id, "the canary ends", ended); p.Status != pipeline.StatusSucceeded {
				t.Fatalf("canary: %s", clienttest.Dump(p))
			}
			if got := k.weights(s); got != k.original {
				t.Errorf("weights after the canary: %q, want %q", got, k.original)
			}
			if got := s.trafficObjects(); got != own {
				t.Errorf("traffic objects after the canary:\n%s\nwant the user's own:\n%s", got, own)
			}
			s.wantPods("after the canary", 0, 4)
			before := s.snapshot()
			if strings.Contains(before, "-sortie-") || strings.Contains(before, "web-canary") {
				t.Errorf("after the canary: %s", before)
			}

			// A rollback at 50 %.
			id = s.start(file("web:v3"))
			s.waitPipeline(id, "the pause at 25% of v3", awaiting(25))
			s.act(id, "approve")
			s.waitPipeline(id, "the pause at 50% of v3", awaiting(50))
			if got, want := k.weights(s), k.want(50); got != want {
				t.Errorf("weights at 50%% of v3: %q, want %q", got, want)
			}
			k.backends(s, "web:v2", "web:v3")
			s.act(id, "rollback")
			if p := s.waitPipeline(id, "the rollback ends", ended); p.Targets[0].Status != pipeline.StatusRolledBack {
				t.Errorf("after the rollback: %s", clienttest.Dump(p))
			}
			if got := k.weights(s); got != k.original {
				t.Errorf("weights after the rollback: %q, want %q", got, k.original)
			}
			if got := s.trafficObjects(); got != own {
				t.Errorf("traffic objects after the rollback:\n%s\nwant the user's own:\n%s", got, own)
			}
			if after := s.snapshot(); after != before {
				t.Errorf("after the rollback the namespace is\n%s\nwas\n%s", after, before)
			}
			if got := s.pods(); fmt.Sprint(got) != "map[web:v2:4]" {
				t.Errorf("pods after the rollback: %v, want web:v2 ×4", got)
			}
		})
	}
}
