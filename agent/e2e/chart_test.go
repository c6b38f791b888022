package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/sortie-cd/sortie/charts/charttest"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/tlstest"
)

// TestAgentAsTheChartRendersIt: kwok pods run no containers, so this test
// takes the agent Deployment that charts/sortie-agent renders (helm
// template, the pinned helm) and runs the real `sortie agent` with exactly
// its arguments and environment: values from the credentials Secret's keys,
// and the CA bundle from the rendered ConfigMap at the path it is mounted
// (under a directory of the test standing for the container's root). Two
// things differ from a pod, both because the process runs outside one:
// SORTIE_KUBECONFIG is added (a pod has the in-cluster ServiceAccount), and
// the health port is a free loopback one. Against a real `sortie server`
// over TLS it connects and deploys a canary.
func TestAgentAsTheChartRendersIt(t *testing.T) {
	ca := tlstest.NewCA(t, t.TempDir())
	s := newSortieWith(t, ca)
	caPEM, err := os.ReadFile(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	values, err := yaml.Marshal(map[string]any{
		"serverURL": s.url, "agentID": "prod",
		"credentials": map[string]any{"existingSecret": "agent-creds"},
		"caBundle":    map[string]any{"pem": string(caPEM)},
	})
	if err != nil {
		t.Fatal(err)
	}
	valuesFile := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(valuesFile, values, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := charttest.Helm(t, "", "template", "agent", charttest.Chart(t, "sortie-agent"), "--namespace", "sortie", "-f", valuesFile)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, errOut)
	}
	// The Secret the operator creates, as the chart's defaults name its keys.
	p := charttest.Container(t, out, map[string]map[string][]byte{"agent-creds": {"client-id": []byte(s.agentID), "client-secret": []byte(s.agentKey)}})
	env := append(p.Env, "SORTIE_KUBECONFIG="+kubetest.Cluster(t).Kubeconfig)
	var args []string
	for _, a := range p.Args {
		if strings.HasPrefix(a, "--health-addr=") {
			a = "--health-addr=127.0.0.1:0"
		}
		args = append(args, a)
	}
	if !strings.Contains(strings.Join(env, "\n"), "SORTIE_CA_FILE="+p.Root) {
		t.Fatalf("the rendered environment gives no CA file: %q", env)
	}

	s.agent = start(t, "agent (as the chart renders it)", env, args...)
	s.agent.WaitLine(regexp.MustCompile(`"msg":"connected to the server"`)) // the chart logs JSON
	s.canary()
}
