package runner_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
)

// reporting is an executor that reports an event with every command, then
// succeeds; it keeps the last Job so the test can report after the end.
type reporting struct {
	last chan runner.Job
}

func (x *reporting) HasAccount(string, string) bool { return true }

func (x *reporting) Execute(ctx context.Context, job runner.Job) pipeline.CommandResult {
	data, _ := json.Marshal(map[string]string{"command": job.Command.ID})
	if err := job.Report(ctx, store.Event{Type: "progress", Data: data}); err != nil {
		return pipeline.CommandResult{Message: err.Error()}
	}
	x.last <- job
	return pipeline.CommandResult{Success: true}
}

func TestExecutorReportsEvents(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	x := &reporting{last: make(chan runner.Job, 10)}
	r := runner.New(runner.Options{Store: st, Executor: x})
	t.Cleanup(r.Close)
	e := &env{t: t, r: r, store: st, ns: "default"}
	id := e.start(e.file("reported", "  prod: {account: local, namespace: default, strategy: canary}",
		"  canary: {canary: {steps: [{setWeight: {weight: 50}}]}}", "example/web:v1", ""))
	p := e.waitEnd(id)
	if p.Status != pipeline.StatusSucceeded {
		t.Fatalf("pipeline %s\n%s", p.Status, dump(p))
	}
	evs, err := r.Events(ctx, store.DefaultTenant, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	var reported []string
	for i, ev := range evs {
		if ev.Seq != int64(i+1) {
			t.Errorf("event %d has seq %d", i, ev.Seq)
		}
		if ev.Type == "progress" {
			var d map[string]string
			json.Unmarshal(ev.Data, &d)
			reported = append(reported, d["command"])
			if ev.Pipeline != id || ev.At.IsZero() {
				t.Errorf("reported event %+v lacks its pipeline or time", ev)
			}
		}
	}
	if len(reported) != 1 || reported[0] != id+"/prod/finalize" {
		t.Errorf("reported events %v, want the finalize command's", reported)
	}
	// The report changed no state, and one after the end is refused.
	if stored, _ := st.GetPipeline(ctx, store.DefaultTenant, id); stored.Status != pipeline.StatusSucceeded {
		t.Errorf("stored status %s", stored.Status)
	}
	job := <-x.last
	if err := job.Report(ctx, store.Event{Type: "progress"}); err == nil {
		t.Errorf("report after the end: %v, want an error", err)
	}
}
