package gate_test

import (
	"context"
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
)

// A webhook written for Armory names the new version's pods by
// {{armory.replicaSetName}}: it must be exactly the replica-set-name
// annotation (and ARMORY_REPLICA_SET_NAME) of the pods the canary started,
// and of no old pod.
func TestWebhookSeesTheNewPodsReplicaSetName(t *testing.T) {
	e := newEnv(t)
	x := newExternal(t)
	// The pipeline goes on once the call is answered (the callback is
	// disabled): the answer waits until the pods are counted.
	x.answer = make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-x.answer:
		default:
			close(x.answer)
		}
	})
	e.deployV1()
	hook := fmt.Sprintf(`webhooks:
  - name: checks
    method: POST
    uriTemplate: %s/run
    headers:
      - key: Content-Type
        value: application/json
    bodyTemplate:
      inline: '{"rs": "{{armory.replicaSetName}}", "ns": "{{armory.namespace}}", "id": "{{armory.deploymentId}}"}'
    disableCallback: true
`, x.srv.URL)
	id := e.deploy("example/web:v2", webhookSteps, hook)
	body := x.call(t)
	if body["ns"] != e.ns || body["id"] != id || body["rs"] == "" {
		t.Fatalf("webhook body %v", body)
	}
	// The call is made after setWeight 50 has its pods Ready: 2 of 4 new.
	pods, err := kubetest.Client(t).CoreV1().Pods(e.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]int{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		rs := p.Annotations[kube.AnnotationArmoryReplicaSetName]
		if rs == "" {
			t.Errorf("pod %s has no %s annotation", p.Name, kube.AnnotationArmoryReplicaSetName)
		}
		byName[rs]++
		if rs != body["rs"] {
			continue
		}
		if img := p.Spec.Containers[0].Image; img != "example/web:v2" {
			t.Errorf("pod %s (%s) carries the new replica set name %s", p.Name, img, rs)
		}
		env := map[string]string{}
		for _, v := range p.Spec.Containers[0].Env {
			env[v.Name] = v.Value
		}
		if env["ARMORY_REPLICA_SET_NAME"] != rs || env["ARMORY_DEPLOYMENT_ID"] != id || env["ARMORY_APPLICATION_NAME"] != "web" || env["ARMORY_ENVIRONMENT_NAME"] != "prod" {
			t.Errorf("pod %s environment %v", p.Name, env)
		}
		if p.Annotations[kube.AnnotationArmoryApplication] != "web" || p.Annotations[kube.AnnotationArmoryEnvironment] != "prod" || p.Annotations[kube.AnnotationArmoryDeploymentID] != id {
			t.Errorf("pod %s annotations %v", p.Name, p.Annotations)
		}
	}
	if byName[body["rs"]] != 2 || len(byName) != 2 {
		t.Errorf("pods by replica-set-name %v, want 2 named %s and the old ones under another name", byName, body["rs"])
	}
	close(x.answer)
	if p := e.waitEnd(id); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("%s\n%s", p.Status, clienttest.Dump(p))
	}
}
