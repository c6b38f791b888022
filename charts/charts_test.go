package charts

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sortie-cd/sortie/charts/charttest"
	"github.com/sortie-cd/sortie/cli"
	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/localkube"
	"github.com/sortie-cd/sortie/store/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Around(func() int { return kubetest.Run(m) })) }

// helm runs the pinned helm with args against the test cluster.
func helm(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return charttest.Helm(t, kubetest.Cluster(t).Kubeconfig, args...)
}

func mustHelm(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, errOut, out)
	}
	return out
}

// kubectl applies YAML to the test cluster with the given flags.
func kubectl(t *testing.T, yaml string, args ...string) string {
	t.Helper()
	bins, err := localkube.EnsureBinaries(context.Background(), localkube.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bins.Path(localkube.Kubectl), append([]string{"--kubeconfig", kubetest.Cluster(t).Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(yaml)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// kinds lists the kind/name of each object of a rendered chart.
func kinds(t *testing.T, yaml string) map[string]bool {
	t.Helper()
	objs, err := kube.Decode([]byte(yaml))
	if err != nil {
		t.Fatalf("the rendered chart does not decode: %v\n%s", err, yaml)
	}
	out := map[string]bool{}
	for _, o := range objs {
		out[o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName()] = true
	}
	return out
}

const agentChart = "sortie-agent"

var agentMinimal = []string{"--set", "serverURL=https://sortie.example.com", "--set", "agentID=prod", "--set", "credentials.existingSecret=agent-creds"}

// TestAgentChartSchema: values that cannot work are refused by the values
// schema, each with a message naming the value.
func TestAgentChartSchema(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no server URL", []string{"--set", "agentID=prod", "--set", "credentials.existingSecret=agent-creds"}, "serverURL"},
		{"no credentials Secret", []string{"--set", "serverURL=https://sortie.example.com", "--set", "agentID=prod"}, "credentials"},
		{"a server URL without a scheme", append(append([]string{}, agentMinimal...), "--set", "serverURL=sortie.example.com"), "serverURL"},
		{"namespaced RBAC without namespaces", append(append([]string{}, agentMinimal...), "--set", "rbac.clusterWide=false"), "namespaces"},
		{"a misspelt value", append(append([]string{}, agentMinimal...), "--set", "serverUrl=https://x"), "serverUrl"},
		{"an unknown log level", append(append([]string{}, agentMinimal...), "--set", "log.level=verbose"), "level"},
		{"a host name as a relay range", append(append([]string{}, agentMinimal...), "--set", "relayAllow={localhost}"), "relayAllow"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, err := helm(t, append([]string{"template", "a", agentChart}, c.args...)...)
			if err == nil || !strings.Contains(errOut, "values don't meet the specifications of the schema") || !strings.Contains(errOut, c.want) {
				t.Errorf("helm template with %s: %v\n%s%s\nwant a schema error naming %s", c.name, err, errOut, out, c.want)
			}
		})
	}
}

// TestAgentChart: helm lint passes; the chart rendered with the least
// values and with all of them is accepted by the cluster's API server
// (--dry-run=server); a change of settings changes the pod template's
// checksum; helm install creates every object and the Deployment becomes
// available (a kwok pod).
func TestAgentChart(t *testing.T) {
	mustHelm(t, append([]string{"lint", "--strict", agentChart}, agentMinimal...)...)
	ns := kubetest.Namespace(t)
	other := kubetest.Namespace(t)
	serviceMonitorCRD(t)

	minimal := mustHelm(t, append([]string{"template", "a", agentChart, "--namespace", ns}, agentMinimal...)...)
	got := kinds(t, minimal)
	for _, want := range []string{"ServiceAccount/" + ns + "/a-sortie-agent", "ClusterRole//a-sortie-agent", "ClusterRoleBinding//a-sortie-agent", "Deployment/" + ns + "/a-sortie-agent", "Service/" + ns + "/a-sortie-agent-metrics"} {
		if !got[want] {
			t.Errorf("the minimal rendering lacks %s: %v", want, got)
		}
	}
	if want := `image: "` + cli.ImageRepository + `:`; !strings.Contains(minimal, want) {
		t.Errorf("the agent chart's default image is not make image's repository (%s)", want)
	}
	kubectl(t, minimal, "apply", "--dry-run=server", "-f", "-")

	full := mustHelm(t, "template", "b", agentChart, "--namespace", ns, "-f", "testdata/agent-full.yaml",
		"--set", "rbac.namespaces={"+ns+","+other+"}")
	got = kinds(t, full)
	for _, want := range []string{"Role/" + ns + "/b-sortie-agent", "RoleBinding/" + other + "/b-sortie-agent", "ConfigMap/" + ns + "/b-sortie-agent-ca", "ServiceMonitor/" + ns + "/b-sortie-agent"} {
		if !got[want] {
			t.Errorf("the full rendering lacks %s: %v", want, got)
		}
	}
	if strings.Contains(minimal, "SORTIE_NAMESPACES") {
		t.Errorf("a cluster-wide agent is limited to namespaces")
	}
	if got["ClusterRole//b-sortie-agent"] {
		t.Errorf("namespaced RBAC rendered a ClusterRole")
	}
	for _, want := range []string{"HTTPS_PROXY", "SORTIE_CA_FILE", "mountPath: /etc/sortie/ca", "--log-level=debug", `{name: SORTIE_NAMESPACES, value: "` + ns + "," + other + `"}`,
		`{name: SORTIE_RELAY_ALLOW, value: "127.0.0.0/8,::1/128"}`, "name: OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if !strings.Contains(full, want) {
			t.Errorf("the full rendering lacks %s", want)
		}
	}
	kubectl(t, full, "apply", "--dry-run=server", "-f", "-")

	// A setting changed: the pod template changes, so the pod rolls.
	changed := mustHelm(t, append([]string{"template", "a", agentChart, "--namespace", ns, "--set", "proxy.https=http://proxy:3128"}, agentMinimal...)...)
	if checksum(t, minimal) == checksum(t, changed) {
		t.Errorf("the checksum annotation did not change with proxy.https")
	}

	kubectl(t, "", "-n", ns, "create", "secret", "generic", "agent-creds", "--from-literal=client-id=id", "--from-literal=client-secret=secret")
	mustHelm(t, append([]string{"install", "c", agentChart, "--namespace", ns, "--wait", "--timeout", "3m", "--set", "rbac.clusterWide=false", "--set", "rbac.namespaces={" + ns + "}"}, agentMinimal...)...)
	c := kubetest.Client(t)
	ctx := context.Background()
	// helm's --wait may return before the Deployment's status says so
	// (seen on a loaded machine); the cluster must then get there.
	kubetest.Until(t, ns, "c-sortie-agent is available", 2*time.Minute, func() bool {
		d, err := c.AppsV1().Deployments(ns).Get(ctx, "c-sortie-agent", metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas == 1
	})
	d, err := c.AppsV1().Deployments(ns).Get(ctx, "c-sortie-agent", metav1.GetOptions{})
	if err != nil || d.Status.AvailableReplicas != 1 {
		t.Fatalf("the agent Deployment after helm install --wait: %v %+v", err, d.Status)
	}
	if _, err := c.CoreV1().ServiceAccounts(ns).Get(ctx, "c-sortie-agent", metav1.GetOptions{}); err != nil {
		t.Error(err)
	}
	if _, err := c.RbacV1().RoleBindings(ns).Get(ctx, "c-sortie-agent", metav1.GetOptions{}); err != nil {
		t.Error(err)
	}
	var svc *corev1.Service
	if svc, err = c.CoreV1().Services(ns).Get(ctx, "c-sortie-agent-metrics", metav1.GetOptions{}); err != nil || len(svc.Spec.Ports) != 1 {
		t.Errorf("metrics Service: %v", err)
	}
}

// checksum is the checksum/config annotation of the rendered Deployment.
func checksum(t *testing.T, yaml string) string {
	t.Helper()
	objs, err := kube.Decode([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() == "Deployment" {
			v, _, _ := unstructuredString(o.Object, "spec", "template", "metadata", "annotations", "checksum/config")
			if v == "" {
				t.Fatal("the Deployment's pod template has no checksum/config annotation")
			}
			return v
		}
	}
	t.Fatal("no Deployment rendered")
	return ""
}

func unstructuredString(obj map[string]any, path ...string) (string, bool, error) {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false, nil
		}
		cur = m[p]
	}
	s, ok := cur.(string)
	return s, ok, nil
}

// serviceMonitorCRD installs a minimal CustomResourceDefinition of the
// Prometheus Operator's ServiceMonitor (the local cluster has no operator),
// so a rendering with one is checked by the API server.
func serviceMonitorCRD(t *testing.T) {
	t.Helper()
	kubectl(t, `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {plural: servicemonitors, singular: servicemonitor, kind: ServiceMonitor, listKind: ServiceMonitorList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
`, "apply", "--server-side", "-f", "-")
	bins, _ := localkube.EnsureBinaries(context.Background(), localkube.BuildOptions{})
	out, err := exec.Command(bins.Path(localkube.Kubectl), "--kubeconfig", kubetest.Cluster(t).Kubeconfig, "wait", "--for=condition=Established", "--timeout=60s", "crd/servicemonitors.monitoring.coreos.com").CombinedOutput()
	if err != nil {
		t.Fatalf("the ServiceMonitor CRD: %v\n%s", err, out)
	}
}

// TestChartsPackagedWithVersion: `make charts` packages each chart with
// --app-version set to the release's version; the package then installs the
// image of that version when image.tag is not given, and says so in its
// labels.
func TestChartsPackagedWithVersion(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		chart  string
		values []string
	}{{agentChart, agentMinimal}, {serverChart, serverMinimal}} {
		mustHelm(t, "package", c.chart, "--app-version", "v1.2.3", "-d", dir)
		pkg := dir + "/" + c.chart + "-0.1.0.tgz"
		out := mustHelm(t, append([]string{"template", "r", pkg, "--namespace", "ns"}, c.values...)...)
		if !strings.Contains(out, `image: "ghcr.io/sortie-cd/sortie:v1.2.3"`) {
			t.Errorf("%s packaged with app version v1.2.3 does not install image sortie:v1.2.3:\n%s", c.chart, out)
		}
		if !strings.Contains(out, `app.kubernetes.io/version: "v1.2.3"`) {
			t.Errorf("%s packaged with app version v1.2.3 does not label its objects with it", c.chart)
		}
		tagged := mustHelm(t, append([]string{"template", "r", pkg, "--namespace", "ns", "--set", "image.tag=v2"}, c.values...)...)
		if !strings.Contains(tagged, `image: "ghcr.io/sortie-cd/sortie:v2"`) {
			t.Errorf("%s: image.tag=v2 is not the image installed", c.chart)
		}
	}
}
