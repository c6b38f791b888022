package runner_test

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
)

// configFile is a canary of web whose pods read the ConfigMap web-config;
// namespace is the target's ("" for none) and where the manifests put
// their objects ("" for nowhere).
func configFile(targetNS, manifestNS, color string) runner.StartRequest {
	target := "  t: {account: local, strategy: c}"
	if targetNS != "" {
		target = fmt.Sprintf("  t: {account: local, namespace: %s, strategy: c}", targetNS)
	}
	meta := ""
	if manifestNS != "" {
		meta = ", namespace: " + manifestNS
	}
	return runner.StartRequest{FileName: "deploy.yml", File: fmt.Sprintf(`version: v1
kind: kubernetes
application: web
targets:
%s
strategies:
  c:
    canary:
      steps:
        - setWeight: {weight: 25}
        - pause: {untilApproved: true}
        - setWeight: {weight: 100}
manifests:
  - inline: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: web-config%s}
      data: {color: %s}
      ---
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: web%s}
      spec:
        replicas: 4
        selector: {matchLabels: {app: web}}
        template:
          metadata: {labels: {app: web}}
          spec:
            containers:
            - name: web
              image: web:v1
              envFrom: [{configMapRef: {name: web-config}}]
`, target, meta, color, meta)}
}

func awaitingApproval(p *store.Pipeline) bool {
	ts := target(p, "t")
	return ts != nil && len(ts.Steps) > 1 && ts.Steps[1].Status == pipeline.StatusAwaitingApproval
}

func (e *env) deployment(name string) *appsv1.Deployment {
	e.t.Helper()
	d, err := kubetest.Client(e.t).AppsV1().Deployments(e.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// A change to a ConfigMap only is a new version: it goes through the
// canary like an image change. The same file again changes nothing.
func TestConfigMapOnlyChangeRunsTheCanary(t *testing.T) {
	e := newEnv(t)
	if p := e.waitEnd(e.start(configFile(e.ns, "", "blue"))); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("v1 ended %s\n%s", p.Status, dump(p))
	}
	before := e.deployment("web")
	blueRS := before.Spec.Template.Annotations[kube.AnnotationArmoryReplicaSetName]

	// The same file again: its steps run (the pause waits for a person as
	// always), but nothing in the cluster changes and no pod restarts.
	againID := e.start(configFile(e.ns, "", "blue"))
	e.waitFor(againID, "the pause", awaitingApproval)
	if _, err := e.r.Act(context.Background(), store.DefaultTenant, againID, pipeline.Approve{By: deployer}); err != nil {
		t.Fatal(err)
	}
	again := e.waitEnd(againID)
	if again.Status != pipeline.StatusSucceeded {
		t.Fatalf("the same file again ended %s\n%s", again.Status, dump(again))
	}
	if after := e.deployment("web"); after.Generation != before.Generation {
		t.Errorf("the same file again changed the Deployment (generation %d → %d)", before.Generation, after.Generation)
	}

	// Only the ConfigMap changes: the canary runs and waits at its pause.
	id := e.start(configFile(e.ns, "", "green"))
	e.waitFor(id, "the canary pauses", awaitingApproval)
	// The canary runs in the user's Deployment: 1 of its 4 pods new.
	canary := e.deployment("web")
	greenRS := canary.Spec.Template.Annotations[kube.AnnotationArmoryReplicaSetName]
	pods, err := kubetest.Client(t).CoreV1().Pods(e.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]int{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			byName[p.Annotations[kube.AnnotationArmoryReplicaSetName]]++
		}
	}
	if greenRS == "" || greenRS == blueRS || byName[greenRS] != 1 || byName[blueRS] != 3 {
		t.Fatalf("canary: pods by replica set %v, replica set %q (old %q)", byName, greenRS, blueRS)
	}
	if _, err := e.r.Act(context.Background(), store.DefaultTenant, id, pipeline.Approve{By: deployer}); err != nil {
		t.Fatal(err)
	}
	if p := e.waitEnd(id); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("ended %s\n%s", p.Status, dump(p))
	}
	if rs := e.deployment("web").Spec.Template.Annotations[kube.AnnotationArmoryReplicaSetName]; rs != greenRS {
		t.Errorf("after promotion the pods are %q, want the canary's %q", rs, greenRS)
	}
}

// A target without a namespace deploys each object where its manifest
// says, as Armory did.
func TestTargetWithoutNamespace(t *testing.T) {
	e := newEnv(t)
	p := e.waitEnd(e.start(configFile("", e.ns, "blue")))
	if p.Status != pipeline.StatusSucceeded {
		t.Fatalf("ended %s\n%s", p.Status, dump(p))
	}
	d := e.deployment("web")
	if d.Status.ReadyReplicas != 4 {
		t.Errorf("web in %s: %d ready", e.ns, d.Status.ReadyReplicas)
	}
	if _, err := kubetest.Client(t).CoreV1().ConfigMaps(e.ns).Get(context.Background(), "web-config", metav1.GetOptions{}); err != nil {
		t.Errorf("the ConfigMap is not where its manifest put it: %v", err)
	}
	if _, err := kubetest.Client(t).CoreV1().ConfigMaps(metav1.NamespaceDefault).Get(context.Background(), "web-config", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("web-config in default: err = %v, want not found", err)
	}
}
