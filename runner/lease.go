package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// DefaultLeaseTTL is how long a replica's lease on a pipeline lasts
// unless renewed (Options.LeaseTTL).
const DefaultLeaseTTL = 15 * time.Second

// errLost: the pipeline's lease was taken over; this runner no longer
// drives it.
var errLost = errors.New("the pipeline's lease was lost to another replica")

// lost reports whether err says the pipeline is no longer this runner's:
// its lease was lost, or the store fenced a save.
func lost(err error) bool { return errors.Is(err, errLost) || errors.Is(err, store.ErrFenced) }

// startLeasing is Resume with a Replica: what a previous run under the same
// id held is let go of (and claimed again at once, by this run or another
// replica), then the first lease tick claims and resumes this replica's
// share, and the ticks go on every TTL/3.
func (r *Runner) startLeasing(ctx context.Context) error {
	if err := r.store.ReleaseLeases(ctx, r.replica, nil); err != nil {
		return fmt.Errorf("runner: resume: %w", err)
	}
	r.log.Info("leasing pipelines", "replica", r.replica, "lease_ttl", r.ttl.String())
	if err := r.leaseTick(ctx); err != nil {
		return fmt.Errorf("runner: resume: %w", err)
	}
	r.armLeases()
	return nil
}

// armLeases sets the next lease tick, TTL/3 from now on the runner's clock,
// so that two renewals may fail before a lease expires, or sooner, when
// another replica's lease runs out first: a replica that died leaves its
// pipelines to be claimed the moment its leases expire, not up to TTL/3
// later. (A live replica renews every TTL/3, so its leases run out at
// least 2·TTL/3 ahead and set no earlier tick.)
func (r *Runner) armLeases() {
	wait := r.ttl / 3
	now := r.clock.Now()
	if next, err := r.store.NextExpiry(r.ctx, r.replica, now); err != nil {
		if r.ctx.Err() == nil {
			r.log.Warn("lease tick: next expiry", "replica", r.replica, "err", err)
		}
	} else if !next.IsZero() && next.Sub(now) < wait {
		wait = max(next.Sub(now), 0)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.leaseTimer = r.clock.AfterFunc(wait, func() {
		if !r.running() {
			return
		}
		defer r.wg.Done()
		if err := r.leaseTick(r.ctx); err != nil && r.ctx.Err() == nil {
			r.log.Error("lease tick", "replica", r.replica, "err", err)
		}
		r.armLeases()
	})
}

// leaseTick renews the leases of the pipelines in memory, lets go of
// those it no longer holds (taken over, or not renewed in time) without
// writing anything of them, then claims this replica's share of the free
// ones and resumes them.
func (r *Runner) leaseTick(ctx context.Context) error {
	r.leases.Lock()
	now := r.clock.Now()
	held := map[store.LeaseRef]*pipe{}
	r.mu.Lock()
	pipes := make([]*pipe, 0, len(r.pipes))
	for _, pp := range r.pipes {
		pipes = append(pipes, pp)
	}
	r.mu.Unlock()
	refs := make([]store.LeaseRef, 0, len(pipes))
	for _, pp := range pipes {
		pp.mu.Lock()
		ref := store.LeaseRef{Tenant: pp.p.Tenant, ID: pp.p.ID, Epoch: pp.p.Lease.Epoch}
		gone := pp.lost || pp.p.Status.Terminal()
		pp.mu.Unlock()
		if !gone {
			held[ref] = pp
			refs = append(refs, ref)
		}
	}
	var lose []*pipe
	why := "taken over by another replica"
	kept, err := r.store.RenewLeases(ctx, r.replica, refs, now, r.ttl)
	if err == nil {
		r.leaseUntil = now.Add(r.ttl)
		for _, k := range kept {
			delete(held, k)
		}
		for _, pp := range held {
			lose = append(lose, pp)
		}
	} else if !now.Before(r.leaseUntil) {
		// Not renewed in time: another replica may hold them now. The
		// store would fence this one's saves anyway; stopping spares the
		// cluster commands that would be repeated.
		why = "not renewed before it expired"
		for _, pp := range held {
			lose = append(lose, pp)
		}
	}
	var claimed []*store.Pipeline
	if err == nil {
		claimed, err = r.store.ClaimLeases(ctx, r.replica, now, r.ttl)
		for _, p := range claimed {
			r.adoptLeased(p)
		}
	}
	var handed []*pipe
	if err == nil {
		handed = r.rebalance(ctx, now, len(kept)+len(claimed))
	}
	r.leases.Unlock()
	lose = append(lose, handed...)
	for _, pp := range lose {
		pp.mu.Lock()
		r.loseLocked(pp, why)
		pp.mu.Unlock()
		r.forget(pp)
	}
	if len(claimed) > 0 {
		r.log.Info("claimed pipelines", "replica", r.replica, "count", len(claimed))
		r.resume(ctx, claimed, true)
	}
	if err == nil {
		// The warm versions of the pipelines this replica owns, and of
		// finished ones whose owner is gone, are removed here.
		err = r.resumeWarm(ctx)
	}
	return err
}

// rebalanceAfter is how many lease ticks in a row a replica must hold more
// than its fair share before it hands pipelines over: a replica that
// joins, or one whose renewals failed once, does not set pipelines moving
// at once, and two replicas never pass pipelines back and forth (a
// replica hands over only its excess, and claims only up to its share).
const rebalanceAfter = 2

// rebalance hands over, when this replica held more than its fair share
// (live replicas from the store) for rebalanceAfter ticks, its excess
// pipelines that are between events: no command of theirs queued or
// running. Each is handed over under its lock, so no event is taken
// meanwhile, by releasing the lease without writing anything of it; the
// replica with room claims and resumes it at its next tick, as after a
// restart. It returns the pipelines handed over, marked lost, for the
// caller to forget. Runs under r.leases.
func (r *Runner) rebalance(ctx context.Context, now time.Time, mine int) []*pipe {
	share, err := r.store.FairShare(ctx, now)
	if err != nil {
		r.log.Warn("lease tick: fair share", "replica", r.replica, "err", err)
		return nil
	}
	if mine <= share {
		r.over = 0
		return nil
	}
	if r.over++; r.over < rebalanceAfter {
		return nil
	}
	r.over = 0
	type aged struct {
		pp      *pipe
		created time.Time
	}
	r.mu.Lock()
	pipes := make([]aged, 0, len(r.pipes))
	for _, pp := range r.pipes {
		pipes = append(pipes, aged{pp: pp})
	}
	r.mu.Unlock()
	for i := range pipes {
		pipes[i].pp.mu.Lock()
		pipes[i].created = pipes[i].pp.p.CreatedAt
		pipes[i].pp.mu.Unlock()
	}
	// The newest first: the oldest, nearest their end, stay.
	slices.SortFunc(pipes, func(a, b aged) int { return b.created.Compare(a.created) })
	var handed []*pipe
	for _, x := range pipes {
		pp := x.pp
		if len(handed) == mine-share {
			break
		}
		pp.mu.Lock()
		if pp.lost || pp.p.Status.Terminal() || pp.p.Status == pipeline.StatusQueued || !pp.idle() {
			pp.mu.Unlock()
			continue
		}
		ref := store.LeaseRef{Tenant: pp.p.Tenant, ID: pp.p.ID, Epoch: pp.p.Lease.Epoch}
		if err := r.store.HandOver(ctx, r.replica, []store.LeaseRef{ref}); err != nil {
			pp.mu.Unlock()
			r.log.Warn("lease tick: hand over", "replica", r.replica, "pipeline", ref.ID, "err", err)
			break
		}
		r.loseLocked(pp, "handed over: this replica held more than its fair share")
		pp.mu.Unlock()
		handed = append(handed, pp)
	}
	if len(handed) > 0 {
		r.log.Info("handed pipelines over", "replica", r.replica, "count", len(handed), "share", share)
	}
	return handed
}

// idle reports whether no command of pp's is queued or running. Runs
// under pp.mu.
func (pp *pipe) idle() bool {
	for _, w := range pp.workers {
		if !w.idle() {
			return false
		}
	}
	return true
}

// adoptLeased puts a pipeline whose lease this runner just took in memory;
// one there already (under an older epoch) becomes the one read with the
// lease. Runs under r.leases.
func (r *Runner) adoptLeased(p *store.Pipeline) *pipe {
	pp := r.adopt(p)
	pp.mu.Lock()
	if pp.p.Lease.Epoch < p.Lease.Epoch {
		// Its commands start again from the stored state, by resume.
		for _, w := range pp.workers {
			w.stop()
		}
		if pp.timer != nil {
			pp.timer.Stop()
		}
		pp.p, pp.plan, pp.lost, pp.workers = p, nil, false, map[string]*worker{}
	}
	pp.mu.Unlock()
	return pp
}

// take takes over the lease of a pipeline another replica drives (or none
// does), because an event for it reached this one: a person's action, a
// freeze, the start of a queued pipeline. It is resumed here as a claimed
// one is; the replica that held it stops at its next renewal, or at its
// next save, which the store fences.
func (r *Runner) take(ctx context.Context, tenant, id string) (*pipe, error) {
	r.leases.RLock()
	p, err := r.store.TakeLease(ctx, r.replica, tenant, id, r.clock.Now(), r.ttl)
	if err != nil {
		r.leases.RUnlock()
		return nil, err
	}
	if p.Status.Terminal() {
		r.leases.RUnlock()
		return nil, fmt.Errorf("pipeline %s %w (%s)", id, errEnded, p.Status)
	}
	pp := r.adoptLeased(p)
	r.leases.RUnlock()
	r.log.Info("took over pipeline for an event", "pipeline", id, "tenant", tenant, "replica", r.replica, "epoch", p.Lease.Epoch)
	r.resume(ctx, []*store.Pipeline{p}, false) // the event taken for is applied next
	return pp, nil
}

// stale reports, after the engine refused an event on the pipeline in
// memory, whether that copy was out of date: another replica took the
// lease (and may have moved the state on) before this one's renewal
// noticed. It then lets the pipeline go, and the event is taken again
// with the lease.
func (r *Runner) stale(ctx context.Context, pp *pipe) bool {
	pp.mu.Lock()
	tenant, id, epoch := pp.p.Tenant, pp.p.ID, pp.p.Lease.Epoch
	pp.mu.Unlock()
	p, err := r.store.GetPipeline(ctx, tenant, id)
	if err != nil || (p.Lease.Owner == r.replica && p.Lease.Epoch == epoch) {
		return false
	}
	pp.mu.Lock()
	r.loseLocked(pp, "taken over by another replica")
	pp.mu.Unlock()
	r.forget(pp)
	return true
}

// loseLocked stops everything of a pipeline whose lease is no longer this
// runner's, writing nothing: its workers (their results are dropped), its
// timer. Runs under pp.mu; the caller then calls forget.
func (r *Runner) loseLocked(pp *pipe, why string) {
	if pp.lost {
		return
	}
	pp.lost = true
	for _, w := range pp.workers {
		w.stop()
	}
	if pp.timer != nil {
		pp.timer.Stop()
	}
	r.metrics.gone(pp.p.Status)
	r.log.Warn("pipeline lease lost; no longer driving it here", "pipeline", pp.p.ID, "tenant", pp.p.Tenant, "replica", r.replica, "epoch", pp.p.Lease.Epoch, "why", why)
}

// forget removes a lost pipeline from memory (not a newer one under the
// same key). Runs with no pipeline lock held.
func (r *Runner) forget(pp *pipe) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pipes[pp.key] == pp {
		delete(r.pipes, pp.key)
	}
}

// releaseAll gives up, at Close, the leases of the pipelines in memory, so
// that another replica takes them over at once instead of after the TTL.
func (r *Runner) releaseAll() {
	if r.replica == "" {
		return
	}
	r.mu.Lock()
	var refs []store.LeaseRef
	for _, pp := range r.pipes {
		pp.mu.Lock()
		if !pp.lost && !pp.p.Status.Terminal() {
			refs = append(refs, store.LeaseRef{Tenant: pp.p.Tenant, ID: pp.p.ID, Epoch: pp.p.Lease.Epoch})
		}
		pp.mu.Unlock()
	}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if refs == nil {
		refs = []store.LeaseRef{}
	}
	if err := r.store.ReleaseLeases(ctx, r.replica, refs); err != nil {
		r.log.Warn("release leases at close", "replica", r.replica, "err", err)
	}
}
