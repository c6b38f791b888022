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

	"go.opentelemetry.io/otel/trace"

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

	planErr error  // why Target is nil: the command fails without running
	trace   string // the pipeline's traceparent: its command span's trace
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
	// Replica, when set, names this server among the replicas sharing the
	// store: the runner then drives only the pipelines whose lease it
	// holds (store.Leases), renews them every LeaseTTL/3, claims its fair
	// share of the expired ones and resumes them as after a restart.
	// Empty: it drives every pipeline of the store (one server, the
	// store's own).
	Replica string
	// LeaseTTL is how long a lease lasts unless renewed: how long a
	// replica that died keeps its pipelines from the others. Zero means
	// DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Feed, when not nil, tells of events other servers sharing the
	// store saved, so that this server's subscribers see them too (package
	// replicas). Nil: this server is the store's only writer.
	Feed Feed
	// Tracer makes each pipeline's trace (see trace.go); nil means no
	// tracing, at no cost.
	Tracer trace.TracerProvider
	// KeepPrevious keeps each target's previous version warm after a
	// success where the deployment file does not say (keepPrevious); nil:
	// not kept.
	KeepPrevious *pipeline.KeepPrevious
}

// Runner drives every pipeline of one server.
type Runner struct {
	store   store.Store
	exec    Executor
	clock   Clock
	log     *slog.Logger
	metrics *Metrics
	trace   *tracer
	warm    *pipeline.KeepPrevious // the server's default keepPrevious
	timers  warmTimers

	ctx    context.Context // lives as long as the runner
	cancel context.CancelFunc
	wg     sync.WaitGroup // workers, and timers' callbacks that run

	mu     sync.Mutex
	pipes  map[string]*pipe // in-flight pipelines by tenant/id
	closed bool             // Close began: no timer callback starts

	subs subscribers // under its own lock, never r.mu

	replica string
	ttl     time.Duration
	// leases is held (write) by the lease tick, which renews what r.pipes
	// holds, and (read) by whatever puts a newly leased pipeline there, so
	// a renewal never misses one. Taken before r.mu and any pp.mu.
	leases     sync.RWMutex
	leaseUntil time.Time // of the last renewal that held, under leases
	over       int       // lease ticks in a row that held more than the fair share, under leases
	leaseTimer Timer     // under r.mu
}

// pipe is one in-flight pipeline in memory. mu serialises its transitions.
type pipe struct {
	mu      sync.Mutex
	p       *store.Pipeline
	plan    *plan.Plan // decoded from p.Source.Plan on first use
	timer   Timer
	workers map[string]*worker // by target
	// lost: its lease was taken over; nothing more of it runs here.
	lost bool
	key  string // tenant/id in r.pipes
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
		trace:   newTracer(opts.Tracer),
		warm:    opts.KeepPrevious,
		pipes:   map[string]*pipe{},
		subs:    subscribers{subs: map[string]map[*subscriber]struct{}{}},
		replica: opts.Replica,
		ttl:     opts.LeaseTTL,
	}
	if r.ttl <= 0 {
		r.ttl = DefaultLeaseTTL
	}
	if r.clock == nil {
		r.clock = realClock{}
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.metrics != nil {
		r.metrics.clock = r.clock
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if opts.Feed != nil {
		r.subs.seen = map[string]int64{}
		r.wg.Go(func() { r.follow(opts.Feed) })
	}
	return r
}

// Close stops timers and command workers and waits for them, a timer's
// callback that already runs included. Commands in flight are abandoned, not
// failed: their pipelines resume on the next start.
func (r *Runner) Close() {
	r.cancel()
	r.mu.Lock()
	r.closed = true
	if r.leaseTimer != nil {
		r.leaseTimer.Stop()
	}
	for _, pp := range r.pipes {
		pp.mu.Lock()
		if pp.timer != nil {
			pp.timer.Stop()
		}
		pp.mu.Unlock()
	}
	r.mu.Unlock()
	r.timers.stopAll()
	r.wg.Wait()
	r.releaseAll()
}

// Resume loads every pipeline that had not ended, arms its timer at its
// persisted deadline, sends its unanswered commands again, and starts any
// queued pipeline whose turn came while the server was down.
//
// With a Replica, it lets go of the leases a previous run under the same id
// held, claims its fair share of the pipelines nobody holds and resumes
// those, then renews and claims every LeaseTTL/3 (see lease.go).
func (r *Runner) Resume(ctx context.Context) error {
	if r.replica != "" {
		if err := r.startLeasing(ctx); err != nil {
			return err
		}
	} else {
		ps, err := r.store.ResumablePipelines(ctx)
		if err != nil {
			return fmt.Errorf("runner: resume: %w", err)
		}
		r.resume(ctx, ps, true)
	}
	// The removals of the warm versions are armed at their deadlines: all
	// of them on a server alone; with a Replica, the ones it owns, at
	// each lease tick (warm.go).
	if r.replica == "" {
		if err := r.resumeWarm(ctx); err != nil {
			return fmt.Errorf("runner: resume warm versions: %w", err)
		}
	}
	return nil
}

// resume takes up pipelines loaded from the store, as after a restart:
// each is put in memory, its unanswered commands are sent again and its
// timer armed at its stored deadline, and a queued pipeline's
// application gets the chance to start it (unless the caller is about to:
// take).
func (r *Runner) resume(ctx context.Context, ps []*store.Pipeline, startQueued bool) {
	apps := map[[2]string]bool{}
	for _, p := range ps {
		r.metrics.inFlight(p)
		if p.Status == pipeline.StatusQueued {
			apps[[2]string{p.Tenant, p.Application}] = true
			if r.replica != "" {
				r.adopt(p) // so that its lease is renewed
			}
			continue
		}
		pp := r.adopt(p)
		pp.mu.Lock()
		if pp.lost {
			pp.mu.Unlock()
			continue
		}
		r.log.Info("resuming pipeline", "pipeline", p.ID, "tenant", p.Tenant, "status", p.Status, "outstanding", len(p.State.Outstanding), "epoch", p.Lease.Epoch)
		for _, c := range p.State.Outstanding {
			r.dispatch(pp, c)
		}
		r.arm(pp)
		pp.mu.Unlock()
		// Deadlines that passed while the server was down fire now.
		if _, err := r.applyTo(ctx, pp, pipeline.Tick{}); err != nil && !errors.Is(err, errEnded) && !lost(err) {
			r.log.Error("resume tick failed", "pipeline", p.ID, "err", err)
		}
	}
	if !startQueued {
		return
	}
	for app := range apps {
		r.startNext(ctx, app[0], app[1])
	}
}

// adopt puts a stored pipeline in memory (or returns the one there).
func (r *Runner) adopt(p *store.Pipeline) *pipe {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := key(p.Tenant, p.ID)
	if pp, ok := r.pipes[k]; ok {
		return pp
	}
	pp := &pipe{p: p, workers: map[string]*worker{}, key: k}
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
	for attempt := 0; ; attempt++ {
		r.mu.Lock()
		pp, ok := r.pipes[key(tenant, id)]
		r.mu.Unlock()
		if !ok {
			// Not in flight here: an ended (or unknown) pipeline, or one
			// another replica drives. Let the engine refuse the action with
			// its own words.
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
			if r.replica == "" {
				// A queued pipeline that is not loaded yet: load it.
				pp = r.adopt(p)
			} else if pp, err = r.take(ctx, tenant, id); err != nil {
				return p, err
			}
		}
		saved, err := r.applyTo(ctx, pp, ev)
		if pipeline.ErrorCode(err) != "" && r.replica != "" && r.stale(ctx, pp) {
			err = errLost // refused by a state another replica moved on
		}
		if lost(err) && attempt < 2 {
			continue // taken over meanwhile: take it back for this action
		}
		return saved, err
	}
}

// applyTo feeds one event to a pipeline in memory. A pipeline whose lease
// was taken over is errLost, and one whose save the store fenced is let go
// of (ErrFenced): in neither case is anything written.
func (r *Runner) applyTo(ctx context.Context, pp *pipe, ev pipeline.Event) (*store.Pipeline, error) {
	pp.mu.Lock()
	if pp.lost {
		pp.mu.Unlock()
		return nil, errLost
	}
	if pp.p.Status.Terminal() {
		p := pp.p
		pp.mu.Unlock()
		return p, fmt.Errorf("pipeline %s %w (%s)", p.ID, errEnded, p.Status)
	}
	saved, ended, events, err := r.step(ctx, pp, ev)
	fenced := errors.Is(err, store.ErrFenced)
	if fenced {
		r.loseLocked(pp, "a save was fenced")
	}
	pp.mu.Unlock()
	if fenced {
		r.forget(pp)
	}
	if err != nil {
		return nil, err
	}
	r.settle(ctx, saved, ended, events)
	return saved, nil
}

// settle follows a saved transition, with no lock held: its events go to
// the subscribers, and a pipeline that ended leaves memory and gives its
// application's queued one its turn.
func (r *Runner) settle(ctx context.Context, saved *store.Pipeline, ended bool, events []store.Event) {
	r.publish(saved.Tenant, events)
	if ended {
		r.mu.Lock()
		delete(r.pipes, key(saved.Tenant, saved.ID))
		r.mu.Unlock()
		r.startNext(ctx, saved.Tenant, saved.Application)
	}
}

// step runs under pp.mu.
func (r *Runner) step(ctx context.Context, pp *pipe, ev pipeline.Event) (*store.Pipeline, bool, []store.Event, error) {
	prev := pp.p
	np, cmds, events, err := r.transition(prev, ev)
	if err != nil {
		return nil, false, nil, err
	}
	// A warm version's removal is stored before the success that starts
	// its time, so no crash in between leaves it in the cluster for good.
	warm := newlyWarm(prev, np)
	for _, w := range warm {
		if err := r.store.PutWarm(ctx, w); err != nil {
			return nil, false, nil, fmt.Errorf("runner: store the warm version of %s/%s: %w", w.Pipeline, w.Target, err)
		}
	}
	if err := r.store.SavePipeline(ctx, np, events); err != nil {
		return nil, false, nil, fmt.Errorf("runner: save pipeline %s: %w", prev.ID, err)
	}
	for _, w := range warm {
		r.armWarm(w)
	}
	return np, r.commit(pp, prev, np, ev, cmds), events, nil
}

// transition is the pipeline after ev, with the commands to run and the
// log entries to save with it. It changes nothing.
func (r *Runner) transition(prev *store.Pipeline, ev pipeline.Event) (*store.Pipeline, []pipeline.Command, []store.Event, error) {
	now := r.clock.Now()
	next, cmds, wake, err := pipeline.Transition(prev.State, ev, now)
	if err != nil {
		return nil, nil, nil, err
	}
	np := *prev
	np.State = next
	np.Status = next.Status
	np.Wake = wake
	np.UpdatedAt = now
	np.Deployed = deployedTargets(next, prev.Deployed)
	return &np, cmds, r.eventsFor(prev, &np, ev, now), nil
}

// commit makes np, saved, the pipeline's state in memory and starts the
// side effects it asks for; it reports whether the pipeline ended. Runs
// under pp.mu.
func (r *Runner) commit(pp *pipe, prev, np *store.Pipeline, ev pipeline.Event, cmds []pipeline.Command) bool {
	pp.p = np
	r.metrics.observe(prev, np, ev, np.UpdatedAt)
	r.trace.observe(prev, np)
	// Only now, with the new state durable, the side effects.
	r.arm(pp)
	for _, c := range cmds {
		r.dispatch(pp, c)
	}
	ended := np.Status.Terminal()
	if ended {
		for _, w := range pp.workers {
			w.stop()
		}
		if pp.timer != nil {
			pp.timer.Stop()
		}
	}
	return ended
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
	if pp.p.Status.Terminal() || pp.lost {
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
	fenced := errors.Is(err, store.ErrFenced)
	if err == nil {
		pp.p = &np
	} else if fenced {
		r.loseLocked(pp, "a save was fenced")
	}
	pp.mu.Unlock()
	if fenced {
		r.forget(pp)
	}
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
	id := pp.p.ID
	d := max(pp.p.Wake.Sub(r.clock.Now()), 0)
	pp.timer = r.clock.AfterFunc(d, func() {
		if !r.running() {
			return
		}
		defer r.wg.Done()
		if _, err := r.applyTo(r.ctx, pp, pipeline.Tick{}); err != nil && !errors.Is(err, errEnded) && !lost(err) {
			r.log.Error("timer tick failed", "pipeline", id, "err", err)
		}
	})
}

// running counts a timer's callback in r.wg, unless Close began: then it
// returns false and the callback must not run. Counted under r.mu, which
// Close takes before it waits, so no callback starts while Close waits.
func (r *Runner) running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.wg.Add(1)
	return true
}

// startNext starts the queued pipeline of an application whose turn came.
// A store that fails to list the application's pipelines or to save the
// start is tried again with backoff, on a goroutine Close waits for, until
// it holds or the runner closes: a queued pipeline left behind nothing
// would refuse every later start.
func (r *Runner) startNext(ctx context.Context, tenant, app string) {
	err := r.tryStartNext(ctx, tenant, app)
	if err == nil || !r.running() {
		return
	}
	go func() {
		defer r.wg.Done()
		for delay := 100 * time.Millisecond; err != nil; delay = min(2*delay, 10*time.Second) {
			r.log.Error("start queued pipeline", "tenant", tenant, "application", app, "err", err, "retry_in", delay)
			t := time.NewTimer(delay)
			select {
			case <-r.ctx.Done():
				t.Stop()
				return // the next start resumes the queue
			case <-t.C:
			}
			err = r.tryStartNext(r.ctx, tenant, app)
		}
	}()
}

// tryStartNext is one try of startNext; it returns what the store failed.
func (r *Runner) tryStartNext(ctx context.Context, tenant, app string) error {
	refs, err := r.store.ApplicationRefs(ctx, tenant, app)
	if err != nil {
		return fmt.Errorf("list application pipelines: %w", err)
	}
	start, replace := pipeline.PickNext(refs)
	for _, id := range replace {
		if err := r.apply(ctx, tenant, id, pipeline.Cancel{By: systemPrincipal, Reason: "replaced by a newer queued deployment " + start}); err != nil {
			r.log.Error("cancel replaced pipeline", "pipeline", id, "err", err)
		}
	}
	if start == "" {
		return nil
	}
	ev := pipeline.Start{By: systemPrincipal}
	p, err := r.store.GetPipeline(ctx, tenant, start)
	if err != nil {
		return fmt.Errorf("read queued pipeline %s: %w", start, err)
	}
	var targets []string
	for _, t := range p.State.Targets {
		targets = append(targets, t.Name)
	}
	// A freeze set while it was queued holds it (it was admitted before);
	// a window of mode refuse closed now cancels it.
	var windows []pipeline.Window
	if windows, ev.Freezes, err = r.Controls(ctx, tenant, app, targets); err != nil {
		return fmt.Errorf("deploy windows and freezes of %s: %w", start, err)
	}
	// So do the windows admins set: the ones in force now replace those it
	// was created with.
	err = r.apply(ctx, tenant, start, pipeline.SetWindows{Windows: windows, By: systemPrincipal})
	if err == nil {
		err = r.apply(ctx, tenant, start, ev)
	}
	if e, ok := errors.AsType[*pipeline.Error](err); ok && e.Hold != "" {
		err = r.apply(ctx, tenant, start, pipeline.Cancel{By: systemPrincipal, Reason: err.Error()})
	}
	switch {
	case err == nil || errors.Is(err, errEnded):
		return nil
	case pipeline.ErrorCode(err) != "":
		r.log.Error("the engine refused to start a queued pipeline", "pipeline", start, "err", err)
		return nil // a retry changes nothing
	}
	return fmt.Errorf("start pipeline %s: %w", start, err)
}

var systemPrincipal = pipeline.Principal{Name: "sortie"}

// newID returns a time-ordered, random pipeline id.
func newID(now time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%011x%x", now.UnixMilli(), b)
}

// shortErr is an error message on one line.
