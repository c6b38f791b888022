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
//
// With a Replica (several servers on one database), only the pipeline's
// owner arms and runs the removal: the replica that finished it, or, once
// that one is no longer live, the one that claims the row at a lease tick
// (store.ClaimWarm), which arms it at the stored deadline. A timer that
// fires on a replica no longer the owner (it was paused past its TTL)
// does nothing.

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

// has reports whether a removal is armed under k.
func (w *warmTimers) has(k string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.m[k] != nil
}

func (w *warmTimers) forget(k string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, k)
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

func warmKey(w store.Warm) string { return key(w.Tenant, w.Pipeline) + "/" + w.Target }

// armWarm arms the removal of w's warm version at w.Until.
func (r *Runner) armWarm(w store.Warm) {
	d := max(w.Until.Sub(r.clock.Now()), 0)
	r.timers.set(warmKey(w), r.clock.AfterFunc(d, func() {
		if !r.running() {
			return
		}
		defer r.wg.Done()
		r.dropWarm(r.ctx, w)
	}))
}

// resumeWarm arms the stored removals: all of them on a server alone, the
// owned ones not armed yet with a Replica (at each lease tick).
func (r *Runner) resumeWarm(ctx context.Context) error {
	var (
		ws  []store.Warm
		err error
	)
	if r.replica == "" {
		ws, err = r.store.ListWarm(ctx)
	} else {
		ws, err = r.store.ClaimWarm(ctx, r.replica, r.clock.Now())
	}
	if err != nil {
		return err
	}
	for _, w := range ws {
		if r.replica != "" && r.timers.has(warmKey(w)) {
			continue
		}
		r.armWarm(w)
		if r.replica != "" {
			r.log.Info("warm version: removal armed here", "pipeline", w.Pipeline, "tenant", w.Tenant, "target", w.Target, "replica", r.replica, "at", w.Until)
		}
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
	if r.replica != "" && p.Lease.Owner != r.replica {
		r.log.Info("warm version: another replica removes it", "pipeline", w.Pipeline, "tenant", w.Tenant, "target", w.Target, "owner", p.Lease.Owner)
		r.timers.forget(warmKey(w))
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
	if err := r.store.DeleteWarm(ctx, w.Tenant, w.Pipeline, w.Target); err != nil {
		r.log.Error("warm version removed, but not forgotten", "pipeline", w.Pipeline, "tenant", w.Tenant, "target", w.Target, "err", err)
		return
	}
	r.timers.forget(warmKey(w))
	r.log.Info("warm version removed", "pipeline", w.Pipeline, "tenant", w.Tenant, "target", w.Target)
}

func (r *Runner) retryWarm(w store.Warm) {
	w.Until = r.clock.Now().Add(warmRetry)
	r.armWarm(w)
}
