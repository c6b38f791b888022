package kubeexec

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/sortie-cd/sortie/deployfile"
	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
)

const maxCachedFiles = 256

// Executor runs commands against the clusters it holds, by account name.
type Executor struct {
	tenant   string
	accounts map[string]*kube.Executor
	log      *slog.Logger

	mu    sync.Mutex
	files map[string]*deployfile.File // parsed sources by pipeline id
}

// New returns an Executor serving tenant with the given accounts.
func New(tenant string, accounts map[string]*kube.Executor, log *slog.Logger) *Executor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Executor{tenant: tenant, accounts: accounts, log: log, files: map[string]*deployfile.File{}}
}

// HasAccount implements runner.Executor.
func (e *Executor) HasAccount(tenant, account string) bool {
	_, ok := e.accounts[account]
	return ok && tenant == e.tenant
}

// Execute implements runner.Executor.
func (e *Executor) Execute(ctx context.Context, job runner.Job) pipeline.CommandResult {
	c := job.Command
	fail := func(err error) pipeline.CommandResult {
		return pipeline.CommandResult{CommandID: c.ID, Message: err.Error()}
	}
	switch c.Kind {
	case pipeline.CmdExposeServices:
		return fail(fmt.Errorf("exposeServices is not supported yet"))
	}
	ex, ok := e.accounts[c.Account]
	if !ok || job.Tenant != e.tenant {
		return fail(fmt.Errorf("no cluster for account %q", c.Account))
	}
	t, err := e.target(job)
	if err != nil {
		return fail(err)
	}
	var p kube.Progress
	switch c.Kind {
	case pipeline.CmdSetWeight:
		p, err = ex.SetWeight(ctx, t, c.Weight)
	case pipeline.CmdDeployPreview:
		p, err = ex.DeployPreview(ctx, t)
	case pipeline.CmdRedirectActive:
		p, err = ex.RedirectActive(ctx, t)
	case pipeline.CmdFinalize:
		p, err = ex.Finalize(ctx, t)
	case pipeline.CmdRollback:
		p, err = ex.Rollback(ctx, t)
	default:
		err = fmt.Errorf("unknown command %q", c.Kind)
	}
	// What the command wrote is worth showing even when it then failed:
	// those objects are in the cluster now.
	reportApplied(ctx, job, p.Applied, e.log)
	if err != nil {
		e.log.Info("command failed", "pipeline", c.Pipeline, "target", c.Target, "command", c.ID, "err", err)
		return pipeline.CommandResult{CommandID: c.ID, Message: err.Error(), AchievedWeight: p.AchievedWeight}
	}
	return pipeline.CommandResult{CommandID: c.ID, Success: true, AchievedWeight: p.AchievedWeight, Message: summary(c, p)}
}

// EventApplied is the type of the event a command reports when it wrote
// objects to the cluster; its data is an AppliedEvent.
const EventApplied = "applied"

// AppliedEvent is the data of an EventApplied event: the objects one
// command wrote (kind, namespace, name; never their content).
type AppliedEvent struct {
	Target  string         `json:"target"`
	Step    string         `json:"step"`
	Command string         `json:"command"`
	Objects []kube.Applied `json:"objects"`
}

// reportApplied appends an EventApplied event to the pipeline's log when
// the job has a Report (the runner's own, or, on an agent, one that sends a
// Report message over its connection) and the command wrote anything. A
// failed report is logged, never the command's failure.
func reportApplied(ctx context.Context, job runner.Job, objs []kube.Applied, log *slog.Logger) {
	if job.Report == nil || len(objs) == 0 {
		return
	}
	c := job.Command
	b, err := json.Marshal(AppliedEvent{Target: c.Target, Step: c.Step, Command: c.ID, Objects: objs})
	if err == nil {
		err = job.Report(ctx, store.Event{Type: EventApplied, Data: b})
	}
	if err != nil {
		log.Warn("report applied objects", "pipeline", c.Pipeline, "target", c.Target, "command", c.ID, "err", err)
	}
}

func summary(c pipeline.Command, p kube.Progress) string {
	switch c.Kind {
	case pipeline.CmdSetWeight:
		return fmt.Sprintf("weight %d%% requested, %d%% achieved: %d new and %d old pods ready", c.Weight, p.AchievedWeight, p.NewPods, p.OldPods)
	case pipeline.CmdRollback:
		return fmt.Sprintf("rolled back: %d pods of the previous version ready", p.OldPods)
	case pipeline.CmdRedirectActive:
		return "active service points at the new version"
	default:
		return fmt.Sprintf("%d new pods ready", p.NewPods)
	}
}

// target renders the manifests of the command's target.
func (e *Executor) target(job runner.Job) (*kube.Target, error) {
	c := job.Command
	f, err := e.file(c.Pipeline, job.Source)
	if err != nil {
		return nil, err
	}
	ts := job.Spec.Target(c.Target)
	if ts == nil {
		return nil, fmt.Errorf("target %q is not in the pipeline", c.Target)
	}
	objs, err := Render(f, job.Spec.Application, c.Pipeline, ts)
	if err != nil {
		return nil, err
	}
	t := &kube.Target{
		Application: job.Spec.Application, Pipeline: c.Pipeline, Target: c.Target,
		Namespace: ts.Namespace, Objects: objs,
	}
	if bg := ts.Strategy.BlueGreen; bg != nil {
		t.ActiveService, t.PreviewService = bg.ActiveService, bg.PreviewService
	}
	if ts.Strategy.BlueGreen == nil {
		t.Traffic = Traffic(f, c.Target)
	}
	return t, nil
}

// Traffic is the weight-based traffic management the file configures for
// target (its smi, istio and httpRoute entries), or nil: a canary then
// splits traffic by pod counts. The kubernetes entries are blue/green's
// Services, which the engine's spec carries.
func Traffic(f *deployfile.File, target string) *kube.Traffic {
	var tr kube.Traffic
	for _, tm := range f.TrafficManagement {
		if tm == nil || (len(tm.Targets) > 0 && !slices.ContainsFunc(tm.Targets, func(r deployfile.Ref) bool { return r.Name == target })) {
			continue
		}
		for _, s := range tm.SMI {
			tr.SMI = append(tr.SMI, kube.SMITraffic{RootService: s.RootServiceName, CanaryService: s.CanaryServiceName, TrafficSplit: s.TrafficSplitName})
		}
		for _, i := range tm.Istio {
			it := kube.IstioTraffic{VirtualService: i.VirtualService.Name, Route: i.VirtualService.HTTPRouteName}
			if dr := i.DestinationRule; dr != nil {
				it.DestinationRule, it.ActiveSubset, it.CanarySubset = dr.Name, dr.ActiveSubsetName, dr.CanarySubsetName
			}
			tr.Istio = append(tr.Istio, it)
		}
		for _, h := range tm.HTTPRoute {
			tr.HTTPRoute = append(tr.HTTPRoute, kube.HTTPRouteTraffic{Name: h.Name, RootService: h.RootServiceName, CanaryService: h.CanaryServiceName})
		}
	}
	if len(tr.SMI)+len(tr.Istio)+len(tr.HTTPRoute) == 0 {
		return nil
	}
	return &tr
}

func (e *Executor) file(id string, src *store.Source) (*deployfile.File, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f, ok := e.files[id]; ok {
		return f, nil
	}
	f, _, err := runner.Load(runner.StartRequest{FileName: src.FileName, File: src.File, Manifests: src.Manifests, Context: src.Context, Application: src.Application})
	if err != nil {
		return nil, fmt.Errorf("the stored deployment no longer loads: %w", err)
	}
	if len(e.files) >= maxCachedFiles {
		clear(e.files) // pipelines come and go; re-parsing is cheap
	}
	e.files[id] = f
	return f, nil
}
