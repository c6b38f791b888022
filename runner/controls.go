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

// Windows returns the deploy windows admins set in tenant.
func (r *Runner) Windows(ctx context.Context, tenant string) ([]pipeline.Window, error) {
	return r.store.ListWindows(ctx, tenant)
}

// PutWindow creates or replaces a deploy window of tenant. It applies to
// pipelines created from now on, and reaches those in flight (their targets
// not started yet) and queued (at their start) too.
func (r *Runner) PutWindow(ctx context.Context, tenant string, w pipeline.Window) error {
	if err := pipeline.CheckScope(w.Scope); err != nil {
		return err
	}
	if len(w.Targets) > 0 {
		return &pipeline.Error{Code: pipeline.CodeInvalid, Message: "a window set by an admin names its target by its scope (target NAME), not by targets"}
	}
	if err := w.Validate(); err != nil {
		return err
	}
	if err := r.store.PutWindow(ctx, tenant, w); err != nil {
		return err
	}
	r.windowsChanged(ctx, tenant, pipeline.Principal{Name: "sortie"})
	return nil
}

// DeleteWindow deletes a deploy window of tenant.
func (r *Runner) DeleteWindow(ctx context.Context, tenant, scope, name string) error {
	if err := r.store.DeleteWindow(ctx, tenant, scope, name); err != nil {
		return err
	}
	r.windowsChanged(ctx, tenant, pipeline.Principal{Name: "sortie"})
	return nil
}

// windowsChanged gives each pipeline of tenant in flight the windows admins
// set that now apply to it. A queued one gets them when it starts
// (tryStartNext).
func (r *Runner) windowsChanged(ctx context.Context, tenant string, by pipeline.Principal) {
	flights, err := r.inFlight(ctx, tenant)
	if err != nil {
		r.log.Error("windows not applied to the pipelines in flight", "tenant", tenant, "err", err)
		return
	}
	for _, p := range flights {
		ws, _, err := r.Controls(ctx, tenant, p.application, p.targets)
		if err != nil {
			r.log.Error("windows not applied", "pipeline", p.id, "tenant", tenant, "err", err)
			continue
		}
		r.tell(ctx, tenant, p.id, pipeline.SetWindows{Windows: ws, By: by})
	}
}

// Freezes returns tenant's freezes in force.
func (r *Runner) Freezes(ctx context.Context, tenant string) ([]pipeline.Freeze, error) {
	fs, err := r.store.ListFreezes(ctx, tenant)
	if err != nil {
		return nil, err
	}
	now := r.clock.Now()
	return slices.DeleteFunc(fs, func(f pipeline.Freeze) bool { return !f.Until.IsZero() && !f.Until.After(now) }), nil
}

// SetFreeze stores a freeze of tenant (replacing the one of its scope) and
// holds the pipelines in flight that it applies to.
func (r *Runner) SetFreeze(ctx context.Context, by pipeline.Principal, tenant string, f pipeline.Freeze) error {
	if err := pipeline.CheckScope(f.Scope); err != nil {
		return err
	}
	now := r.clock.Now()
	if f.Reason == "" {
		return &pipeline.Error{Code: pipeline.CodeInvalid, Message: "a freeze needs a reason"}
	}
	if !f.Until.IsZero() && !f.Until.After(now) {
		return &pipeline.Error{Code: pipeline.CodeInvalid, Message: fmt.Sprintf("the freeze's end %s has passed", f.Until.UTC().Format(time.RFC3339))}
	}
	f.By, f.At, f.Targets = by.Name, now, nil
	if err := r.store.PutFreeze(ctx, tenant, f); err != nil {
		return err
	}
	flights, err := r.inFlight(ctx, tenant)
	if err != nil {
		return err
	}
	for _, p := range flights {
		if ok, targets := pipeline.ScopeTargets(f.Scope, p.application, p.targets); ok {
			held := f
			held.Targets = targets
			r.tell(ctx, tenant, p.id, pipeline.SetFreeze{Freeze: held, By: by})
		}
	}
	return nil
}

// LiftFreeze deletes the freeze of scope and lets the pipelines it held go
// on.
func (r *Runner) LiftFreeze(ctx context.Context, by pipeline.Principal, tenant, scope string) error {
	if err := r.store.DeleteFreeze(ctx, tenant, scope); err != nil {
		return err
	}
	flights, err := r.inFlight(ctx, tenant)
	if err != nil {
		return err
	}
	for _, p := range flights {
		if slices.ContainsFunc(p.freezes, func(f pipeline.Freeze) bool { return f.Scope == scope }) {
			r.tell(ctx, tenant, p.id, pipeline.LiftFreeze{Scope: scope, By: by})
		}
	}
	return nil
}

// tell applies an event the runner sends on its own (a freeze reaching a
// pipeline); a pipeline that ended meanwhile does not matter.
func (r *Runner) tell(ctx context.Context, tenant, id string, ev pipeline.Event) {
	if err := r.apply(ctx, tenant, id, ev); err != nil && !errors.Is(err, errEnded) {
		r.log.Error("freeze or window not applied", "pipeline", id, "tenant", tenant, "err", err)
	}
}

type flight struct {
	id, application string
	targets         []string
	freezes         []pipeline.Freeze
}

// inFlight lists tenant's started pipelines that have not ended: those
// held in memory or, with a Replica, every one in the store, whichever
// replica drives it (telling one another replica drives takes its lease
// over: see take).
func (r *Runner) inFlight(ctx context.Context, tenant string) ([]flight, error) {
	var ps []*store.Pipeline
	if r.replica != "" {
		all, err := r.store.ResumablePipelines(ctx)
		if err != nil {
			return nil, fmt.Errorf("runner: pipelines in flight: %w", err)
		}
		ps = all
	} else {
		r.mu.Lock()
		pipes := make([]*pipe, 0, len(r.pipes))
		for _, pp := range r.pipes {
			pipes = append(pipes, pp)
		}
		r.mu.Unlock()
		for _, pp := range pipes {
			pp.mu.Lock()
			ps = append(ps, pp.p)
			pp.mu.Unlock()
		}
	}
	var out []flight
	for _, p := range ps {
		if p.Tenant != tenant || p.Status.Terminal() || p.Status == pipeline.StatusQueued {
			continue
		}
		f := flight{id: p.ID, application: p.Application, freezes: p.State.Freezes}
		for _, t := range p.State.Targets {
			f.targets = append(f.targets, t.Name)
		}
		out = append(out, f)
	}
	return out, nil
}

// Controls returns the windows and the freezes in force of tenant that
// apply to a deployment of application to targets, each window's and
// freeze's Targets filled with the ones it holds: what a pipeline is
// created with, and what `deploy plan` shows.
func (r *Runner) Controls(ctx context.Context, tenant, application string, targets []string) ([]pipeline.Window, []pipeline.Freeze, error) {
	ws, err := r.store.ListWindows(ctx, tenant)
	if err != nil {
		return nil, nil, fmt.Errorf("runner: windows: %w", err)
	}
	fs, err := r.Freezes(ctx, tenant)
	if err != nil {
		return nil, nil, fmt.Errorf("runner: freezes: %w", err)
	}
	var windows []pipeline.Window
	for _, w := range ws {
		if ok, held := pipeline.ScopeTargets(w.Scope, application, targets); ok {
			w.Targets = held
			windows = append(windows, w)
		}
	}
	var freezes []pipeline.Freeze
	for _, f := range fs {
		if ok, held := pipeline.ScopeTargets(f.Scope, application, targets); ok {
			f.Targets = held
			freezes = append(freezes, f)
		}
	}
	return windows, freezes, nil
}
