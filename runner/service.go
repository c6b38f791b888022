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
	res, err := r.start(ctx, by, tenant, f, filters, src)
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

func (r *Runner) start(ctx context.Context, by pipeline.Principal, tenant string, f *deployfile.File, filters []string, src store.Source) (StartResult, error) {
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
	if err := spec.Validate(); err != nil {
		return StartResult{}, fmt.Errorf("runner: the deployment file converted to an invalid spec (a bug): %w", err)
	}
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
	p := &store.Pipeline{
		Tenant: tenant, ID: id, Application: spec.Application, Status: state.Status,
		CreatedAt: now, UpdatedAt: now, StartedBy: by.Name, State: state, Source: src,
	}
	var adm pipeline.Admission
	err = r.store.CreatePipeline(ctx, p, func(others []pipeline.Ref) error {
		var err error
		adm, err = pipeline.Admit(spec, others)
		return err
	}, nil)
	if err != nil {
		return StartResult{}, err
	}
	r.log.Info("pipeline created", "pipeline", id, "tenant", tenant, "application", spec.Application, "verdict", adm.Verdict, "by", by.Name)
	for _, old := range adm.Replace {
		if err := r.apply(ctx, tenant, old, pipeline.Cancel{By: by, Reason: "replaced by the newer queued deployment " + id}); err != nil && !errors.Is(err, errEnded) {
			r.log.Error("cancel replaced pipeline", "pipeline", old, "err", err)
		}
	}
	if adm.Verdict == pipeline.VerdictQueue {
		return StartResult{PipelineID: id, Status: pipeline.StatusQueued, Queued: true}, nil
	}
	pp := r.adopt(p)
	pp.mu.Lock()
	pp.plan = pl
	pp.mu.Unlock()
	saved, err := r.applyGet(ctx, tenant, id, pipeline.Start{By: by})
	if err != nil {
		return StartResult{PipelineID: id}, err
	}
	return StartResult{PipelineID: id, Status: saved.Status}, nil
}

// Act applies a person's action (Approve, Skip, Rollback, Cancel) or a
// webhook callback to a pipeline of tenant.
func (r *Runner) Act(ctx context.Context, tenant, id string, ev pipeline.Event) (*store.Pipeline, error) {
	switch ev.(type) {
	case pipeline.Approve, pipeline.Skip, pipeline.Rollback, pipeline.Cancel, pipeline.WebhookCallback:
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
