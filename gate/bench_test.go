package gate_test

import (
	"testing"
	"time"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/pipeline"
)

// BenchmarkMetricCrossingToRollback measures, in one run on the real
// cluster and a real Prometheus, the time from the new version's error rate
// crossing its limit (set just after a judgment run passed: the worst case,
// a whole interval to the next run) to the rollback being complete (the
// target ROLLED_BACK, by the server's clock). The goal is at most one
// analysis interval plus the rollback, measured from the failing judgment
// run to the target rolled back (query, engine, rollback command); the
// benchmark fails otherwise and reports the ratio to that bound (≤ 1).
//
//	go test ./gate -run '^$' -bench MetricCrossingToRollback -benchtime 1x
func BenchmarkMetricCrossingToRollback(b *testing.B) {
	const interval = 2 * time.Second
	m := newMetrics(b, 0.01)
	e := newEnv(b)
	e.addPrometheus(m.prom.URL)
	e.deployV1()
	var total, rollback, command time.Duration
	for i := 0; i < b.N; i++ {
		if i > 0 {
			m.set(b, 0.01)
			e.deployV1()
		}
		id := e.deploy("example/web:v2", analysisSteps(int(interval/time.Second), 30, "automatic")+"            abortOnFailedJudgment: true\n", analysisQueries)
		e.waitFor(id, "a judgment passed", func(*api.PipelineView) bool { return len(e.judgments(id)) > 0 })
		crossed := time.Now()
		m.errRate.Set(0.5)
		p := e.waitEnd(id)
		tgt := p.Targets[0]
		if tgt.Status != pipeline.StatusRolledBack || tgt.Rollback == nil {
			b.Fatalf("target %s\n%s", tgt.Status, clienttest.Dump(p))
		}
		js := e.judgments(id)
		failed := js[len(js)-1]
		if failed.Verdict != "fail" {
			b.Fatalf("last judgment %+v", failed)
		}
		total += tgt.EndedAt.Sub(crossed)
		// The rollback, as the user waits for it: from the failing judgment
		// run (its scheduled time) to the target rolled back. The rollback
		// command alone is reported too.
		rollback += tgt.EndedAt.Sub(failed.End)
		command += tgt.Rollback.EndedAt.Sub(tgt.Rollback.StartedAt)
	}
	n := time.Duration(b.N)
	total, rollback, command = total/n, rollback/n, command/n
	bound := interval + rollback
	b.ReportMetric(total.Seconds(), "crossing-to-rolled-back-s")
	b.ReportMetric(interval.Seconds(), "interval-s")
	b.ReportMetric(rollback.Seconds(), "judgment-to-rolled-back-s")
	b.ReportMetric(command.Seconds(), "rollback-command-s")
	b.ReportMetric(total.Seconds()/bound.Seconds(), "ratio-to-bound")
	b.ReportMetric(0, "ns/op")
	if total > bound {
		b.Errorf("crossing to rolled back took %s, over one interval (%s) plus the rollback (%s)", total, interval, rollback)
	}
}
