package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
)

// deployFile is a deployment file of the sample application for target
// prod (account prod) in ns: strategy is the strategies entry, extra any
// top-level keys, objects more manifests beside the Deployment.
func deployFile(ns, image, strategy, extra, objects string) api.StartRequest {
	return api.StartRequest{FileName: "deploy.yml", File: fmt.Sprintf(`version: v1
kind: kubernetes
application: web
targets:
  prod:
    account: prod
    namespace: %s
    strategy: rollout
strategies:
  rollout:
%s%s
manifests:
  - inline: |
%s`, ns, strategy, extra, kubetest.Inline(kubetest.SampleApp("web", 4, image), kubetest.SampleService("web", "web"), objects))}
}

const twoPauses = `    canary:
      steps:
        - setWeight: 25
        - pause: {untilApproved: true}
        - setWeight: 50
        - pause: {untilApproved: true}
`

func (s *sortie) start(req api.StartRequest) string {
	s.t.Helper()
	var res api.StartResult
	s.call("POST", "/api/v1/pipelines", req, http.StatusAccepted, &res)
	return res.PipelineID
}

func (s *sortie) succeed(req api.StartRequest, what string) {
	s.t.Helper()
	if p := s.waitPipeline(s.start(req), what+" ends", ended); p.Status != pipeline.StatusSucceeded {
		s.t.Fatalf("%s: %s", what, clienttest.Dump(p))
	}
}

func (s *sortie) act(id, action string) {
	s.t.Helper()
	var req api.ActionRequest
	switch action {
	case "approve":
		req.Target = "prod"
	case "rollback":
		req.Target, req.Reason = "prod", "test"
	case "cancel":
		req.Reason = "test"
	}
	s.call("POST", "/api/v1/pipelines/"+id+"/"+action, req, http.StatusOK, nil)
}

// snapshot describes the namespace as a rollback must leave it:
// Deployments (image, replicas, annotations of Sortie), ReplicaSets that
// want pods, Services' selectors and annotations, and anything named
// *-sortie-*.
func (s *sortie) snapshot() string {
	s.t.Helper()
	ctx := context.Background()
	c := kubetest.Client(s.t)
	var out []string
	ds, err := c.AppsV1().Deployments(s.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	sortieAnnotations := func(m map[string]string) []string {
		var keys []string
		for k := range m {
			if strings.HasPrefix(k, "sortie.dev/") {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		return keys
	}
	for _, d := range ds.Items {
		out = append(out, fmt.Sprintf("deployment %s %s ×%d %v", d.Name, d.Spec.Template.Spec.Containers[0].Image, *d.Spec.Replicas, sortieAnnotations(d.Annotations)))
	}
	rss, err := c.AppsV1().ReplicaSets(s.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, rs := range rss.Items {
		if rs.Spec.Replicas != nil && *rs.Spec.Replicas > 0 {
			owner := ""
			if ref := metav1.GetControllerOf(&rs); ref != nil {
				owner = ref.Name
			}
			out = append(out, fmt.Sprintf("replicaset of %s %s ×%d", owner, rs.Spec.Template.Spec.Containers[0].Image, *rs.Spec.Replicas))
		}
	}
	svcs, err := c.CoreV1().Services(s.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, svc := range svcs.Items {
		out = append(out, fmt.Sprintf("service %s %v %v", svc.Name, svc.Spec.Selector, sortieAnnotations(svc.Annotations)))
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

const blueGreen = `    blueGreen:
      activeService: web
      previewService: web-preview
      redirectTrafficAfter:
        - pause: {untilApproved: true}
      shutDownOldVersionAfter:
        - pause: {untilApproved: true}
`

var previewService = kubetest.SampleService("web-preview", "web")

// servedBy returns the images of the pods a Service selects.
func (s *sortie) servedBy(svc string) map[string]int {
	s.t.Helper()
	sv, err := kubetest.Client(s.t).CoreV1().Services(s.ns).Get(context.Background(), svc, metav1.GetOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	return s.selected(sv.Spec.Selector)
}

func awaitingAny(p *api.PipelineView) bool { return p.Status == pipeline.StatusAwaitingApproval }

// Blue/green through the agent: the preview first, the active Service
// flipped after approval, and a rollback that flips it back while the old
// version still runs, leaving the namespace as before.
func TestBlueGreenFlipAndInstantRollback(t *testing.T) {
	s := newSortie(t)
	s.startAgent()
	s.succeed(deployFile(s.ns, "web:v1", blueGreen, "", previewService), "the first deployment")
	before := s.snapshot()

	id := s.start(deployFile(s.ns, "web:v2", blueGreen, "", previewService))
	s.waitPipeline(id, "the gate before the redirect", awaitingAny)
	if got := s.servedBy("web"); fmt.Sprint(got) != "map[web:v1:4]" {
		t.Errorf("active serves %v before the redirect", got)
	}
	if got := s.servedBy("web-preview"); fmt.Sprint(got) != "map[web:v2:4]" {
		t.Errorf("preview serves %v", got)
	}
	s.act(id, "approve")
	s.waitPipeline(id, "the gate before the shutdown", func(p *api.PipelineView) bool {
		return awaitingAny(p) && s.servedBy("web")["web:v2"] == 4
	})
	if got := s.servedBy("web"); fmt.Sprint(got) != "map[web:v2:4]" {
		t.Errorf("active serves %v after the redirect", got)
	}
	if got := s.pods(); got["web:v1"] != 4 {
		t.Errorf("the old version does not run at full size before the shutdown: %v", got)
	}

	start := time.Now()
	s.act(id, "rollback")
	// The flip back does not wait for pods: the old ones still run.
	kubetest.Until(t, s.ns, "the active Service no longer selects v2", 10*time.Second, func() bool {
		return s.servedBy("web")["web:v2"] == 0
	})
	flip := time.Since(start)
	if got := s.servedBy("web"); got["web:v1"] != 4 || got["web:v2"] != 0 {
		t.Errorf("active serves %v after the rollback", got)
	}
	t.Logf("active Service flipped back %s after the rollback request", flip.Round(time.Millisecond))
	if p := s.waitPipeline(id, "the rollback ends", ended); p.Targets[0].Status != pipeline.StatusRolledBack {
		t.Errorf("after the rollback: %s", clienttest.Dump(p))
	}
	if after := s.snapshot(); after != before {
		t.Errorf("after the blue/green rollback the namespace is\n%s\nwas\n%s", after, before)
	}

	// And through to the end: the old version goes, the Services are the
	// user's own again.
	id = s.start(deployFile(s.ns, "web:v2", blueGreen, "", previewService))
	s.waitPipeline(id, "the gate before the redirect", awaitingAny)
	s.act(id, "approve")
	s.waitPipeline(id, "the gate before the shutdown", func(p *api.PipelineView) bool {
		return awaitingAny(p) && s.servedBy("web")["web:v2"] == 4
	})
	s.act(id, "approve")
	if p := s.waitPipeline(id, "the blue/green ends", ended); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("blue/green: %s", clienttest.Dump(p))
	}
	s.wantPods("after the blue/green", 0, 4)
	if got := s.snapshot(); strings.Contains(got, "-sortie-") || !strings.Contains(got, "service web map[app:web] []") {
		t.Errorf("after the blue/green: %s", got)
	}
}

// A manifest set with a CRD and an instance of it, applied through the
// agent in one deployment (the CRD established first).
func TestCRDAndInstanceThroughAgent(t *testing.T) {
	s := newSortie(t)
	s.startAgent()
	group := strings.ReplaceAll(s.ns, "-", "") + ".example.com"
	objects := fmt.Sprintf(`---
apiVersion: %[1]s/v1
kind: Gadget
metadata: {name: g1}
spec: {size: 3}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.%[1]s}
spec:
  group: %[1]s
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`, group)
	t.Cleanup(func() {
		_ = kubetest.Client(t).Discovery().RESTClient().Delete().AbsPath("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets." + group).Do(context.Background()).Error()
	})
	s.succeed(deployFile(s.ns, "web:v1", twoPauses, "", objects), "the deployment with a CRD")
	d, err := dynamic.NewForConfig(kubetest.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	u, err := d.Resource(schema.GroupVersionResource{Group: group, Version: "v1", Resource: "gadgets"}).Namespace(s.ns).Get(context.Background(), "g1", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the CRD's instance: %v", err)
	}
	if size, _, _ := unstructured.NestedInt64(u.Object, "spec", "size"); size != 3 {
		t.Errorf("instance spec.size = %d", size)
	}
	s.wantPods("after the deployment", 4, 0)
}

var httpRouteGVR = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}

func installTrafficCRDs(t *testing.T) {
	t.Helper()
	kubetest.ApplyFile(t, filepath.Join("..", "..", "kube", "testdata", "traffic-crds.yaml"))
}

// An agent whose ServiceAccount may not write Services fails the step
// with a message that names the missing permission.
func TestAgentWithoutAPermission(t *testing.T) {
	s := newSortie(t)
	ctx := context.Background()
	c := kubetest.Client(t)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "limited-agent"}}
	if _, err := c.CoreV1().ServiceAccounts(s.ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	all := []string{"get", "list", "watch", "create", "update", "patch", "delete"}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "limited-agent"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "replicasets"}, Verbs: all},
		{APIGroups: []string{""}, Resources: []string{"pods", "configmaps"}, Verbs: all},
		// Services may be read, not written.
		{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get", "list", "watch"}},
	}}
	if _, err := c.RbacV1().Roles(s.ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "limited-agent"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "limited-agent"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "limited-agent", Namespace: s.ns}},
	}
	if _, err := c.RbacV1().RoleBindings(s.ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expiry := int64(3600)
	tok, err := c.CoreV1().ServiceAccounts(s.ns).CreateToken(ctx, "limited-agent", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rc := kubetest.Config(t)
	ca := rc.TLSClientConfig.CAData
	if len(ca) == 0 && rc.TLSClientConfig.CAFile != "" {
		if ca, err = os.ReadFile(rc.TLSClientConfig.CAFile); err != nil {
			t.Fatal(err)
		}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthorityData: ca}
	kc.AuthInfos["limited-agent"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	kc.Contexts["limited"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "limited-agent", Namespace: s.ns}
	kc.CurrentContext = "limited"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	s.agent = start(t, "limited agent", []string{"SORTIE_CLIENT_ID=" + s.agentID, "SORTIE_CLIENT_SECRET=" + s.agentKey},
		"agent", "--server", s.url, "--agent-id", "prod", "--kubeconfig", path)
	s.agent.WaitLine(connected)

	p := s.waitPipeline(s.start(deployFile(s.ns, "web:v1", twoPauses, "", "")), "the deployment fails", ended)
	msg := clienttest.Dump(p)
	if p.Status != pipeline.StatusFailed || !strings.Contains(msg, "permission denied") ||
		!strings.Contains(msg, `cannot patch resource "services"`) || !strings.Contains(msg, "system:serviceaccount:"+s.ns+":limited-agent") {
		t.Errorf("want a failure naming the missing permission: %s", msg)
	}
}
