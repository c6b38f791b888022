package kubeexec_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/kubeexec"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/plan"
	"github.com/sortie-cd/sortie/progress"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// TestReportsAppliedObjects runs a canary's set-weight command against the
// shared cluster and checks the "applied" event it reports: the objects
// written, by kind, namespace and name; and that a job without Report runs
// the same.
func TestReportsAppliedObjects(t *testing.T) {
	ctx := context.Background()
	ns := kubetest.Namespace(t)
	kx, err := kube.New(kubetest.Config(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	src := store.Source{FileName: "deploy.yml", File: fmt.Sprintf(`version: v1
kind: kubernetes
application: shop
targets:
  prod: {account: local, namespace: %s, strategy: c}
strategies:
  c: {canary: {steps: [{setWeight: {weight: 50}}]}}
manifests:
  - inline: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: shop-settings}
      data: {color: blue}
      ---
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: shop}
      spec:
        replicas: 2
        selector: {matchLabels: {app: shop}}
        template:
          metadata: {labels: {app: shop}}
          spec:
            containers: [{name: web, image: "shop:v1"}]
`, ns)}
	f, _, err := runner.Load(runner.StartRequest{FileName: src.FileName, File: src.File})
	if err != nil {
		t.Fatal(err)
	}
	spec := runner.SpecFrom(f, store.DefaultTenant, nil, func(string) bool { return false })
	pl, err := plan.Resolve(f, "p1")
	if err != nil {
		t.Fatal(err)
	}
	x := kubeexec.New(store.DefaultTenant, map[string]*kube.Executor{"local": kx}, nil)
	cmd := pipeline.Command{ID: "p1/prod/canary/0", Kind: pipeline.CmdSetWeight, Pipeline: "p1", Target: "prod",
		Step: "canary/0", Account: "local", Namespace: ns, Weight: 50}

	var reported []store.Event
	job := runner.Job{Tenant: store.DefaultTenant, Command: cmd, Spec: &spec, Target: pl.Target("prod"),
		Report: func(_ context.Context, ev store.Event) error { reported = append(reported, ev); return nil }}
	if res := x.Execute(ctx, job); !res.Success {
		t.Fatalf("set weight failed: %s", res.Message)
	}
	if len(reported) != 1 || reported[0].Type != progress.EventApplied {
		t.Fatalf("reported %+v, want one %q event", reported, progress.EventApplied)
	}
	var got progress.AppliedEvent
	if err := json.Unmarshal(reported[0].Data, &got); err != nil {
		t.Fatal(err)
	}
	want := progress.AppliedEvent{Target: "prod", Step: "canary/0", Command: cmd.ID}
	if diff := cmp.Diff(want, got, cmpIgnoreObjects); diff != "" {
		t.Errorf("applied event (-want +got):\n%s", diff)
	}
	seen := map[string]bool{}
	for _, o := range got.Objects {
		seen[o.String()] = true
		if o.Namespace != ns {
			t.Errorf("object %s is outside the target's namespace %s", o, ns)
		}
	}
	if !seen["ConfigMap/"+ns+"/shop-settings"] || len(got.Objects) < 2 {
		t.Errorf("applied objects %v, want the ConfigMap and the canary's workload", got.Objects)
	}

	// Without a Report, the command runs all the same.
	job.Report, job.Command.ID, job.Command.Weight = nil, "p1/prod/canary/0b", 100
	if res := x.Execute(ctx, job); !res.Success {
		t.Fatalf("set weight without Report failed: %s", res.Message)
	}
}

var cmpIgnoreObjects = cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Objects" }, cmp.Ignore())
