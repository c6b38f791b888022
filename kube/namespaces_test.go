package kube_test

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/kubetest"
)

// An agent started with --namespaces cannot be made to write elsewhere by
// a deployer's manifests: not into another target namespace, not through
// an object that names kube-system, not through a cluster-scoped object.
// Each is refused before anything is written.
func TestNamespaceLimitRefusesEveryWayOut(t *testing.T) {
	e := newExecutor(t)
	allowed, other := kubetest.Namespace(t), kubetest.Namespace(t)
	e.LimitNamespaces([]string{allowed})
	clusterRole, err := kube.Decode([]byte(`
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: sortie-test-escalate}
rules: [{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	intoKubeSystem := target(allowed, "p1", manifests(t, "web:v1", 2, ""))
	intoKubeSystem.OwnNamespaces = true
	for _, o := range intoKubeSystem.Objects {
		if o.GetKind() == "ConfigMap" {
			o.SetNamespace("kube-system")
		} else {
			o.SetNamespace(allowed)
		}
	}
	cases := []struct {
		name string
		t    *kube.Target
		want string
	}{
		{"another target namespace", target(other, "p1", manifests(t, "web:v1", 2, "")), `not "` + other + `"`},
		{"an object naming kube-system", intoKubeSystem, `ConfigMap web-config: this agent may write only in namespaces ` + allowed + `, not "kube-system"`},
		{"a cluster-scoped object", target(allowed, "p1", append(manifests(t, "web:v1", 2, ""), clusterRole...)), "ClusterRole sortie-test-escalate (cluster-scoped)"},
	}
	for _, tc := range cases {
		_, err := e.SetWeight(ctxFor(t), tc.t, 100)
		var nae *kube.ErrNamespaceNotAllowed
		if !errors.As(err, &nae) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it refused (%s)", tc.name, err, tc.want)
		}
		if _, rerr := e.Rollback(ctxFor(t), tc.t); !errors.As(rerr, &nae) {
			t.Errorf("%s: rollback err = %v, want it refused too", tc.name, rerr)
		}
	}
	// Nothing of any of them was written.
	for _, ns := range []string{allowed, other} {
		if d := deployments(t, ns); len(d) != 0 {
			t.Errorf("deployments written in %s: %v", ns, d)
		}
	}
	// Inside its namespace the agent deploys as always.
	ok := target(allowed, "p1", manifests(t, "web:v1", 2, ""))
	ok.Objects = withoutNamespace(ok.Objects)
	if _, err := e.SetWeight(ctxFor(t), ok, 100); err != nil {
		t.Fatalf("a target in the allowed namespace: %v", err)
	}
	if got := readyByImage(t, allowed); got["web:v1"] != 2 {
		t.Errorf("ready pods %v, want 2 of web:v1", got)
	}
}

func withoutNamespace(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	for _, o := range objs {
		o.SetNamespace("")
	}
	return objs
}
