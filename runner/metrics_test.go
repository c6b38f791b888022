package runner_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
)

// pipelinesGauge reads sortie_engine_pipelines from reg, by status, leaving
// out statuses at zero.
func pipelinesGauge(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "sortie_engine_pipelines" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if v := m.GetGauge().GetValue(); v != 0 {
				out[m.GetLabel()[0].GetValue()] = v
			}
		}
	}
	return out
}

func TestPipelinesGaugeCountsWhatIsInFlight(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	reg := prometheus.NewRegistry()
	e := newEnvOpts(t, runner.Options{Store: st, Metrics: runner.NewMetrics(reg)})
	straight := "  c:\n    canary:\n      steps:\n        - setWeight: 100"
	for i, image := range []string{"web:v1", "web:v2", "web:v3"} {
		if p := e.waitEnd(e.start(e.file("gauge", e.oneTarget("t", "c"), straight, image, ""))); p.Status != pipeline.StatusSucceeded {
			t.Fatalf("pipeline %d ended %s\n%s", i, p.Status, dump(p))
		}
	}
	if got := pipelinesGauge(t, reg); len(got) != 0 {
		t.Errorf("after three pipelines ended, sortie_engine_pipelines = %v, want 0 for every status", got)
	}

	gated := "  c:\n    canary:\n      steps:\n        - setWeight: 50\n        - pause: {untilApproved: true}"
	enqueue := "deploymentConfig:\n  ifDeploymentInProgress: {strategy: enqueueOne}\n"
	req := e.file("gauge", e.oneTarget("t", "c"), gated, "web:v4", "")
	req.File = enqueue + req.File
	first := e.start(req)
	e.waitFor(first, "awaiting approval", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })
	req = e.file("gauge", e.oneTarget("t", "c"), gated, "web:v5", "")
	req.File = enqueue + req.File
	second := e.start(req)
	want := map[string]float64{string(pipeline.StatusAwaitingApproval): 1, string(pipeline.StatusQueued): 1}
	if diff := cmp.Diff(want, pipelinesGauge(t, reg)); diff != "" {
		t.Errorf("sortie_engine_pipelines with one awaiting approval and one queued (-want +got):\n%s", diff)
	}

	// A restart: the next server counts what it resumes.
	e.r.Close()
	reg = prometheus.NewRegistry()
	r := runner.New(runner.Options{Store: st, Executor: e.exec, Metrics: runner.NewMetrics(reg)})
	t.Cleanup(r.Close)
	if err := r.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	e.r = r
	if diff := cmp.Diff(want, pipelinesGauge(t, reg)); diff != "" {
		t.Errorf("sortie_engine_pipelines after the restart (-want +got):\n%s", diff)
	}
	for _, id := range []string{first, second} {
		e.waitFor(id, "awaiting approval", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })
		if _, err := r.Act(ctx, store.DefaultTenant, id, pipeline.Approve{By: deployer}); err != nil {
			t.Fatal(err)
		}
		e.waitEnd(id)
	}
	if got := pipelinesGauge(t, reg); len(got) != 0 {
		t.Errorf("after every pipeline ended, sortie_engine_pipelines = %v, want 0 for every status", got)
	}
}

// delivery sums, from reg, the samples of the delivery metric name whose
// labels include want: a counter's or gauge's value, a histogram's count.
func delivery(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

// TestDeliveryMetricsByReason deploys a canary gated by an approval three
// times on the local cluster: a first deployment, one a person rejects and
// one a person rolls back while it waits. The delivery metrics count each
// outcome, rollback reason and approval outcome, and the approvals waiting.
func TestDeliveryMetricsByReason(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	e := newEnvOpts(t, runner.Options{Store: openStore(t), Metrics: runner.NewMetrics(reg)})
	gated := "  c:\n    canary:\n      steps:\n        - setWeight: 50\n        - pause: {untilApproved: true}"
	start := func(image string) string {
		return e.start(e.file("gated", e.oneTarget("prod", "c"), gated, image, ""))
	}
	awaiting := func(id string) {
		e.waitFor(id, "awaiting approval", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })
	}
	app := map[string]string{"tenant": store.DefaultTenant, "application": "gated", "target": "prod"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for ak, av := range app {
			m[ak] = av
		}
		return m
	}
	if p := e.waitEnd(start("web:v1")); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first deployment ended %s\n%s", p.Status, dump(p))
	}

	id := start("web:v2")
	awaiting(id)
	if got := delivery(t, reg, "sortie_delivery_approvals_waiting", app); got != 1 {
		t.Errorf("approvals waiting = %v, want 1", got)
	}
	if _, err := e.r.Act(ctx, store.DefaultTenant, id, pipeline.Reject{By: deployer, Reason: "no"}); err != nil {
		t.Fatal(err)
	}
	e.waitEnd(id)
	id = start("web:v3")
	awaiting(id)
	if _, err := e.r.Act(ctx, store.DefaultTenant, id, pipeline.Rollback{Target: "prod", By: deployer, Reason: "by hand"}); err != nil {
		t.Fatal(err)
	}
	e.waitEnd(id)

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sortie_delivery_deployment_duration_seconds", with("outcome", "succeeded"), 1},
		{"sortie_delivery_deployment_duration_seconds", with("outcome", "rolled_back"), 2},
		{"sortie_delivery_deployment_duration_seconds", with("outcome", "failed"), 0},
		{"sortie_delivery_rollbacks_total", with("reason", "rejected"), 1},
		{"sortie_delivery_rollbacks_total", with("reason", "manual"), 1},
		{"sortie_delivery_rollbacks_total", app, 2},
		{"sortie_delivery_rollback_duration_seconds", with("outcome", "succeeded"), 2},
		{"sortie_delivery_approval_wait_seconds", with("outcome", "rejected"), 1},
		{"sortie_delivery_approval_wait_seconds", with("outcome", "cancelled"), 1},
		{"sortie_delivery_analysis_judgments_total", app, 0},
		{"sortie_delivery_approvals_waiting", app, 0},
	} {
		if got := delivery(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The counters of a target that started exist at zero.
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "sortie_delivery_rollbacks_total" && len(mf.GetMetric()) != 9 {
			t.Errorf("%d series of sortie_delivery_rollbacks_total, want one per reason", len(mf.GetMetric()))
		}
	}
}
