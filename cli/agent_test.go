package cli

import (
	"strings"
	"testing"

	"github.com/sortie-cd/sortie/kube"
)

func TestAgentManifest(t *testing.T) {
	code, out, errOut := run(t, "agent", "manifest", "--agent-id", "prod", "--namespace", "deploy", "--server", "https://sortie.example.com")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	objs, err := kube.Decode([]byte(out))
	if err != nil {
		t.Fatalf("the manifest does not decode: %v\n%s", err, out)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind())
		if ns := o.GetNamespace(); ns != "" && ns != "deploy" {
			t.Errorf("%s %s in namespace %s", o.GetKind(), o.GetName(), ns)
		}
	}
	if got, want := strings.Join(kinds, ","), "Namespace,ServiceAccount,ClusterRole,ClusterRoleBinding,Deployment"; got != want {
		t.Errorf("kinds %s, want %s", got, want)
	}
	for _, want := range []string{`value: "prod"`, `value: "https://sortie.example.com"`, "secretKeyRef: {name: sortie-agent-credentials, key: client-secret}", "path: /healthz", "path: /readyz", "requests: {cpu: 50m, memory: 64Mi}", "type: Recreate",
		// The image make image builds, named like this binary's version.
		`image: "ghcr.io/sortie-cd/sortie:` + Version + `"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the manifest lacks %q", want)
		}
	}
}

func TestAgentUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"agent", "manifest", "--server", "https://s"},
		{"agent", "manifest", "--agent-id", "prod"},
		{"agent", "manifest", "--agent-id", "prod", "--server", "https://s", "--namespace", "Not_A_Name"},
		{"agent", "--agent-id", "prod"},
		{"agent", "--server", "http://127.0.0.1:1"},
	} {
		t.Setenv("SORTIE_SERVER", "")
		t.Setenv("SORTIE_AGENT_ID", "")
		if code, _, errOut := run(t, args...); code != ExitUsage {
			t.Errorf("%v: exit %d (%s), want %d", args, code, errOut, ExitUsage)
		}
	}
}

// With --namespaces the manifest grants the agent namespaced Roles only,
// and tells the agent its limit.
func TestAgentManifestLimitedToNamespaces(t *testing.T) {
	code, out, errOut := run(t, "agent", "manifest", "--agent-id", "prod", "--server", "https://sortie.example.com", "--namespaces", "shop,web")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	objs, err := kube.Decode([]byte(out))
	if err != nil {
		t.Fatalf("the manifest does not decode: %v\n%s", err, out)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind()+"/"+o.GetNamespace())
	}
	if got, want := strings.Join(kinds, ","), "Namespace/,ServiceAccount/sortie,Role/shop,RoleBinding/shop,Role/web,RoleBinding/web,Deployment/sortie"; got != want {
		t.Errorf("objects %s, want %s", got, want)
	}
	if !strings.Contains(out, `{name: SORTIE_NAMESPACES, value: "shop,web"}`) {
		t.Errorf("the agent is not told its namespaces:\n%s", out)
	}
	if code, _, errOut := run(t, "agent", "manifest", "--agent-id", "prod", "--server", "https://s", "--namespaces", "Bad_Name"); code != 2 || !strings.Contains(errOut, "Bad_Name") {
		t.Errorf("a bad namespace: exit %d, %s", code, errOut)
	}
}
