package runner

import (
	"context"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// TestTracingOffAllocatesNothing: a runner without a tracer pays nothing
// for tracing on its transitions and commands.
func TestTracingOffAllocatesNothing(t *testing.T) {
	tr := newTracer(nil)
	now := time.Now()
	prev := &store.Pipeline{Tenant: "main", ID: "p", Status: pipeline.StatusRunning,
		State: pipeline.State{Status: pipeline.StatusRunning, Targets: []pipeline.TargetState{{Name: "prod", Status: pipeline.StatusRunning, StartedAt: now}}}}
	next := &store.Pipeline{Tenant: "main", ID: "p", Status: pipeline.StatusSucceeded,
		State: pipeline.State{Status: pipeline.StatusSucceeded, Targets: []pipeline.TargetState{{Name: "prod", Status: pipeline.StatusSucceeded, StartedAt: now, EndedAt: now}}}}
	job := Job{Command: pipeline.Command{ID: "p/prod/finalize", Kind: pipeline.CmdFinalize, Target: "prod", Step: "finalize"}}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		tr.observe(prev, next)
		_, span := tr.command(ctx, job)
		finish(span, pipeline.StatusSucceeded, "", time.Time{})
	})
	if allocs != 0 {
		t.Errorf("tracing off: %v allocations per transition and command, want 0", allocs)
	}
}
