package e2e

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
)

const straight = `    canary:
      steps:
        - setWeight: 100
`

// TestAgentNamespacesThroughAServer (issue 16, "Also"): a real agent
// process started with --namespaces, on a cluster-wide kubeconfig, serves a
// real server. A deployer's file targeting another namespace, or carrying a
// cluster-scoped object (a ClusterRole granting everything), fails with
// the agent's refusal and writes nothing; the same deployment into the
// allowed namespace succeeds.
func TestAgentNamespacesThroughAServer(t *testing.T) {
	s := newSortie(t)
	other := kubetest.Namespace(t)
	s.startAgentWith("--namespaces", s.ns)
	escalate := `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: sortie-e2e-escalate}
rules: [{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}]
`
	for _, tc := range []struct {
		name, ns, objects, want string
	}{
		{"another namespace", other, "", `not "` + other + `"`},
		{"a cluster-scoped object", s.ns, escalate, "ClusterRole sortie-e2e-escalate (cluster-scoped)"},
	} {
		p := s.waitPipeline(s.start(deployFile(tc.ns, "example/web:v1", straight, "", tc.objects)), tc.name+" ends", ended)
		if p.Status == pipeline.StatusSucceeded || !strings.Contains(clienttest.Dump(p), tc.want) {
			t.Errorf("%s: %s, want it refused saying %q:\n%s", tc.name, p.Status, tc.want, clienttest.Dump(p))
		}
	}
	c := kubetest.Client(t)
	ctx := context.Background()
	if _, err := c.AppsV1().Deployments(other).Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a Deployment in %s, outside the agent's namespaces: %v", other, err)
	}
	if _, err := c.RbacV1().ClusterRoles().Get(ctx, "sortie-e2e-escalate", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the ClusterRole was written: %v", err)
	}
	s.succeed(deployFile(s.ns, "example/web:v1", straight, "", ""), "the deployment into the agent's namespace")
}
