package gate_test

import (
	"strings"
	"testing"

	"github.com/sortie-cd/sortie/analysis"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/pipeline"
)

// runValues is a query whose value a real Prometheus computes from the
// run's own window (GROWING: the window of run k is k intervals long), so
// run 1 sees 0.5, run 2 sees 2 and run 3 sees 0.5 without the test racing
// Prometheus's scrapes to change a metric between runs.
const runValues = `analysis:
  defaultMetricProviderName: prom
  queries:
    - name: latency
      queryTemplate: '0.5 + 1.5 * (({{armory.endTimeEpochSeconds}} - {{armory.startTimeEpochSeconds}}) / {{armory.intervalSeconds}} == bool 2)'
      upperLimit: 1
`

func averagedSteps(abort string) string {
	return `        - setWeight: {weight: 50}
        - analysis:
            interval: 1
            units: seconds
            numberOfJudgmentRuns: 3
            rollBackMode: automatic
            rollForwardMode: automatic
            lookbackMethod: GROWING
            abortOnFailedJudgment: ` + abort + `
            queries: [latency]
`
}

// TestCanaryJudgedByTheMeanOfItsRuns: on the local cluster, through a real
// server and a real Prometheus, judgment runs of 0.5, 2 and 0.5 against
// upperLimit 1 pass by their mean (1) and the canary is promoted, as Armory
// specified it; with abortOnFailedJudgment: true the second run fails the
// analysis and the canary is rolled back.
func TestCanaryJudgedByTheMeanOfItsRuns(t *testing.T) {
	e, _ := newAnalysisEnv(t)
	p := e.waitEnd(e.deploy("example/web:v2", averagedSteps("false"), runValues))
	if p.Status != pipeline.StatusSucceeded {
		t.Fatalf("averaged: v2 ended %s\n%s", p.Status, clienttest.Dump(p))
	}
	if got := e.images(); got["example/web:v2"] != 4 || len(got) != 1 {
		t.Errorf("averaged: pods after promotion: %v", got)
	}
	js := e.judgments(p.ID)
	want := []struct {
		value   float64
		verdict string
		mean    bool
	}{{0.5, analysis.Pass, false}, {2, analysis.Fail, false}, {0.5, analysis.Pass, false}, {1, analysis.Pass, true}}
	if len(js) != len(want) {
		t.Fatalf("averaged: %d judgments, want 3 runs and their mean: %+v", len(js), js)
	}
	for i, w := range want {
		if j := js[i]; j.Value == nil || *j.Value != w.value || j.Verdict != w.verdict || j.Mean != w.mean {
			t.Errorf("averaged: judgment %d: %+v, want %v %s (mean %v)", i, j, w.value, w.verdict, w.mean)
		}
	}

	e.deployV1()
	p = e.waitEnd(e.deploy("example/web:v2", averagedSteps("true"), runValues))
	tgt := p.Targets[0]
	if p.Status != pipeline.StatusFailed || tgt.Status != pipeline.StatusRolledBack || !strings.Contains(tgt.Message, "run 2 of 3: query latency = 2 is above its upper limit 1") {
		t.Fatalf("abortOnFailedJudgment: pipeline %s, target %s %q\n%s", p.Status, tgt.Status, tgt.Message, clienttest.Dump(p))
	}
	if got := e.images(); got["example/web:v1"] != 4 || len(got) != 1 {
		t.Errorf("abortOnFailedJudgment: pods after rollback: %v", got)
	}
	if js := e.judgments(p.ID); len(js) != 2 || *js[1].Value != 2 || js[1].Verdict != analysis.Fail {
		t.Errorf("abortOnFailedJudgment: judgments %+v, want two, the second failing", js)
	}
}
