package runner

import (
	"context"
	"sync"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// A target that SUCCEEDED with keepPrevious left the version it replaced
// warm in its cluster (pipeline.TargetState.WarmUntil). The runner removes
// it at that time: the deadline is stored (store.Warm) before the success
// is, a timer is armed at it, and Resume arms the stored ones again, so a
// restart loses none. Removing is a CmdDropWarm sent straight to the
// executor: the pipeline has ended, the engine takes no part.

// warmRetry is how long a failed removal (an agent not connected) waits
// before it is tried again.
const warmRetry = time.Minute

type warmTimers struct {
	mu sync.Mutex
	m  map[string]Timer // by tenant/pipeline/target
}

func (w *warmTimers) set(k string, t Timer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string]Timer{}
	}
	if old := w.m[k]; old != nil {
		old.Stop()
	}
	w.m[k] = t
}

func (w *warmTimers) stopAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range w.m {
		t.Stop()
	}
	w.m = nil
}

// newlyWarm returns the targets of next whose previous version became warm
// in this transition.
func newlyWarm(prev, next *store.Pipeline) []store.Warm {
	var out []store.Warm
	for _, t := range next.State.Targets {
		if t.WarmUntil.IsZero() {
			continue
		}
		if pt := prev.State.Target(t.Name); pt != nil && pt.WarmUntil.Equal(t.WarmUntil) {
			continue
		}
		out = append(out, store.Warm{Tenant: next.Tenant, Pipeline: next.ID, Target: t.Name, Until: t.WarmUntil})
	}
	return out
}

// armWarm arms the removal of w's warm version at w.Until.
func (r *Runner) armWarm(w store.Warm) {
	d := max(w.Until.Sub(r.clock.Now()), 0)
	r.timers.set(key(w.Tenant, w.Pipeline)+"/"+w.Target, r.clock.AfterFunc(d, func() {
		if !r.running() {
			return
		}
		defer r.wg.Done()
		r.dropWarm(r.ctx, w)
	}))
}

// resumeWarm arms the stored removals.
func (r *Runner) resumeWarm(ctx context.Context) error {
	ws, err := r.store.ListWarm(ctx)
	if err != nil {
		return err
	}
	for _, w := range ws {
		r.armWarm(w)
	}
	return nil
}

// dropWarm asks the target's cluster to remove the warm version, and
// forgets it once done; a failure is tried again later.
func (r *Runner) dropWarm(ctx context.Context, w store.Warm) {
	p, err := r.store.GetPipeline(ctx, w.Tenant, w.Pipeline)
	if err != nil {
		r.log.Error("warm version: read pipeline", "pipeline", w.Pipeline, "tenant", w.Tenant, "target", w.Target, "err", err)
		r.retryWarm(w)
		return
	}
	pl, err := storedPlan(p)
	if err != nil {
		r.log.Error("warm version: plan", "pipeline", w.Pipeline, "tenant", w.Tenant, "target", w.Target, "err", err)
		return // it will not decode next time either
	}
	c := pipeline.Command{ID: w.Pipeline + "/" + w.Target + "/dropWarm", Kind: pipeline.CmdDropWarm, Pipeline: w.Pipeline, Target: w.Target}
	if ts := p.State.Spec.Target(w.Target); ts != nil {
		c.Account, c.Namespace = ts.Account, ts.Namespace
	}
	job := Job{Tenant: w.Tenant, Command: c, Spec: &p.State.Spec, Target: pl.Target(w.Target),
		Report: func(context.Context, store.Event) error { return nil }}
	if res := r.exec.Execute(ctx, job); !res.Success {
		r.log.Error("warm version not removed", "pipeline", w.Pipeline, "tenant", w.Tenant, "target", w.Target, "err", res.Message)
		r.retryWarm(w)
		return
	}
	r.log.Info("warm version removed", "pipeline", w.Pipeline, "tenant", w.Tenant, "target", w.Target)
	if err := r.store.DeleteWarm(ctx, w.Tenant, w.Pipeline, w.Target); err != nil {
		r.log.Error("warm version: forget", "pipeline", w.Pipeline, "tenant", w.Tenant, "target", w.Target, "err", err)
	}
}

func (r *Runner) retryWarm(w store.Warm) {
	w.Until = r.clock.Now().Add(warmRetry)
	r.armWarm(w)
}
