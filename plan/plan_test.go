package plan_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie-cd/sortie/deployfile"
	"github.com/sortie-cd/sortie/plan"
)

const file = `version: v1
kind: kubernetes
application: shop
targets:
  staging: {account: dev, namespace: shop-staging, strategy: slow}
  prod: {account: prod, strategy: slow, constraints: {dependsOn: [staging], beforeDeployment: [{runWebhook: {name: ticket}}]}}
context: {color: blue}
manifests:
  - inline: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: shop}
      data: {color: "{{context.color}}", env: "{{armory.environmentName}}", ns: "{{sortie.namespace}}", id: "{{armory.deploymentId}}"}
  - inline: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: prod-only}
    targets: [prod]
  - inline: |
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: shop, namespace: shop-ns}
      spec:
        selector: {matchLabels: {app: shop}}
        template:
          metadata: {labels: {app: shop}}
          spec: {containers: [{name: web, image: "shop:v1"}]}
strategies:
  slow:
    canary:
      steps:
        - setWeight: {weight: 50}
        - analysis: {queries: [errors], units: seconds, interval: 1, lookbackMethod: GROWING, numberOfJudgmentRuns: 1, rollBackMode: automatic}
analysis:
  defaultMetricProviderName: prom
  queries:
    - {name: errors, queryTemplate: "rate(x[1m])", upperLimit: 1}
    - {name: unused, queryTemplate: "y", upperLimit: 1}
webhooks:
  - {name: ticket, method: POST, uriTemplate: "https://tickets.example/{{armory.environmentName}}", disableCallback: true}
  - {name: other, method: POST, uriTemplate: "https://other.example/", disableCallback: true}
trafficManagement:
  - targets: [prod]
    smi: [{rootServiceName: shop}]
`

func resolve(t *testing.T) *plan.Plan {
	t.Helper()
	res := deployfile.Parse("deploy.yml", []byte(file))
	if len(res.Errors) > 0 {
		t.Fatal(res.Errors)
	}
	p, err := plan.Resolve(res.File, "p-1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolveRendersEachTargetOnce(t *testing.T) {
	p := resolve(t)
	st, prod := p.Target("staging"), p.Target("prod")
	if st == nil || prod == nil || p.Target("nope") != nil {
		t.Fatalf("targets: %+v", p.Targets)
	}
	if len(st.Manifests) != 2 || len(prod.Manifests) != 3 {
		t.Fatalf("staging has %d manifests (want 2), prod %d (want 3)", len(st.Manifests), len(prod.Manifests))
	}
	for _, want := range []string{`color: "blue"`, `env: "staging"`, `ns: "shop-staging"`, `id: "p-1"`} {
		if !strings.Contains(st.Manifests[0].Text, want) {
			t.Errorf("staging manifest lacks %s:\n%s", want, st.Manifests[0].Text)
		}
	}
	// A target without a namespace goes where its Deployment says, and
	// its objects keep their own.
	if !strings.Contains(prod.Manifests[0].Text, `ns: "shop-ns"`) {
		t.Errorf("prod manifest: %s", prod.Manifests[0].Text)
	}
	if prod.Namespace != "shop-ns" || !prod.OwnNamespaces || st.Namespace != "shop-staging" || st.OwnNamespaces {
		t.Errorf("namespaces: prod %q (own %v), staging %q (own %v)", prod.Namespace, prod.OwnNamespaces, st.Namespace, st.OwnNamespaces)
	}
	if st.ReplicaSetName != "shop-"+st.Version || len(st.Version) != 10 || st.Version == prod.Version {
		t.Errorf("staging version %q, replica set %q; prod version %q", st.Version, st.ReplicaSetName, prod.Version)
	}
	if st.Traffic != nil || prod.Traffic == nil || prod.Traffic.SMI[0].RootService != "shop" {
		t.Errorf("traffic: staging %+v, prod %+v", st.Traffic, prod.Traffic)
	}
	// Gates: each target holds what its own steps call, nothing else.
	if _, ok := prod.Webhooks["ticket"]; !ok || len(prod.Webhooks) != 1 || len(st.Webhooks) != 0 {
		t.Errorf("webhooks: staging %v, prod %v", st.Webhooks, prod.Webhooks)
	}
	if _, ok := st.Queries["errors"]; !ok || len(st.Queries) != 1 || st.DefaultProvider != "prom" {
		t.Errorf("queries: %v, provider %q", st.Queries, st.DefaultProvider)
	}
}

func TestPlanSurvivesJSON(t *testing.T) {
	p := resolve(t)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back plan.Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	// Positions and a template's offset in its file stay behind: the
	// plan runs, it does not point at the file.
	opt := cmp.FilterPath(func(p cmp.Path) bool { return strings.HasSuffix(p.String(), "Pos") }, cmp.Ignore())
	text := cmp.Transformer("text", func(t deployfile.Template) string { return t.Text })
	if diff := cmp.Diff(p, &back, opt, text); diff != "" {
		t.Errorf("plan after a JSON round trip (-want +got):\n%s", diff)
	}
}

func TestVars(t *testing.T) {
	tg := resolve(t).Target("staging")
	got := tg.Vars(map[string]string{"callbackUri": "https://x/cb"})
	want := map[string]string{
		"applicationName": "shop", "deploymentId": "p-1", "environmentName": "staging",
		"accountName": "dev", "namespace": "shop-staging", "callbackUri": "https://x/cb",
		"replicaSetName": tg.ReplicaSetName,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("vars (-want +got):\n%s", diff)
	}
}

func TestUnrenderableManifestNamesIt(t *testing.T) {
	res := deployfile.Parse("deploy.yml", []byte(file))
	if len(res.Errors) > 0 {
		t.Fatal(res.Errors)
	}
	res.File.Context = nil // {{context.color}} now has no value
	_, err := plan.Resolve(res.File, "p-1")
	if err == nil || !strings.Contains(err.Error(), "target staging") || !strings.Contains(err.Error(), "color") {
		t.Fatalf("err = %v, want the manifest, target and variable named", err)
	}
}

// Every change to what a target deploys is a new version; the same file
// again is the same one (even under another pipeline, unless a manifest
// names the pipeline).
func TestVersionFollowsEveryManifest(t *testing.T) {
	parse := func(text string) *deployfile.File {
		res := deployfile.Parse("deploy.yml", []byte(text))
		if len(res.Errors) > 0 {
			t.Fatal(res.Errors)
		}
		return res.File
	}
	noID := strings.Replace(file, `, id: "{{armory.deploymentId}}"`, "", 1)
	a, err := plan.Resolve(parse(noID), "p-1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := plan.Resolve(parse(noID), "p-2")
	if err != nil {
		t.Fatal(err)
	}
	changed, err := plan.Resolve(parse(strings.Replace(noID, "color: blue", "color: green", 1)), "p-3")
	if err != nil {
		t.Fatal(err)
	}
	if a.Target("staging").Version != again.Target("staging").Version {
		t.Errorf("the same manifests under another pipeline changed the version")
	}
	if a.Target("staging").Version == changed.Target("staging").Version {
		t.Errorf("a ConfigMap-only change kept the version: it would skip the strategy")
	}
}

func TestDeploymentsInTwoNamespacesNeedATargetNamespace(t *testing.T) {
	text := strings.Replace(file, "  - inline: |\n      apiVersion: apps/v1", `  - inline: |
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: other, namespace: elsewhere}
      spec:
        selector: {matchLabels: {app: other}}
        template:
          metadata: {labels: {app: other}}
          spec: {containers: [{name: web, image: "other:v1"}]}
  - inline: |
      apiVersion: apps/v1`, 1)
	res := deployfile.Parse("deploy.yml", []byte(text))
	if len(res.Errors) > 0 {
		t.Fatal(res.Errors)
	}
	_, err := plan.Resolve(res.File, "p-1")
	if err == nil || !strings.Contains(err.Error(), "target prod has no namespace") {
		t.Fatalf("err = %v, want the target named", err)
	}
}
