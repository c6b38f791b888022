package runner

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/plan"
	"github.com/sortie-cd/sortie/store"
)

// Executor runs the engine's commands. Execute blocks until the command is
// done or ctx ends, and reports the outcome; it must be idempotent, since a
// command may be repeated after a restart.
type Executor interface {
	Execute(ctx context.Context, job Job) pipeline.CommandResult
	// HasAccount reports whether commands for account can run now (an agent
	// is connected, or the in-process executor serves it).
	HasAccount(tenant, account string) bool
}

// Job is one command with what its executor needs to know of its pipeline.
type Job struct {
	Tenant  string
	Command pipeline.Command
	// Spec is the pipeline's spec (strategy details, timeouts).
	Spec *pipeline.Spec
	// Target is the plan of the command's target, resolved when the
	// deployment started: what the executor renders, applies and calls.
	Target *plan.Target
	// Report appends ev to the pipeline's event log (and its subscribers)
	// without changing its state: how an executor shows progress, such as
	// each judgment run of an analysis. The runner fills Tenant, Pipeline
	// and a zero At. It fails once the pipeline has ended or no longer runs
	// here.
	Report func(ctx context.Context, ev store.Event) error

	planErr error // why Target is nil: the command fails without running
}

// Clock is time as the runner sees it. Tests may pass a fake.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a stoppable timer.
type Timer interface{ Stop() bool }

type realClock struct{}

func (realClock) Now() time.Time                            { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Options configure a Runner.
type Options struct {
	Store    store.Store
	Executor Executor
	// Clock: nil means the real clock.
	Clock Clock
	// Log: nil discards.
	Log *slog.Logger
	// Metrics: nil means no metrics.
	Metrics *Metrics
}

// Runner drives every pipeline of one server.
type Runner struct {
	store   store.Store
	exec    Executor
	clock   Clock
	log     *slog.Logger
	metrics *Metrics

	ctx    context.Context // lives as long as the runner
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	pipes map[string]*pipe // in-flight pipelines by tenant/id

	subs subscribers // under its own lock, never r.mu
}

// pipe is one in-flight pipeline in memory. mu serialises its transitions.
type pipe struct {
	mu      sync.Mutex
	p       *store.Pipeline
	plan    *plan.Plan // decoded from p.Source.Plan on first use
	timer   Timer
	workers map[string]*worker // by target
}

func key(tenant, id string) string { return tenant + "/" + id }

// New returns a Runner. Call Resume once to pick up pipelines of a previous
// run, and Close to stop.
func New(opts Options) *Runner {
	r := &Runner{
		store:   opts.Store,
		exec:    opts.Executor,
		clock:   opts.Clock,
		log:     opts.Log,
		metrics: opts.Metrics,
		pipes:   map[string]*pipe{},
		subs:    subscribers{subs: map[string]map[*subscriber]struct{}{}},
	}
	if r.clock == nil {
		r.clock = realClock{}
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Close stops timers and command workers and waits for them. Commands in
// flight are abandoned, not failed: their pipelines resume on the next start.
func (r *Runner) Close() {
	r.cancel()
	r.mu.Lock()
	for _, pp := range r.pipes {
		pp.mu.Lock()
		if pp.timer != nil {
			pp.timer.Stop()
		}
		pp.mu.Unlock()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// Resume loads every pipeline that had not ended, arms its timer at its
// persisted deadline, sends its unanswered commands again, and starts any
// queued pipeline whose turn came while the server was down.
func (r *Runner) Resume(ctx context.Context) error {
	ps, err := r.store.ResumablePipelines(ctx)
	if err != nil {
		return fmt.Errorf("runner: resume: %w", err)
	}
	apps := map[[2]string]bool{}
	for _, p := range ps {
		if p.Status == pipeline.StatusQueued {
			apps[[2]string{p.Tenant, p.Application}] = true
			continue
		}
		pp := r.adopt(p)
		pp.mu.Lock()
		r.log.Info("resuming pipeline", "pipeline", p.ID, "tenant", p.Tenant, "status", p.Status, "outstanding", len(p.State.Outstanding))
		for _, c := range p.State.Outstanding {
			r.dispatch(pp, c)
		}
		r.arm(pp)
		pp.mu.Unlock()
		// Deadlines that passed while the server was down fire now.
		if err := r.apply(ctx, p.Tenant, p.ID, pipeline.Tick{}); err != nil && !errors.Is(err, errEnded) {
			r.log.Error("resume tick failed", "pipeline", p.ID, "err", err)
		}
	}
	for app := range apps {
		r.startNext(ctx, app[0], app[1])
	}
	return nil
}

// adopt puts a stored pipeline in memory (or returns the one there).
func (r *Runner) adopt(p *store.Pipeline) *pipe {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := key(p.Tenant, p.ID)
	if pp, ok := r.pipes[k]; ok {
		return pp
	}
	pp := &pipe{p: p, workers: map[string]*worker{}}
	r.pipes[k] = pp
	return pp
}

// target returns the plan of one target of the pipeline: the one stored
// when it started or, for a pipeline stored before plans were, resolved
// from its source once. Runs under pp.mu.
func (pp *pipe) target(name string) (*plan.Target, error) {
	if pp.plan == nil {
		pl, err := storedPlan(pp.p)
		if err != nil {
			return nil, err
		}
		pp.plan = pl
	}
	t := pp.plan.Target(name)
	if t == nil {
		return nil, fmt.Errorf("target %q is not in the pipeline's plan", name)
	}
	return t, nil
}

func storedPlan(p *store.Pipeline) (*plan.Plan, error) {
	if len(p.Source.Plan) > 0 {
		var pl plan.Plan
		if err := json.Unmarshal(p.Source.Plan, &pl); err != nil {
			return nil, fmt.Errorf("the stored plan does not decode: %w", err)
		}
		return &pl, nil
	}
	src := p.Source
	f, _, err := Load(StartRequest{FileName: src.FileName, File: src.File, Manifests: src.Manifests, Context: src.Context, Application: p.Application})
	if err != nil {
		return nil, fmt.Errorf("the stored deployment no longer loads: %w", err)
	}
	return plan.Resolve(f, p.ID)
}

var errEnded = errors.New("pipeline has ended")

// apply feeds one event to a pipeline: transition, save with its events,
// then side effects (timer, commands, subscribers). A refused action returns
// the engine's *pipeline.Error and changes nothing.
func (r *Runner) apply(ctx context.Context, tenant, id string, ev pipeline.Event) error {
	_, err := r.applyGet(ctx, tenant, id, ev)
	return err
}

func (r *Runner) applyGet(ctx context.Context, tenant, id string, ev pipeline.Event) (*store.Pipeline, error) {
	r.mu.Lock()
	pp, ok := r.pipes[key(tenant, id)]
	r.mu.Unlock()
	if !ok {
		// Not in flight here: an ended (or unknown) pipeline. Let the engine
		// refuse the action with its own words.
		p, err := r.store.GetPipeline(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		if _, _, _, err := pipeline.Transition(p.State, ev, r.clock.Now()); err != nil {
			return nil, err
		}
		if p.State.Status.Terminal() {
			return p, fmt.Errorf("pipeline %s %w (%s)", id, errEnded, p.State.Status)
		}
		// A queued pipeline that is not loaded yet: load it.
		pp = r.adopt(p)
	}
	pp.mu.Lock()
	saved, ended, events, err := r.step(ctx, pp, ev)
	pp.mu.Unlock()
	if err != nil {
		return nil, err
	}
	r.publish(tenant, events)
	if ended {
		r.mu.Lock()
		delete(r.pipes, key(tenant, id))
		r.mu.Unlock()
		r.startNext(ctx, tenant, saved.Application)
	}
	return saved, nil
}

// step runs under pp.mu.
func (r *Runner) step(ctx context.Context, pp *pipe, ev pipeline.Event) (*store.Pipeline, bool, []store.Event, error) {
	prev := pp.p
	now := r.clock.Now()
	next, cmds, wake, err := pipeline.Transition(prev.State, ev, now)
	if err != nil {
		return nil, false, nil, err
	}
	np := *prev
	np.State = next
	np.Status = next.Status
	np.Wake = wake
	np.UpdatedAt = now
	np.Deployed = deployedTargets(next, prev.Deployed)
	events := r.eventsFor(prev, &np, ev, now)
	if err := r.store.SavePipeline(ctx, &np, events); err != nil {
		return nil, false, nil, fmt.Errorf("runner: save pipeline %s: %w", prev.ID, err)
	}
	pp.p = &np
	r.metrics.observe(prev.State, next, events)
	// Only now, with the new state durable, the side effects.
	r.arm(pp)
	for _, c := range cmds {
		r.dispatch(pp, c)
	}
	ended := next.Status.Terminal()
	if ended {
		for _, w := range pp.workers {
			w.stop()
		}
		if pp.timer != nil {
			pp.timer.Stop()
		}
	}
	return &np, ended, events, nil
}

// deployedTargets adds the targets whose finalize succeeded.
func deployedTargets(s pipeline.State, before []string) []string {
	out := slices.Clone(before)
	for _, t := range s.Targets {
		if st := t.Step(pipeline.GroupFinalize); st != nil && st.Status == pipeline.StatusSucceeded && !slices.Contains(out, t.Name) {
			out = append(out, t.Name)
		}
	}
	return out
}

// eventsFor turns a transition into log entries: the accepted action (if
// the event was one) and every status change.
func (r *Runner) eventsFor(prev, next *store.Pipeline, ev pipeline.Event, now time.Time) []store.Event {
	var out []store.Event
	add := func(typ string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			return
		}
		out = append(out, store.Event{Tenant: next.Tenant, Pipeline: next.ID, At: now, Type: typ, Data: b})
	}
	for _, rec := range next.State.History[len(prev.State.History):] {
		add("action", rec)
	}
	if res, ok := ev.(pipeline.CommandResult); ok {
		add("command", res)
	}
	for _, c := range pipeline.Changes(prev.State, next.State) {
		add("status", c)
	}
	return out
}

// report appends an executor's event to an in-flight pipeline's log. It
// saves the pipeline unchanged but for UpdatedAt (the store appends events
// only with a save, which also keeps them ordered with the transitions'
// events) under the pipeline's lock.
func (r *Runner) report(ctx context.Context, tenant, id string, ev store.Event) error {
	r.mu.Lock()
	pp, ok := r.pipes[key(tenant, id)]
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("runner: report to pipeline %s: %w", id, errEnded)
	}
	pp.mu.Lock()
	if pp.p.Status.Terminal() {
		pp.mu.Unlock()
		return fmt.Errorf("runner: report to pipeline %s: %w", id, errEnded)
	}
	now := r.clock.Now()
	ev.Tenant, ev.Pipeline = tenant, id
	if ev.At.IsZero() {
		ev.At = now
	}
	np := *pp.p
	np.UpdatedAt = now
	events := []store.Event{ev}
	err := r.store.SavePipeline(ctx, &np, events)
	if err == nil {
		pp.p = &np
	}
	pp.mu.Unlock()
	if err != nil {
		return fmt.Errorf("runner: report to pipeline %s: %w", id, err)
	}
	r.publish(tenant, events)
	return nil
}

// arm sets the pipeline's timer to its wake-up time. Runs under pp.mu.
func (r *Runner) arm(pp *pipe) {
	if pp.timer != nil {
		pp.timer.Stop()
		pp.timer = nil
	}
	if pp.p.Wake.IsZero() || pp.p.Status.Terminal() {
		return
	}
	tenant, id := pp.p.Tenant, pp.p.ID
	d := max(pp.p.Wake.Sub(r.clock.Now()), 0)
	pp.timer = r.clock.AfterFunc(d, func() {
		if r.ctx.Err() != nil {
			return
		}
		if err := r.apply(r.ctx, tenant, id, pipeline.Tick{}); err != nil && !errors.Is(err, errEnded) {
			r.log.Error("timer tick failed", "pipeline", id, "err", err)
		}
	})
}

// startNext starts the queued pipeline of an application whose turn came.
func (r *Runner) startNext(ctx context.Context, tenant, app string) {
	refs, err := r.store.ApplicationRefs(ctx, tenant, app)
	if err != nil {
		r.log.Error("list application pipelines", "application", app, "err", err)
		return
	}
	start, replace := pipeline.PickNext(refs)
	for _, id := range replace {
		if err := r.apply(ctx, tenant, id, pipeline.Cancel{By: systemPrincipal, Reason: "replaced by a newer queued deployment " + start}); err != nil {
			r.log.Error("cancel replaced pipeline", "pipeline", id, "err", err)
		}
	}
	if start != "" {
		if err := r.apply(ctx, tenant, start, pipeline.Start{By: systemPrincipal}); err != nil {
			r.log.Error("start queued pipeline", "pipeline", start, "err", err)
		}
	}
}

var systemPrincipal = pipeline.Principal{Name: "sortie"}

// newID returns a time-ordered, random pipeline id.
func newID(now time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%011x%x", now.UnixMilli(), b)
}

// shortErr is an error message on one line.
