package kubeexec

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/plan"
	"github.com/sortie-cd/sortie/progress"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
)

// Executor runs commands against the clusters it holds, by account name.
type Executor struct {
	tenant   string
	accounts map[string]*kube.Executor
	log      *slog.Logger
}

// New returns an Executor serving tenant with the given accounts.
func New(tenant string, accounts map[string]*kube.Executor, log *slog.Logger) *Executor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Executor{tenant: tenant, accounts: accounts, log: log}
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
	ex, ok := e.accounts[c.Account]
	if !ok || job.Tenant != e.tenant {
		return fail(fmt.Errorf("no cluster for account %q", c.Account))
	}
	if c.Kind == pipeline.CmdExposeServices {
		return exposeServices(ctx, ex, job)
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
	case pipeline.CmdDropWarm:
		err = ex.DropWarm(ctx, t)
	default:
		err = fmt.Errorf("unknown command %q", c.Kind)
	}
	// What the command wrote is worth showing even when it then failed:
	// those objects are in the cluster now.
	reportApplied(ctx, job, p.Applied, e.log)
	if err != nil {
		e.log.Info("command failed", "pipeline", c.Pipeline, "target", c.Target, "command", c.ID, "err", err)
		return pipeline.CommandResult{CommandID: c.ID, Message: err.Error(), AchievedWeight: p.AchievedWeight, Transient: kube.Transient(err)}
	}
	return pipeline.CommandResult{CommandID: c.ID, Success: true, AchievedWeight: p.AchievedWeight, Message: summary(c, p)}
}

// reportApplied appends a progress.EventApplied event to the pipeline's log when
// the job has a Report (the runner's own, or, on an agent, one that sends a
// Report message over its connection) and the command wrote anything. A
// failed report is logged, never the command's failure.
func reportApplied(ctx context.Context, job runner.Job, objs []kube.Applied, log *slog.Logger) {
	if job.Report == nil || len(objs) == 0 {
		return
	}
	c := job.Command
	b, err := json.Marshal(progress.AppliedEvent{Target: c.Target, Step: c.Step, Command: c.ID, Objects: objs})
	if err == nil {
		err = job.Report(ctx, store.Event{Type: progress.EventApplied, Data: b})
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

// exposeServices checks that each Service the step names exists in the
// target's namespace with one port. The server then gives each a preview
// URL (gate.Router), which reaches it through this cluster's executor.
func exposeServices(ctx context.Context, ex *kube.Executor, job runner.Job) pipeline.CommandResult {
	c := job.Command
	res := pipeline.CommandResult{CommandID: c.ID}
	var step struct {
		Services []string `json:"services"`
	}
	if err := json.Unmarshal(c.Params, &step); err != nil {
		res.Message = fmt.Sprintf("exposeServices parameters do not decode: %v", err)
		return res
	}
	if job.Target == nil {
		res.Message = fmt.Sprintf("no plan for target %q", c.Target)
		return res
	}
	var parts []string
	for _, name := range step.Services {
		s, err := ex.ExposeService(ctx, job.Target.Namespace, name)
		if err != nil {
			res.Message, res.Transient = err.Error(), kube.Transient(err)
			return res
		}
		parts = append(parts, fmt.Sprintf("%s (port %d)", s.Name, s.Port))
	}
	res.Success = true
	res.Message = "Services " + strings.Join(parts, ", ") + " can be previewed"
	return res
}

// target decodes the manifests of the command's target plan.
func (e *Executor) target(job runner.Job) (*kube.Target, error) {
	c := job.Command
	pt := job.Target
	if pt == nil {
		return nil, fmt.Errorf("no plan for target %q", c.Target)
	}
	ts := job.Spec.Target(c.Target)
	if ts == nil {
		return nil, fmt.Errorf("target %q is not in the pipeline", c.Target)
	}
	t := &kube.Target{
		Application: pt.Application, Pipeline: c.Pipeline, Target: c.Target,
		Namespace: pt.Namespace, OwnNamespaces: pt.OwnNamespaces, Version: pt.Version,
	}
	if t.Namespace == "" {
		t.Namespace = plan.DefaultNamespace
	}
	for _, m := range pt.Manifests {
		objs, err := kube.Decode([]byte(m.Text))
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", m.Path, err)
		}
		t.Objects = append(t.Objects, objs...)
	}
	if kp := ts.KeepPrevious; kp != nil {
		t.KeepPrevious = &kube.KeepPrevious{Replicas: kp.Replicas}
	}
	if bg := ts.Strategy.BlueGreen; bg != nil {
		t.ActiveService, t.PreviewService = bg.ActiveService, bg.PreviewService
		for _, p := range bg.MoreServices {
			t.MoreServices = append(t.MoreServices, kube.ServicePair{Active: p.Active, Preview: p.Preview})
		}
	} else {
		t.Traffic = traffic(pt.Traffic)
	}
	return t, nil
}

// traffic is the plan's traffic management as the cluster executor takes
// it.
func traffic(in *plan.Traffic) *kube.Traffic {
	if in == nil {
		return nil
	}
	var tr kube.Traffic
	for _, s := range in.SMI {
		tr.SMI = append(tr.SMI, kube.SMITraffic(s))
	}
	for _, i := range in.Istio {
		tr.Istio = append(tr.Istio, kube.IstioTraffic(i))
	}
	for _, h := range in.HTTPRoute {
		tr.HTTPRoute = append(tr.HTTPRoute, kube.HTTPRouteTraffic(h))
	}
	return &tr
}
