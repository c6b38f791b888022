package storetest

import (
	"encoding/json"
	"testing"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// NoStepTwice fails t unless a pipeline's events (as the runner writes
// them) show some commands and steps, and no command's result recorded
// twice nor a step started (RUNNING) twice: what "nothing ran twice" means
// after a restart or a takeover.
func NoStepTwice(t testing.TB, es []store.Event) {
	t.Helper()
	results, starts := map[string]int{}, map[string]int{}
	for _, e := range es {
		switch e.Type {
		case "command":
			var r pipeline.CommandResult
			if err := json.Unmarshal(e.Data, &r); err != nil {
				t.Fatalf("event %d: %v", e.Seq, err)
			}
			results[r.CommandID]++
		case "status":
			var c pipeline.Change
			if err := json.Unmarshal(e.Data, &c); err != nil {
				t.Fatalf("event %d: %v", e.Seq, err)
			}
			if c.Step != "" && c.To == pipeline.StatusRunning {
				starts[c.Target+"/"+c.Step]++
			}
		}
	}
	if len(results) == 0 || len(starts) == 0 {
		t.Fatalf("%d command results and %d step starts in the events, want some of each", len(results), len(starts))
	}
	for id, n := range results {
		if n > 1 {
			t.Errorf("command %s: %d results", id, n)
		}
	}
	for s, n := range starts {
		if n > 1 {
			t.Errorf("step %s started %d times", s, n)
		}
	}
}
