package deployfile

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Plan is what a deployment of a file would do, computed without a server:
// the targets in the order they can run, their gates and strategy steps.
type Plan struct {
	Application string   `json:"application" yaml:"application"`
	Waves       []Wave   `json:"waves" yaml:"waves"`
	Notes       []string `json:"notes,omitempty" yaml:"notes,omitempty"`
}

// Wave is a set of targets that can run in parallel once the waves before
// it succeeded.
type Wave struct {
	Number  int          `json:"number" yaml:"number"`
	Targets []TargetPlan `json:"targets" yaml:"targets"`
}

// TargetPlan is what happens in one target.
type TargetPlan struct {
	Name      string   `json:"name" yaml:"name"`
	Account   string   `json:"account" yaml:"account"`
	Namespace string   `json:"namespace,omitempty" yaml:"namespace,omitempty"`
	DependsOn []string `json:"dependsOn,omitempty" yaml:"dependsOn,omitempty"`
	// Deployments are the Deployment objects of the manifests for this
	// target; Objects counts the other objects.
	Deployments []Workload `json:"deployments" yaml:"deployments"`
	Objects     int        `json:"otherObjects" yaml:"otherObjects"`
	// UnreadManifests lists manifest paths that could not be read, so the
	// pod counts may be incomplete.
	UnreadManifests []string `json:"unreadManifests,omitempty" yaml:"unreadManifests,omitempty"`
	Strategy        string   `json:"strategy" yaml:"strategy"`
	StrategyKind    string   `json:"strategyKind" yaml:"strategyKind"`
	// Traffic is how weights are applied: pods, smi, istio, httpRoute or
	// service.
	Traffic string     `json:"traffic" yaml:"traffic"`
	Before  []StepPlan `json:"beforeDeployment,omitempty" yaml:"beforeDeployment,omitempty"`
	Steps   []StepPlan `json:"steps" yaml:"steps"`
	After   []StepPlan `json:"afterDeployment,omitempty" yaml:"afterDeployment,omitempty"`
	// Windows describe the deploy windows that apply, Freezes the freezes
	// in force; the caller fills them (deploy plan: the file's windows,
	// and with --remote the server's windows and freezes), as the engine
	// words them.
	Windows []string `json:"deployWindows,omitempty" yaml:"deployWindows,omitempty"`
	Freezes []string `json:"freezes,omitempty" yaml:"freezes,omitempty"`
}

// Workload is a Deployment and its replicas.
type Workload struct {
	Name     string `json:"name" yaml:"name"`
	Replicas int    `json:"replicas" yaml:"replicas"`
}

// StepPlan is one step or gate, described.
type StepPlan struct {
	Kind        string `json:"kind" yaml:"kind"`
	Description string `json:"description" yaml:"description"`
	Weight      *int   `json:"weight,omitempty" yaml:"weight,omitempty"`
	// Pods is the split of each Deployment at Weight (pod-count traffic only).
	Pods []PodSplit `json:"pods,omitempty" yaml:"pods,omitempty"`
}

// PodSplit is how many pods of a Deployment run the new and the old version.
type PodSplit struct {
	Deployment string `json:"deployment" yaml:"deployment"`
	New        int    `json:"new" yaml:"new"`
	Old        int    `json:"old" yaml:"old"`
}

// Traffic kinds.
const (
	TrafficPods  = "pods"
	TrafficSMI   = "smi"
	TrafficIstio = "istio"
	// TrafficHTTPRoute is Gateway API HTTPRoute weights (a Sortie extension).
	TrafficHTTPRoute = "httpRoute"
	TrafficService   = "service"
)

// FirstDeploymentNote is said in every plan.
const FirstDeploymentNote = "The first deployment of an application to a target goes straight to 100%; its beforeDeployment gates still apply. The steps below are what every later deployment does."

// NewPods is the number of new-version pods at weight w of n replicas:
// ceil(n·w/100), and at least 1 when w > 0.
func NewPods(n, w int) int {
	if w <= 0 || n <= 0 {
		return 0
	}
	p := (n*w + 99) / 100
	return min(n, max(1, p))
}

// NewPlan computes the plan of a valid file. Targets in a dependency cycle
// (which validation rejects) are left out.
func NewPlan(f *File) *Plan {
	p := &Plan{Application: f.Application, Notes: []string{FirstDeploymentNote}}
	done := map[string]bool{}
	remaining := slices.Clone(f.Targets)
	if inc := f.IncludedTargets(); len(inc) > 0 {
		// Skipped targets hold nobody back, as in the engine.
		var skipped []string
		remaining = slices.DeleteFunc(remaining, func(t *Target) bool {
			if slices.Contains(inc, t.Name) {
				return false
			}
			done[t.Name] = true
			skipped = append(skipped, t.Name)
			return true
		})
		if len(skipped) > 0 {
			p.Notes = append(p.Notes, fmt.Sprintf("targetFilters: only %s run; %s skipped (deploy start -t replaces the filters).", quotedList(inc), quotedList(skipped)))
		}
	}
	for n := 1; len(remaining) > 0; n++ {
		var wave []*Target
		for _, t := range remaining {
			if depsDone(t, done, f) {
				wave = append(wave, t)
			}
		}
		if len(wave) == 0 {
			break
		}
		w := Wave{Number: n}
		for _, t := range wave {
			w.Targets = append(w.Targets, planTarget(f, t))
		}
		for _, t := range wave {
			done[t.Name] = true
		}
		remaining = slices.DeleteFunc(remaining, func(t *Target) bool { return done[t.Name] })
		p.Waves = append(p.Waves, w)
	}
	return p
}

func depsDone(t *Target, done map[string]bool, f *File) bool {
	if t.Constraints == nil {
		return true
	}
	for _, d := range t.Constraints.DependsOn {
		if f.Targets.Get(d.Name) != nil && !done[d.Name] {
			return false
		}
	}
	return true
}

func planTarget(f *File, t *Target) TargetPlan {
	tp := TargetPlan{Name: t.Name, Account: t.Account, Namespace: t.Namespace, Strategy: t.Strategy.Name, Traffic: TrafficPods}
	if t.Constraints != nil {
		for _, d := range t.Constraints.DependsOn {
			tp.DependsOn = append(tp.DependsOn, d.Name)
		}
	}
	for _, m := range f.Manifests {
		if m == nil || !(len(m.Targets) == 0 || slices.ContainsFunc(m.Targets, func(r Ref) bool { return r.Name == t.Name })) {
			continue
		}
		if m.Files == nil && m.Path != "" {
			tp.UnreadManifests = append(tp.UnreadManifests, m.Path)
		}
		for _, mf := range m.Files {
			for _, o := range mf.Objects {
				if o.Replicas != nil {
					tp.Deployments = append(tp.Deployments, Workload{Name: o.Name, Replicas: *o.Replicas})
				} else {
					tp.Objects++
				}
			}
		}
	}
	if len(trafficFor(f, t.Name, func(tm *TrafficManagement) bool { return len(tm.SMI) > 0 })) > 0 {
		tp.Traffic = TrafficSMI
	} else if len(trafficFor(f, t.Name, func(tm *TrafficManagement) bool { return len(tm.Istio) > 0 })) > 0 {
		tp.Traffic = TrafficIstio
	} else if len(trafficFor(f, t.Name, func(tm *TrafficManagement) bool { return len(tm.HTTPRoute) > 0 })) > 0 {
		tp.Traffic = TrafficHTTPRoute
	}
	if t.Constraints != nil {
		tp.Before = planSteps(f, t.Constraints.BeforeDeployment, tp)
		tp.After = planSteps(f, t.Constraints.AfterDeployment, tp)
	}
	s := f.Strategies.Get(t.Strategy.Name)
	switch {
	case s == nil:
	case s.Canary != nil:
		tp.StrategyKind = "canary"
		tp.Steps = planSteps(f, s.Canary.Steps, tp)
		last := -1
		for _, st := range s.Canary.Steps {
			if st != nil && st.SetWeight != nil {
				last = st.SetWeight.Weight
			}
		}
		if last < 100 {
			end := &Step{SetWeight: &SetWeight{Weight: 100}}
			sp := planStep(f, end, tp)
			sp.Description += " (end of the strategy)"
			tp.Steps = append(tp.Steps, sp)
		}
	case s.BlueGreen != nil:
		tp.StrategyKind = "blueGreen"
		tp.Traffic = TrafficService
		tp.Steps = planBlueGreen(f, t, s.BlueGreen, tp)
	}
	return tp
}

func planBlueGreen(f *File, t *Target, b *BlueGreen, tp TargetPlan) []StepPlan {
	active, preview := b.ActiveService, b.PreviewService
	for _, tm := range trafficFor(f, t.Name, func(tm *TrafficManagement) bool { return len(tm.Kubernetes) > 0 }) {
		for _, k := range tm.Kubernetes {
			if active == "" {
				active, preview = k.ActiveService, k.PreviewService
			}
		}
	}
	sizes := make([]string, 0, len(tp.Deployments))
	for _, d := range tp.Deployments {
		sizes = append(sizes, fmt.Sprintf("%s %d pods", d.Name, d.Replicas))
	}
	start := "start the new version at full size"
	if len(sizes) > 0 {
		start += " (" + strings.Join(sizes, ", ") + ")"
	}
	if preview != "" {
		start += fmt.Sprintf(" behind preview Service %q", preview)
	}
	steps := []StepPlan{{Kind: "deploy", Description: start}}
	steps = append(steps, labelGates("before redirecting traffic", planSteps(f, b.RedirectTrafficAfter, tp))...)
	steps = append(steps, StepPlan{Kind: "redirect", Description: fmt.Sprintf("point active Service %q at the new version", active)})
	steps = append(steps, labelGates("before shutting down the old version", planSteps(f, b.ShutDownOldVersionAfter, tp))...)
	steps = append(steps, StepPlan{Kind: "shutdown", Description: "remove the old version"})
	return steps
}

func labelGates(label string, gates []StepPlan) []StepPlan {
	for i := range gates {
		gates[i].Description = label + ", in parallel: " + gates[i].Description
	}
	return gates
}

func planSteps(f *File, steps []*Step, tp TargetPlan) []StepPlan {
	var out []StepPlan
	for _, s := range steps {
		if s != nil && s.Kind() != "" {
			out = append(out, planStep(f, s, tp))
		}
	}
	return out
}

func planStep(f *File, s *Step, tp TargetPlan) StepPlan {
	sp := StepPlan{Kind: s.Kind()}
	switch {
	case s.SetWeight != nil:
		w := s.SetWeight.Weight
		sp.Weight = &w
		switch tp.Traffic {
		case TrafficPods:
			var parts []string
			for _, d := range tp.Deployments {
				n := NewPods(d.Replicas, w)
				sp.Pods = append(sp.Pods, PodSplit{Deployment: d.Name, New: n, Old: d.Replicas - n})
				parts = append(parts, fmt.Sprintf("%s %d new + %d old of %d", d.Name, n, d.Replicas-n, d.Replicas))
			}
			sp.Description = fmt.Sprintf("set weight %d%%", w)
			if len(parts) > 0 {
				sp.Description += ": " + strings.Join(parts, "; ")
			}
		default:
			sp.Description = fmt.Sprintf("send %d%% of traffic to the new version (%s weights; the new version runs at full size)", w, strings.ToUpper(tp.Traffic))
		}
	case s.Pause != nil:
		p := s.Pause
		if p.UntilApproved {
			sp.Description = "wait for approval"
			if p.Approvals > 1 {
				sp.Description = fmt.Sprintf("wait for %d approvals", p.Approvals)
			}
			if who := append(append([]string(nil), p.RequiresRoles...), p.Approvers...); len(who) > 0 {
				sp.Description += " by " + strings.Join(who, " or ")
			}
			if p.NotByStarter {
				sp.Description += ", not by who started it"
			}
			if p.ApprovalExpiration != nil {
				sp.Description += fmt.Sprintf("; roll back if none within %s", human(p.ApprovalExpiration.Value))
			}
		} else {
			sp.Description = "wait " + human(p.Wait)
		}
	case s.Analysis != nil:
		a := s.Analysis
		qs := make([]string, len(a.Queries))
		for i, q := range a.Queries {
			qs[i] = q.Name
		}
		sp.Description = fmt.Sprintf("analyse %s %d time(s), every %s", strings.Join(qs, ", "), a.NumberOfJudgmentRuns, human(a.Every))
		sp.Description += fmt.Sprintf("; on failure %s, on success %s", modeText(a.RollBackMode, "roll back", "wait for a decision"), modeText(a.RollForwardMode, "go on", "wait for a decision"))
	case s.RunWebhook != nil:
		name := s.RunWebhook.Name.Name
		sp.Description = fmt.Sprintf("run webhook %q", name)
		for _, w := range f.Webhooks {
			if w != nil && w.Name == name {
				if w.DisableCallback {
					sp.Description += " (no callback awaited)"
				} else {
					sp.Description += " and wait for its callback"
				}
				break
			}
		}
	case s.ExposeServices != nil:
		e := s.ExposeServices
		sp.Description = "expose " + strings.Join(e.Services, ", ") + " at preview URLs"
		if e.TTL != nil {
			sp.Description += " for " + human(e.TTL.Value)
		}
	}
	return sp
}

func modeText(mode, auto, manual string) string {
	if mode == "manual" {
		return manual
	}
	return auto
}

// human writes a duration the way the file would: "30 seconds", "2 minutes".
func human(d time.Duration) string {
	switch {
	case d == 0:
		return "0 seconds"
	case d%time.Hour == 0:
		return plural(int(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return plural(int(d/time.Minute), "minute")
	}
	return plural(int(d/time.Second), "second")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// WriteText writes the plan for a person.
func (p *Plan) WriteText(w io.Writer) error {
	var b strings.Builder
	n := 0
	for _, wv := range p.Waves {
		n += len(wv.Targets)
	}
	fmt.Fprintf(&b, "Plan for %q: %s in %s.\n", p.Application, plural(n, "target"), plural(len(p.Waves), "wave"))
	for _, note := range p.Notes {
		fmt.Fprintf(&b, "Note: %s\n", note)
	}
	for _, wv := range p.Waves {
		fmt.Fprintf(&b, "\nWave %d", wv.Number)
		if wv.Number == 1 {
			b.WriteString(" (starts at once)")
		} else {
			b.WriteString(" (each target starts when the targets it depends on succeeded)")
		}
		b.WriteString(":\n")
		for _, t := range wv.Targets {
			fmt.Fprintf(&b, "  %s: account %s", t.Name, t.Account)
			if t.Namespace != "" {
				fmt.Fprintf(&b, ", namespace %s", t.Namespace)
			}
			b.WriteString("\n")
			if len(t.DependsOn) > 0 {
				fmt.Fprintf(&b, "    after: %s\n", strings.Join(t.DependsOn, ", "))
			}
			var ds []string
			for _, d := range t.Deployments {
				ds = append(ds, fmt.Sprintf("%s (%d replicas)", d.Name, d.Replicas))
			}
			if len(ds) == 0 {
				ds = append(ds, "none found")
			}
			fmt.Fprintf(&b, "    deployments: %s; %s applied as they are\n", strings.Join(ds, ", "), plural(t.Objects, "other object"))
			if len(t.UnreadManifests) > 0 {
				fmt.Fprintf(&b, "    not read (pod counts may be incomplete): %s\n", strings.Join(t.UnreadManifests, ", "))
			}
			for _, w := range t.Windows {
				fmt.Fprintf(&b, "    starts only within %s\n", w)
			}
			for _, f := range t.Freezes {
				fmt.Fprintf(&b, "    held by the %s\n", f)
			}
			writeGates(&b, "before deployment, in parallel", t.Before)
			fmt.Fprintf(&b, "    strategy %s (%s", t.Strategy, t.StrategyKind)
			switch t.Traffic {
			case TrafficPods:
				b.WriteString(", traffic split by pod count")
			case TrafficSMI:
				b.WriteString(", traffic split by an SMI TrafficSplit")
			case TrafficIstio:
				b.WriteString(", traffic split by an Istio VirtualService")
			}
			b.WriteString("):\n")
			for i, s := range t.Steps {
				fmt.Fprintf(&b, "      %d. %s\n", i+1, s.Description)
			}
			writeGates(&b, "after deployment, in parallel", t.After)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeGates(b *strings.Builder, label string, gates []StepPlan) {
	if len(gates) == 0 {
		return
	}
	fmt.Fprintf(b, "    %s:\n", label)
	for _, g := range gates {
		fmt.Fprintf(b, "      - %s\n", g.Description)
	}
}
