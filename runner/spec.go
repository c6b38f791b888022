package runner

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/sortie-cd/sortie/deployfile"
	"github.com/sortie-cd/sortie/pipeline"
)

// DefaultCallbackTimeout bounds a webhook's call and callback when the
// webhook sets no callbackTimeout.
const DefaultCallbackTimeout = 24 * time.Hour

// SpecFrom turns a valid deployment file into what the engine runs.
// firstDeployment reports, per target name, whether the application was
// never deployed there.
func SpecFrom(f *deployfile.File, tenant string, filters []string, firstDeployment func(target string) bool) pipeline.Spec {
	s := pipeline.Spec{
		Application:   f.Application,
		Tenant:        tenant,
		TargetFilters: filters,
	}
	if dc := f.DeploymentConfig; dc != nil {
		if dc.Timeout != nil {
			s.Timeout = pipeline.Duration(dc.Timeout.Value)
		}
		if dc.IfDeploymentInProgress != nil {
			s.IfInProgress = pipeline.InProgressPolicy(dc.IfDeploymentInProgress.Strategy)
		}
		s.OutsideWindow = pipeline.WindowMode(dc.OutsideDeployWindow)
	}
	for _, t := range f.Targets {
		ts := pipeline.TargetSpec{
			Name:            t.Name,
			Account:         t.Account,
			Namespace:       t.Namespace,
			FirstDeployment: firstDeployment != nil && firstDeployment(t.Name),
		}
		if dc := f.DeploymentConfig; dc != nil && dc.KeepPrevious != nil && dc.KeepPrevious.For != nil {
			ts.KeepPrevious = &pipeline.KeepPrevious{For: pipeline.Duration(dc.KeepPrevious.For.Value)}
			if n := dc.KeepPrevious.Replicas; n != nil {
				ts.KeepPrevious.Replicas = int32(*n)
			}
		}
		if c := t.Constraints; c != nil {
			for _, d := range c.DependsOn {
				ts.DependsOn = append(ts.DependsOn, d.Name)
			}
			ts.BeforeDeployment = steps(c.BeforeDeployment, f)
			ts.AfterDeployment = steps(c.AfterDeployment, f)
			for _, w := range c.DeployWindows {
				s.Windows = append(s.Windows, FileWindow(t.Name, w))
			}
		}
		if st := f.Strategies.Get(t.Strategy.Name); st != nil {
			ts.Strategy.Name = st.Name
			switch {
			case st.Canary != nil:
				ts.Strategy.Canary = &pipeline.Canary{Steps: steps(st.Canary.Steps, f)}
			case st.BlueGreen != nil:
				active, preview, more := blueGreenServices(f, t.Name, st.BlueGreen)
				ts.Strategy.BlueGreen = &pipeline.BlueGreen{
					ActiveService:           active,
					PreviewService:          preview,
					MoreServices:            more,
					RedirectTrafficAfter:    steps(st.BlueGreen.RedirectTrafficAfter, f),
					ShutDownOldVersionAfter: steps(st.BlueGreen.ShutDownOldVersionAfter, f),
				}
			}
		}
		s.Targets = append(s.Targets, ts)
	}
	return s
}

// blueGreenServices reads the services from the strategy or, as some files
// have them, from trafficManagement.kubernetes for the target. Further
// pairs of that list (one per Deployment, such as the borealis demo's
// potato-facts and potato-lies) are more.
func blueGreenServices(f *deployfile.File, target string, bg *deployfile.BlueGreen) (active, preview string, more []pipeline.ServicePair) {
	active, preview = bg.ActiveService, bg.PreviewService
	for _, tm := range f.TrafficManagement {
		if len(tm.Targets) > 0 && !slices.ContainsFunc(tm.Targets, func(r deployfile.Ref) bool { return r.Name == target }) {
			continue
		}
		for _, k := range tm.Kubernetes {
			switch {
			case active == "":
				active = k.ActiveService
				if preview == "" {
					preview = k.PreviewService
				}
			case k.ActiveService == active:
				if preview == "" {
					preview = k.PreviewService
				}
			case k.ActiveService != "" && !slices.ContainsFunc(more, func(p pipeline.ServicePair) bool { return p.Active == k.ActiveService }):
				more = append(more, pipeline.ServicePair{Active: k.ActiveService, Preview: k.PreviewService})
			}
		}
	}
	return active, preview, more
}

func steps(in []*deployfile.Step, f *deployfile.File) []pipeline.Step {
	var out []pipeline.Step
	for _, st := range in {
		var s pipeline.Step
		switch {
		case st.SetWeight != nil:
			s.SetWeight = &pipeline.SetWeight{Weight: st.SetWeight.Weight}
		case st.Pause != nil:
			p := &pipeline.Pause{
				Duration:      pipeline.Duration(st.Pause.Wait),
				UntilApproved: st.Pause.UntilApproved,
				RequiresRoles: st.Pause.RequiresRoles,
				Approvers:     st.Pause.Approvers,
				Approvals:     st.Pause.Approvals,
				NotByStarter:  st.Pause.NotByStarter,
			}
			if st.Pause.ApprovalExpiration != nil {
				p.ApprovalExpiration = pipeline.Duration(st.Pause.ApprovalExpiration.Value)
			}
			s.Pause = p
		case st.Analysis != nil:
			params, _ := json.Marshal(st.Analysis)
			s.Analysis = &pipeline.Analysis{
				RollBackMode:    st.Analysis.RollBackMode,
				RollForwardMode: st.Analysis.RollForwardMode,
				Inconclusive:    st.Analysis.Inconclusive,
				Params:          params,
			}
		case st.RunWebhook != nil:
			w := &pipeline.RunWebhook{Name: st.RunWebhook.Name.Name, Context: st.RunWebhook.Context,
				CallbackTimeout: pipeline.Duration(DefaultCallbackTimeout)}
			for _, wh := range f.Webhooks {
				if wh.Name == w.Name {
					w.DisableCallback = wh.DisableCallback
					if wh.CallbackTimeout != nil && wh.CallbackTimeout.Value > 0 {
						w.CallbackTimeout = pipeline.Duration(wh.CallbackTimeout.Value)
					}
				}
			}
			s.RunWebhook = w
		case st.ExposeServices != nil:
			params, _ := json.Marshal(st.ExposeServices)
			s.ExposeServices = &pipeline.ExposeServices{Params: params}
		default:
			continue
		}
		out = append(out, s)
	}
	return out
}

// FileWindow is a deploy window the deployment file gives target.
func FileWindow(target string, w *deployfile.DeployWindow) pipeline.Window {
	return pipeline.Window{Name: w.Name, Scope: pipeline.FileScope, Targets: []string{target}, Days: w.Days, Dates: w.Dates,
		Start: w.Start, End: w.End, TimeZone: w.TimeZone, Mode: pipeline.WindowMode(w.Mode)}
}
