package runner_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
)

// unavailable is an executor whose weight changes always fail transiently
// and whose rollbacks succeed: the subject is the runner's retry bound, so
// no cluster plays a part.
type unavailable struct{ runs atomic.Int32 }

func (*unavailable) HasAccount(string, string) bool { return true }

func (x *unavailable) Execute(ctx context.Context, job runner.Job) pipeline.CommandResult {
	if job.Command.Kind == pipeline.CmdRollback {
		return pipeline.CommandResult{Success: true}
	}
	x.runs.Add(1)
	return pipeline.CommandResult{Message: "the API server is unavailable", Transient: true}
}

// Retries end with the step's deadline: the last transient failure then
// reaches the engine, which fails the step.
func TestRetriesEndAtTheStepDeadline(t *testing.T) {
	st := openStore(t)
	// The step's deadline (the file's timeout, a minute at least) is a few
	// seconds ahead: the clock starts most of a minute in the past.
	clock := &manualClock{now: time.Now().Add(-56 * time.Second)}
	x := &unavailable{}
	r := runner.New(runner.Options{Store: st, Executor: x, Clock: clock})
	t.Cleanup(r.Close)
	e := &env{t: t, r: r, store: st, ns: "default"}
	req := e.file("retry", "  prod: {account: local, namespace: default, strategy: canary}",
		"  canary: {canary: {steps: [{setWeight: {weight: 50}}]}}", "example/web:v1", "")
	req.File = "deploymentConfig: {timeout: {duration: 1, unit: MINUTES}}\n" + req.File
	p := e.waitEnd(e.start(req))
	if p.Status != pipeline.StatusFailed {
		t.Fatalf("pipeline ended %s, want FAILED\n%s", p.Status, dump(p))
	}
	if !strings.Contains(dump(p), "the API server is unavailable") {
		t.Errorf("the failure does not say why:\n%s", dump(p))
	}
	retries := e.retries(p.ID)
	if runs := int(x.runs.Load()); runs < 2 || len(retries) != runs-1 {
		t.Errorf("%d runs and %d retry events, want several runs, each but the last followed by a retry", runs, len(retries))
	}
	for i, rt := range retries {
		if rt.Attempt != i+2 {
			t.Errorf("retry %d says attempt %d, want %d", i, rt.Attempt, i+2)
		}
	}
}
