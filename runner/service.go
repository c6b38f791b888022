package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/sortie-cd/sortie/deployfile"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/plan"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/tracing"
)

// StartRequest is a deployment as the CLI submits it (the body of
// POST /api/v1/pipelines).
type StartRequest = plan.StartRequest

// StartResult says what became of a start.
type StartResult = plan.StartResult

// InvalidError is a deployment file that does not validate: every problem,
// with file, line and column.
type InvalidError struct {
	Problems deployfile.Problems
}

func (e *InvalidError) Error() string { return "invalid deployment file:\n" + e.Problems.Error() }

func (e *InvalidError) Unwrap() error { return e.Problems }

// Load parses and validates a submitted deployment in memory: the file and
// its manifests, as the CLI read them.
func Load(req StartRequest) (*deployfile.File, []string, error) {
	name := path.Clean(strings.TrimPrefix(req.FileName, "/"))
	if name == "." || name == "" || strings.HasPrefix(name, "../") {
		name = "deploy.yml"
	}
	dir := path.Dir(name)
	fsys := deployfile.Files{name: req.File}
	// Manifests named by URL were fetched by the CLI and travel keyed by
	// their URL; the server never fetches them, so a redeploy is identical.
	fetched := map[string]string{}
	for p, text := range req.Manifests {
		if deployfile.IsURL(p) {
			fetched[p] = text
			continue
		}
		clean := path.Clean(path.Join(dir, p))
		if strings.HasPrefix(clean, "../") || path.IsAbs(clean) {
			return nil, nil, &InvalidError{Problems: deployfile.Problems{{Pos: deployfile.Pos{File: p}, Message: "manifest path leaves the deployment file's folder"}}}
		}
		fsys[clean] = text
	}
	fetch := func(url string) (string, error) {
		if text, ok := fetched[url]; ok {
			return text, nil
		}
		return "", errors.New("its text was not submitted with the deployment file (deploy start fetches it and sends it)")
	}
	res := deployfile.LoadFS(fsys, name, deployfile.Options{RequireManifests: true, Context: req.Context, Application: req.Application, Fetch: fetch})
	var warnings []string
	for _, w := range res.Warnings {
		warnings = append(warnings, w.String())
	}
	if len(res.Errors) > 0 {
		return nil, warnings, &InvalidError{Problems: res.Errors}
	}
	return res.File, warnings, nil
}

// Start validates a submitted deployment and starts it, or queues it behind
// the application's deployment in flight (enqueueOne). A second start while
// one is in flight is refused with a *pipeline.Error of CodeConflict.
func (r *Runner) Start(ctx context.Context, by pipeline.Principal, tenant string, req StartRequest) (StartResult, error) {
	f, warnings, err := Load(req)
	if err != nil {
		return StartResult{Warnings: warnings}, err
	}
	for _, name := range req.Targets {
		if f.Targets.Get(name) == nil {
			return StartResult{}, &pipeline.Error{Code: pipeline.CodeInvalid, Message: fmt.Sprintf("target %q is not in the deployment file", name)}
		}
	}
	// -t replaces the file's targetFilters, as in Armory's CLI.
	filters := req.Targets
	if len(filters) == 0 {
		filters = f.IncludedTargets()
	}
	src := store.Source{FileName: req.FileName, File: req.File, Manifests: req.Manifests, Context: req.Context, Commit: req.Commit}
	res, err := r.start(ctx, pipeline.Start{By: by, BreakGlass: req.BreakGlass, Reason: req.Reason}, tenant, f, filters, src)
	res.Warnings = warnings
	return res, err
}

// Redeploy starts a new pipeline with the stored file and manifests of an
// earlier one, optionally for some of its targets only.
func (r *Runner) Redeploy(ctx context.Context, by pipeline.Principal, tenant, id string, targets []string) (StartResult, error) {
	old, err := r.store.GetPipeline(ctx, tenant, id)
	if err != nil {
		return StartResult{}, err
	}
	req := StartRequest{FileName: old.Source.FileName, File: old.Source.File, Manifests: old.Source.Manifests, Context: old.Source.Context, Targets: targets}
	if len(targets) == 0 {
		req.Targets = old.State.Spec.TargetFilters
	}
	req.Application = old.Application
	return r.Start(ctx, by, tenant, req)
}

// Restore starts a pipeline that puts targets (when empty, every target
// pipeline to deployed) back to the version to deployed: its stored file
// and manifests, applied straight at 100 %, without the strategy and
// without the gates, as a rollback after success or a return to any
// stored version. Each target must have SUCCEEDED in to. reason is
// required and kept in the new pipeline's spec.
func (r *Runner) Restore(ctx context.Context, by pipeline.Principal, tenant, to string, targets []string, reason string) (StartResult, error) {
	if strings.TrimSpace(reason) == "" {
		return StartResult{}, &pipeline.Error{Code: pipeline.CodeInvalid, Message: "a rollback to an earlier version needs a reason"}
	}
	old, err := r.store.GetPipeline(ctx, tenant, to)
	if err != nil {
		return StartResult{}, err
	}
	if len(targets) == 0 {
		for _, t := range old.State.Targets {
			if t.Status == pipeline.StatusSucceeded {
				targets = append(targets, t.Name)
			}
		}
		if len(targets) == 0 {
			return StartResult{}, &pipeline.Error{Code: pipeline.CodeConflict, Message: fmt.Sprintf("pipeline %s deployed no target (it is %s): there is no version of it to go back to", to, old.Status)}
		}
	}
	for _, name := range targets {
		t := old.State.Target(name)
		if t == nil || t.Status != pipeline.StatusSucceeded {
			status := "not in it"
			if t != nil {
				status = string(t.Status)
			}
			return StartResult{}, &pipeline.Error{Code: pipeline.CodeConflict, Message: fmt.Sprintf("pipeline %s did not deploy target %s (%s): there is no version of it to go back to", to, name, status)}
		}
	}
	req := StartRequest{FileName: old.Source.FileName, File: old.Source.File, Manifests: old.Source.Manifests, Context: old.Source.Context, Application: old.Application, Commit: old.Source.Commit}
	f, warnings, err := Load(req)
	if err != nil {
		return StartResult{Warnings: warnings}, err
	}
	src := store.Source{FileName: req.FileName, File: req.File, Manifests: req.Manifests, Context: req.Context, Commit: req.Commit}
	res, err := r.startWith(ctx, pipeline.Start{By: by}, tenant, f, targets, src, func(s *pipeline.Spec) {
		s.Restores, s.Reason = to, reason
		s.Windows = nil // a rollback is never held by a window
		for i := range s.Targets {
			t := &s.Targets[i]
			t.Restore, t.FirstDeployment = true, false
			t.KeepPrevious = nil // the version rolled back from is not kept
			t.BeforeDeployment, t.AfterDeployment = nil, nil
		}
	})
	res.Warnings = warnings
	return res, err
}

// Previous returns the newest pipeline of the application created before
// pipeline id in which target SUCCEEDED: the version a rollback of id's
// target after its success goes back to.
func (r *Runner) Previous(ctx context.Context, tenant, id, target string) (string, error) {
	p, err := r.store.GetPipeline(ctx, tenant, id)
	if err != nil {
		return "", err
	}
	before := p.CreatedAt
	for {
		list, err := r.store.ListPipelines(ctx, tenant, store.Filter{Application: p.Application, CreatedBefore: before, Limit: 100})
		if err != nil {
			return "", err
		}
		for _, q := range list {
			if t := q.State.Target(target); t != nil && t.Status == pipeline.StatusSucceeded {
				return q.ID, nil
			}
		}
		if len(list) < 100 {
			return "", &pipeline.Error{Code: pipeline.CodeConflict, Message: fmt.Sprintf("no earlier version of %s on target %s is stored: nothing to roll back to", p.Application, target)}
		}
		before = list[len(list)-1].CreatedAt
	}
}

// start creates the pipeline and sends it ev (its principal and any break
// glass), with the freezes in force added.
func (r *Runner) start(ctx context.Context, ev pipeline.Start, tenant string, f *deployfile.File, filters []string, src store.Source) (StartResult, error) {
	return r.startWith(ctx, ev, tenant, f, filters, src, nil)
}

// startWith is start with the spec changed by adjust (nil: not changed)
// before it is validated. A restore (adjust set Spec.Restores) is a
// rollback: no window or freeze holds it.
func (r *Runner) startWith(ctx context.Context, ev pipeline.Start, tenant string, f *deployfile.File, filters []string, src store.Source, adjust func(*pipeline.Spec)) (StartResult, error) {
	by := ev.By
	var missing []string
	for _, t := range f.Targets {
		runs := len(filters) == 0 || contains(filters, t.Name)
		if runs && !r.exec.HasAccount(tenant, t.Account) && !contains(missing, t.Account) {
			missing = append(missing, t.Account)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return StartResult{}, &pipeline.Error{Code: pipeline.CodeUnprocessable, Message: fmt.Sprintf("no agent is connected for account %s; start `sortie agent --agent-id %s` in that cluster, or fix the target's account", strings.Join(missing, ", "), missing[0])}
	}
	var lookupErr error
	first := func(target string) bool {
		deployed, err := r.store.DeployedBefore(ctx, tenant, f.Application, target)
		if err != nil {
			lookupErr = err
		}
		return !deployed
	}
	spec := SpecFrom(f, tenant, filters, first)
	if lookupErr != nil {
		return StartResult{}, fmt.Errorf("runner: deployment history: %w", lookupErr)
	}
	if r.warm != nil {
		for i := range spec.Targets {
			if spec.Targets[i].KeepPrevious == nil {
				kp := *r.warm
				spec.Targets[i].KeepPrevious = &kp
			}
		}
	}
	if adjust != nil {
		adjust(&spec)
	}
	var freezes []pipeline.Freeze
	if spec.Restores == "" {
		var running []string
		for _, t := range spec.Targets {
			if len(filters) == 0 || contains(filters, t.Name) {
				running = append(running, t.Name)
			}
		}
		windows, inForce, err := r.Controls(ctx, tenant, spec.Application, running)
		if err != nil {
			return StartResult{}, err
		}
		spec.Windows = append(spec.Windows, windows...)
		freezes = inForce
	}
	if err := spec.Validate(); err != nil {
		return StartResult{}, fmt.Errorf("runner: the deployment file converted to an invalid spec (a bug): %w", err)
	}
	if len(freezes) > 0 && !ev.BreakGlass {
		return StartResult{}, &pipeline.Error{Code: pipeline.CodeConflict, Hold: freezes[0].String(), Message: fmt.Sprintf("cannot start: the %s; wait until it is lifted, or break glass (--break-glass with a reason, as organization-admin, tenant-admin or break-glass)", freezes[0].String())}
	}
	ev.Freezes = freezes
	now := r.clock.Now()
	id := newID(now)
	pl, err := plan.Resolve(f, id)
	if err != nil {
		return StartResult{}, &pipeline.Error{Code: pipeline.CodeUnprocessable, Message: err.Error()}
	}
	if src.Plan, err = json.Marshal(pl); err != nil {
		return StartResult{}, fmt.Errorf("runner: encode the plan: %w", err)
	}
	state, err := pipeline.New(id, spec, now)
	if err != nil {
		return StartResult{}, err
	}
	root := r.trace.begin(ctx, tenant, id, spec.Application, now)
	if root != nil {
		src.Trace = tracing.Format(root.SpanContext())
	}
	queued := &store.Pipeline{
		Tenant: tenant, ID: id, Application: spec.Application, Status: state.Status,
		CreatedAt: now, UpdatedAt: now, StartedBy: by.Name, State: state, Source: src,
	}
	// A pipeline that may start is created started, in one transaction
	// with its admission: a save between the two that failed would leave
	// it queued behind nothing, refusing every later start. The engine's
	// own refusals (a window of mode refuse, a break glass without its
	// reason or role) come here, before anything is stored.
	started, cmds, events, err := r.transition(queued, ev)
	if err != nil {
		return StartResult{}, err
	}
	// A started pipeline is leased by the replica that created it, and
	// taken into its memory before its next renewal; a queued one is
	// nobody's until a replica claims it.
	if r.replica != "" {
		started.Lease = store.Lease{Owner: r.replica, Until: now.Add(r.ttl)}
		r.leases.RLock()
	}
	adm, err := r.create(ctx, spec, queued, started, events, ev.BreakGlass)
	var ended bool
	if err == nil && adm.Verdict != pipeline.VerdictQueue {
		pp := r.adopt(started)
		pp.mu.Lock()
		pp.plan = pl
		ended = r.commit(pp, queued, started, ev, cmds)
		pp.mu.Unlock()
	}
	if r.replica != "" {
		r.leases.RUnlock()
	}
	if err != nil {
		return StartResult{}, err
	}
	r.trace.keep(tenant, id, root)
	r.metrics.inFlight(queued)
	r.log.Info("pipeline created", "pipeline", id, "tenant", tenant, "application", spec.Application, "verdict", adm.Verdict, "by", by.Name)
	for _, old := range adm.Replace {
		if err := r.apply(ctx, tenant, old, pipeline.Cancel{By: by, Reason: "replaced by the newer queued deployment " + id}); err != nil && !errors.Is(err, errEnded) {
			r.log.Error("cancel replaced pipeline", "pipeline", old, "err", err)
		}
	}
	if adm.Verdict == pipeline.VerdictQueue {
		return StartResult{PipelineID: id, Status: pipeline.StatusQueued, Queued: true}, nil
	}
	r.settle(ctx, started, ended, events)
	res := StartResult{PipelineID: id, Status: started.Status}
	for _, t := range started.State.Targets {
		if t.Held != "" {
			res.Held = append(res.Held, t.Name+": "+t.Held)
		}
	}
	return res, nil
}

// errVerdictChanged is create's admit saying the verdict is not the one
// the pipeline was prepared for.
var errVerdictChanged = errors.New("admission verdict changed")

// create stores a new pipeline as admission decides, in the transaction
// that decides: started (with events) if it may start, else queued. The
// verdict is known only inside the transaction, so a pipeline prepared for
// the other one is created again; the verdict changes between two tries
// only when another pipeline of the application started or ended between
// them, so a few tries settle it.
//
// A break-glass start does not queue: the break glass is the person's, now,
// and a queued pipeline is started later by the runner, which breaks no
// glass.
func (r *Runner) create(ctx context.Context, spec pipeline.Spec, queued, started *store.Pipeline, events []store.Event, breakGlass bool) (pipeline.Admission, error) {
	var adm pipeline.Admission
	p, evs := started, events
	for range 3 {
		err := r.store.CreatePipeline(ctx, p, func(others []pipeline.Ref) error {
			var err error
			if adm, err = pipeline.Admit(spec, others); err != nil {
				return err
			}
			if adm.Verdict == pipeline.VerdictQueue && breakGlass {
				return &pipeline.Error{Code: pipeline.CodeConflict, Message: fmt.Sprintf("a break-glass start does not queue: application %s has a deployment in flight; cancel it (or wait for it) and break glass again", spec.Application)}
			}
			if (adm.Verdict == pipeline.VerdictStart) != (p == started) {
				return errVerdictChanged
			}
			return nil
		}, evs)
		if !errors.Is(err, errVerdictChanged) {
			return adm, err
		}
		p, evs = queued, nil
		if adm.Verdict == pipeline.VerdictStart {
			p, evs = started, events
		}
	}
	return adm, &pipeline.Error{Code: pipeline.CodeConflict, Message: fmt.Sprintf("application %s: other deployments started and ended while this one was admitted; start it again", spec.Application)}
}

// Act applies a person's action (Approve, Reject, Skip, Rollback, Cancel) or a
// webhook callback to a pipeline of tenant.
func (r *Runner) Act(ctx context.Context, tenant, id string, ev pipeline.Event) (*store.Pipeline, error) {
	switch ev.(type) {
	case pipeline.Approve, pipeline.Reject, pipeline.Skip, pipeline.Rollback, pipeline.Cancel, pipeline.WebhookCallback:
	default:
		return nil, &pipeline.Error{Code: pipeline.CodeInvalid, Message: fmt.Sprintf("%T is not an action", ev)}
	}
	p, err := r.applyGet(ctx, tenant, id, ev)
	if errors.Is(err, errEnded) {
		return nil, &pipeline.Error{Code: pipeline.CodeConflict, Message: fmt.Sprintf("pipeline %s has ended (%s)", id, p.Status)}
	}
	return p, err
}

// Get returns a pipeline of tenant.
func (r *Runner) Get(ctx context.Context, tenant, id string) (*store.Pipeline, error) {
	r.mu.Lock()
	pp, ok := r.pipes[key(tenant, id)]
	r.mu.Unlock()
	if ok {
		pp.mu.Lock()
		p := pp.p
		pp.mu.Unlock()
		return p, nil
	}
	return r.store.GetPipeline(ctx, tenant, id)
}

// List returns pipelines of tenant.
func (r *Runner) List(ctx context.Context, tenant string, f store.Filter) ([]*store.Pipeline, error) {
	return r.store.ListPipelines(ctx, tenant, f)
}

// Events returns the stored events of a pipeline after seq.
func (r *Runner) Events(ctx context.Context, tenant, id string, after int64) ([]store.Event, error) {
	if _, err := r.store.GetPipeline(ctx, tenant, id); err != nil {
		return nil, err
	}
	return r.store.Events(ctx, tenant, id, after)
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
