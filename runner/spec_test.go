package runner_test

import (
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie-cd/sortie/deployfile"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
)

// A blue/green of two Deployments names a Service pair for each in
// trafficManagement.kubernetes (borealis-demo's deploy.yml): the first pair
// is the strategy's, the second goes with it, each preview with its own
// active Service.
func TestSpecBlueGreenServicePairs(t *testing.T) {
	const file = `version: v1
kind: kubernetes
application: potato-facts
targets:
  prod-eu (blue-green): {account: eu, namespace: prod, strategy: bg}
strategies:
  bg:
    blueGreen:
      redirectTrafficAfter: [{pause: {untilApproved: true}}]
trafficManagement:
  - targets: ["prod-eu (blue-green)"]
    kubernetes:
      - activeService: potato-facts-external
        previewService: potato-facts-internal
      - activeService: potato-lies-external
        previewService: potato-lies-internal
manifests:
  - inline: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: c}
`
	res := deployfile.LoadFS(fstest.MapFS{"deploy.yml": {Data: []byte(file)}}, "deploy.yml", deployfile.Options{})
	if len(res.Errors) > 0 {
		t.Fatal(res.Errors)
	}
	bg := runner.SpecFrom(res.File, "main", nil, nil).Targets[0].Strategy.BlueGreen
	got := []pipeline.ServicePair{{Active: bg.ActiveService, Preview: bg.PreviewService}}
	got = append(got, bg.MoreServices...)
	want := []pipeline.ServicePair{{Active: "potato-facts-external", Preview: "potato-facts-internal"}, {Active: "potato-lies-external", Preview: "potato-lies-internal"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("service pairs (-want +got):\n%s", diff)
	}
}
