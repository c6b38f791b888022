package deployfile

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// validate checks what one key cannot check alone: references between
// parts of the file, dependency cycles, where a step may stand, and the
// variables of templates.
func validate(f *File, r *report) {
	targetNames := names(f.Targets, func(t *Target) string { return t.Name })
	strategyNames := names(f.Strategies, func(s *Strategy) string { return s.Name })
	webhookNames := names(f.Webhooks, func(w *Webhook) string { return w.Name })
	var queryNames []string
	if f.Analysis != nil {
		queryNames = names(f.Analysis.Queries, func(q *Query) string { return q.Name })
	}

	checkUnique(r, "webhook", f.Webhooks, func(w *Webhook) (string, Pos) { return w.Name, w.Pos })
	if f.Analysis != nil {
		checkUnique(r, "query", f.Analysis.Queries, func(q *Query) (string, Pos) { return q.Name, q.Pos })
	}

	checkRef := func(ref Ref, what string, known []string, hint string) bool {
		if ref.Name == "" || slices.Contains(known, ref.Name) {
			return true
		}
		msg := fmt.Sprintf("%s %q is not defined", what, ref.Name)
		if s := didYouMean(ref.Name, known); s != "" {
			msg += s
		} else if len(known) > 0 {
			msg += fmt.Sprintf(" (%s: %s)", hint, quotedList(known))
		} else {
			msg += fmt.Sprintf(" (%s: none)", hint)
		}
		r.errorf(ref.Pos, CodeUnknownRef, "%s", msg)
		return false
	}

	for _, t := range f.Targets {
		if s := f.Strategies.Get(t.Strategy.Name); s == nil {
			checkRef(t.Strategy, "strategy", strategyNames, "strategies defined")
		} else if s.BlueGreen != nil && s.BlueGreen.ActiveService == "" && len(trafficFor(f, t.Name, func(tm *TrafficManagement) bool { return len(tm.Kubernetes) > 0 })) == 0 {
			r.errorf(t.Strategy.Pos, CodeMissingKey, "target %q uses the blueGreen strategy %q, which has no activeService; give activeService in the strategy or in a trafficManagement kubernetes entry for this target", t.Name, s.Name)
		}
		if t.Constraints == nil {
			continue
		}
		checkWindows(r, t)
		seen := map[string]bool{}
		for _, dep := range t.Constraints.DependsOn {
			switch {
			case dep.Name == t.Name:
				r.errorf(dep.Pos, CodeCycle, "target %q depends on itself", t.Name)
			case seen[dep.Name]:
				r.warnf(dep.Pos, CodeDuplicate, "target %q lists %q twice in dependsOn", t.Name, dep.Name)
			default:
				checkRef(dep, "dependsOn target", targetNames, "targets defined")
			}
			seen[dep.Name] = true
		}
	}
	if len(f.Targets) == 0 && f.Pos.Line > 0 && f.Targets != nil {
		r.errorf(f.Pos, CodeMissingKey, "targets is empty; name at least one target")
	}
	checkCycles(f, r)

	for i, m := range f.Manifests {
		if m == nil {
			continue
		}
		for _, ref := range m.Targets {
			checkRef(ref, fmt.Sprintf("manifests[%d] target", i), targetNames, "targets defined")
		}
	}
	for i, tm := range f.TrafficManagement {
		if tm == nil {
			continue
		}
		for _, ref := range tm.Targets {
			checkRef(ref, fmt.Sprintf("trafficManagement[%d] target", i), targetNames, "targets defined")
		}
	}

	// Steps: where each kind may stand, and what it names.
	webhookCalls := map[string][]Context{}
	queryCalls := map[string][]Context{}
	usedStrategies := map[string]bool{}
	for _, t := range f.Targets {
		usedStrategies[t.Strategy.Name] = true
	}
	forEachStepList(f, func(where string, kind listKind, steps []*Step) {
		for _, s := range steps {
			if s == nil {
				continue
			}
			if k := s.Kind(); k != "" && !kind.allows(k) {
				r.errorf(s.Pos, CodeInvalidValue, "%s cannot hold a %s step; %s", where, k, kind.explain())
			}
			switch {
			case s.RunWebhook != nil:
				if checkRef(s.RunWebhook.Name, "webhook", webhookNames, "webhooks defined") {
					webhookCalls[s.RunWebhook.Name.Name] = append(webhookCalls[s.RunWebhook.Name.Name], merge(f.Context, s.RunWebhook.Context))
				}
			case s.Analysis != nil:
				a := s.Analysis
				for _, q := range a.Queries {
					if !checkRef(q, "analysis query", queryNames, "analysis.queries defined") {
						continue
					}
					queryCalls[q.Name] = append(queryCalls[q.Name], merge(f.Context, a.Context))
					if a.MetricProviderName == "" && providerOf(f, q.Name) == "" {
						r.errorf(q.Pos, CodeMissingKey, "query %q has no metric provider: set analysis.defaultMetricProviderName, or metricProviderName on the query or on this analysis step", q.Name)
					}
				}
			case s.ExposeServices != nil:
				if ttl := s.ExposeServices.TTL; ttl != nil && ttl.Value > 0 && (ttl.Value < MinPreviewTTL || ttl.Value > MaxPreviewTTL) {
					r.errorf(ttl.Pos, CodeInvalidValue, "exposeServices.ttl is %v; a preview URL lives from 1 minute to 24 hours", ttl.Value)
				}
			}
		}
	})

	if dc := f.DeploymentConfig; dc != nil && dc.KeepPrevious != nil {
		kp := dc.KeepPrevious
		if kp.For != nil && (kp.For.Value <= 0 || kp.For.Value > MaxKeepPrevious) {
			r.errorf(kp.For.Pos, CodeInvalidValue, "keepPrevious.for is %v; the previous version is kept from 1 second to 7 days", kp.For.Value)
		}
		if kp.Replicas != nil && *kp.Replicas < 0 {
			r.errorf(kp.Pos, CodeInvalidValue, "keepPrevious.replicas is %d; it is 0 (scaled to zero) or more", *kp.Replicas)
		}
	}

	// Templates, checked with the context of every place that uses them.
	for _, w := range f.Webhooks {
		what := fmt.Sprintf("webhook %q", w.Name)
		templates := []Template{w.URITemplate}
		for _, h := range w.Headers {
			if h != nil {
				templates = append(templates, h.Value)
			}
		}
		if w.BodyTemplate != nil {
			templates = append(templates, w.BodyTemplate.Inline)
		}
		for _, t := range templates {
			checkTemplate(r, t, what, webhookCalls[w.Name])
		}
		if len(webhookCalls[w.Name]) == 0 {
			r.warnf(w.Pos, CodeUnused, "webhook %q is never run (no runWebhook names it)", w.Name)
		}
	}
	if f.Analysis != nil {
		for _, q := range f.Analysis.Queries {
			checkTemplate(r, q.QueryTemplate, fmt.Sprintf("query %q", q.Name), queryCalls[q.Name])
			if len(queryCalls[q.Name]) == 0 {
				r.warnf(q.Pos, CodeUnused, "query %q is never used (no analysis step names it)", q.Name)
			}
		}
	}
	for _, s := range f.Strategies {
		if !usedStrategies[s.Name] {
			r.warnf(s.Pos, CodeUnused, "strategy %q is not used by any target", s.Name)
		}
	}
}

// listKind is where a list of steps stands.
type listKind int

const (
	canarySteps listKind = iota
	constraintGates
	blueGreenGates
)

func (k listKind) allows(step string) bool {
	switch k {
	case constraintGates:
		return step == "pause" || step == "runWebhook" || step == "analysis"
	case blueGreenGates:
		return step != "setWeight"
	}
	return true
}

func (k listKind) explain() string {
	if k == constraintGates {
		return "beforeDeployment and afterDeployment take pause, runWebhook and analysis"
	}
	return "blue/green gates take pause, runWebhook, analysis and exposeServices; setWeight belongs to a canary"
}

// forEachStepList calls fn for every list of steps, in file order.
func forEachStepList(f *File, fn func(where string, kind listKind, steps []*Step)) {
	for _, t := range f.Targets {
		if c := t.Constraints; c != nil {
			base := pathKey("targets", t.Name) + ".constraints"
			fn(base+".beforeDeployment", constraintGates, c.BeforeDeployment)
			fn(base+".afterDeployment", constraintGates, c.AfterDeployment)
		}
	}
	for _, s := range f.Strategies {
		base := pathKey("strategies", s.Name)
		if s.Canary != nil {
			fn(base+".canary.steps", canarySteps, s.Canary.Steps)
		}
		if b := s.BlueGreen; b != nil {
			fn(base+".blueGreen.redirectTrafficAfter", blueGreenGates, b.RedirectTrafficAfter)
			fn(base+".blueGreen.shutDownOldVersionAfter", blueGreenGates, b.ShutDownOldVersionAfter)
		}
	}
}

// checkTemplate reports bad tags, and context keys missing at any call site.
func checkTemplate(r *report, t Template, what string, calls []Context) {
	vars, errs := ParseTemplate(t.Text)
	for _, e := range errs {
		r.errorf(t.posOf(e.Offset), CodeTemplate, "%s: %s", what, e.Message)
	}
	for _, v := range vars {
		if v.Namespace != NSContext {
			continue
		}
		for _, ctx := range calls {
			if _, ok := ctx[v.Name]; !ok {
				r.errorf(t.posOf(v.Offset), CodeTemplate, "%s uses %s, but context key %q is not defined where it runs; add it to the top-level context or to the context of the step that runs it", what, v, v.Name)
				break
			}
		}
	}
}

// Secrets returns the names of the secrets the file's templates use, sorted.
func (f *File) Secrets() []string {
	set := map[string]bool{}
	add := func(t Template) {
		vars, _ := ParseTemplate(t.Text)
		for _, v := range vars {
			if v.Namespace == NSSecrets {
				set[v.Name] = true
			}
		}
	}
	for _, w := range f.Webhooks {
		add(w.URITemplate)
		for _, h := range w.Headers {
			if h != nil {
				add(h.Value)
			}
		}
		if w.BodyTemplate != nil {
			add(w.BodyTemplate.Inline)
		}
	}
	if f.Analysis != nil {
		for _, q := range f.Analysis.Queries {
			add(q.QueryTemplate)
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// checkCycles names every dependency cycle once.
func checkCycles(f *File, r *report) {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	reported := map[string]bool{}
	var visit func(t *Target)
	visit = func(t *Target) {
		color[t.Name] = grey
		stack = append(stack, t.Name)
		if t.Constraints != nil {
			for _, dep := range t.Constraints.DependsOn {
				next := f.Targets.Get(dep.Name)
				if next == nil || next == t {
					continue
				}
				switch color[next.Name] {
				case white:
					visit(next)
				case grey:
					i := slices.Index(stack, next.Name)
					cycle := append(slices.Clone(stack[i:]), next.Name)
					key := cycleKey(cycle[:len(cycle)-1])
					if !reported[key] {
						reported[key] = true
						r.errorf(dep.Pos, CodeCycle, "dependency cycle: %s; targets in a cycle can never start", strings.Join(quoteAll(cycle), " depends on "))
					}
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[t.Name] = black
	}
	for _, t := range f.Targets {
		if color[t.Name] == white {
			visit(t)
		}
	}
}

func cycleKey(c []string) string {
	s := slices.Clone(c)
	slices.Sort(s)
	return strings.Join(s, "\x00")
}

func quoteAll(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = fmt.Sprintf("%q", x)
	}
	return out
}

func quotedList(xs []string) string { return strings.Join(quoteAll(xs), ", ") }

func names[T any](xs []*T, name func(*T) string) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		if x != nil {
			out = append(out, name(x))
		}
	}
	return out
}

func checkUnique[T any](r *report, what string, xs []*T, key func(*T) (string, Pos)) {
	first := map[string]Pos{}
	for _, x := range xs {
		if x == nil {
			continue
		}
		name, pos := key(x)
		if name == "" {
			continue
		}
		if p, ok := first[name]; ok {
			r.errorf(pos, CodeDuplicate, "%s %q is defined twice (first on line %d); names must be unique", what, name, p.Line)
			continue
		}
		first[name] = pos
	}
}

func merge(a, b Context) Context {
	out := make(Context, len(a)+len(b))
	maps.Copy(out, a)
	maps.Copy(out, b)
	return out
}

// providerOf is the metric provider a query uses when the step names none.
func providerOf(f *File, query string) string {
	if f.Analysis == nil {
		return ""
	}
	for _, q := range f.Analysis.Queries {
		if q != nil && q.Name == query && q.MetricProviderName != "" {
			return q.MetricProviderName
		}
	}
	return f.Analysis.DefaultMetricProviderName
}

// trafficFor returns the trafficManagement entries that apply to a target
// and satisfy keep.
func trafficFor(f *File, target string, keep func(*TrafficManagement) bool) []*TrafficManagement {
	var out []*TrafficManagement
	for _, tm := range f.TrafficManagement {
		if tm == nil || !keep(tm) {
			continue
		}
		if len(tm.Targets) == 0 || slices.ContainsFunc(tm.Targets, func(r Ref) bool { return r.Name == target }) {
			out = append(out, tm)
		}
	}
	return out
}

var windowDays = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// checkWindows checks a target's deploy windows: what the engine would
// refuse, said with the window's position.
func checkWindows(r *report, t *Target) {
	ws := t.Constraints.DeployWindows
	checkUnique(r, fmt.Sprintf("deploy window of target %q", t.Name), ws, func(w *DeployWindow) (string, Pos) { return w.Name, w.Pos })
	for _, w := range ws {
		where := fmt.Sprintf("deploy window %q of target %q", w.Name, t.Name)
		for _, d := range w.Days {
			if !slices.Contains(windowDays, d) {
				r.errorf(w.Pos, CodeInvalidValue, "%s: day %q is not one of %s%s", where, d, strings.Join(windowDays, ", "), didYouMean(d, windowDays))
			}
		}
		for _, d := range w.Dates {
			if _, err := time.Parse(time.DateOnly, d); err != nil {
				r.errorf(w.Pos, CodeInvalidValue, "%s: date %q is not YYYY-MM-DD", where, d)
			}
		}
		if (w.Start == "") != (w.End == "") {
			r.errorf(w.Pos, CodeMissingKey, "%s: give both start and end, or neither for the whole day", where)
		}
		for _, c := range []string{w.Start, w.End} {
			if _, err := time.Parse("15:04", c); c != "" && (err != nil || len(c) != 5) {
				r.errorf(w.Pos, CodeInvalidValue, "%s: time %q is not HH:MM (00:00 to 23:59; quote it in YAML)", where, c)
			}
		}
		if _, err := time.LoadLocation(w.TimeZone); err != nil {
			r.errorf(w.Pos, CodeInvalidValue, "%s: time zone %q is unknown; give an IANA name such as Europe/Paris", where, w.TimeZone)
		}
	}
}
