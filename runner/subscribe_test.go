package runner_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
)

// TestSlowFanOutDoesNotBlockOtherPipelines: while one pipeline's events are
// being delivered to a slow subscriber, another pipeline starts and moves
// on. Before, publish held the runner's lock for the whole fan-out, which
// every transition takes to find its pipeline.
func TestSlowFanOutDoesNotBlockOtherPipelines(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	r := runner.New(runner.Options{Store: st, Executor: &reporting{last: make(chan runner.Job, 10)}})
	t.Cleanup(r.Close)
	entered, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	runner.SetDelivering(r, func(string) {
		if first.CompareAndSwap(false, true) {
			close(entered)
			<-release // the first delivery is slow
		}
	})
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := r.Subscribe(sctx, store.DefaultTenant)

	e := &env{t: t, r: r, store: st, ns: "default"}
	file := func(app string) runner.StartRequest {
		return e.file(app, "  prod: {account: local, namespace: default, strategy: canary}",
			"  canary: {canary: {steps: [{setWeight: {weight: 50}}]}}", "example/web:v1", "")
	}
	started := make(chan error, 1)
	go func() {
		_, err := r.Start(ctx, deployer, store.DefaultTenant, file("first"))
		started <- err
	}()
	<-entered
	second := make(chan error, 1)
	go func() {
		_, err := r.Start(ctx, deployer, store.DefaultTenant, file("second"))
		second <- err
	}()
	select {
	case err := <-second:
		if err != nil {
			t.Fatalf("second start: %v", err)
		}
	case err := <-started:
		t.Fatalf("the first start returned (%v) before its slow delivery was released", err)
	case <-time.After(time.Minute):
		close(release)
		t.Fatal("a pipeline's start waited for another pipeline's events to reach a slow subscriber")
	}
	close(release)
	if err := <-started; err != nil {
		t.Fatalf("first start: %v", err)
	}
	// Both end, and the subscriber saw events of both.
	seen := map[string]bool{}
	ended := map[string]bool{}
	for len(ended) < 2 {
		ev, ok := <-events
		if !ok {
			t.Fatal("the subscriber was dropped")
		}
		seen[ev.Pipeline] = true
		p, err := st.GetPipeline(ctx, store.DefaultTenant, ev.Pipeline)
		if err == nil && p.Status == pipeline.StatusSucceeded {
			ended[ev.Pipeline] = true
		}
	}
	if len(seen) != 2 {
		t.Errorf("events of %v, want both pipelines'", seen)
	}
}
