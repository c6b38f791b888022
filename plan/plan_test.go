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
	if len(st.Manifests) != 1 || len(prod.Manifests) != 2 {
		t.Fatalf("staging has %d manifests (want 1), prod %d (want 2)", len(st.Manifests), len(prod.Manifests))
	}
	for _, want := range []string{`color: "blue"`, `env: "staging"`, `ns: "shop-staging"`, `id: "p-1"`} {
		if !strings.Contains(st.Manifests[0].Text, want) {
			t.Errorf("staging manifest lacks %s:\n%s", want, st.Manifests[0].Text)
		}
	}
	// A target without a namespace names the default one in its variables.
	if !strings.Contains(prod.Manifests[0].Text, `ns: "default"`) {
		t.Errorf("prod manifest: %s", prod.Manifests[0].Text)
	}
	if prod.Namespace != "" {
		t.Errorf("prod namespace %q, want none (the file gives none)", prod.Namespace)
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
