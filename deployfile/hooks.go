package deployfile

import (
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Custom readers and self-checks of model types.

func (ts *Targets) decodeYAML(d *decoder, n, at *yaml.Node, path string) {
	*ts = decodeNamedMap[Target](d, n, path, "target", func(t *Target, name string) { t.Name = name })
}

func (ss *Strategies) decodeYAML(d *decoder, n, at *yaml.Node, path string) {
	*ss = decodeNamedMap[Strategy](d, n, path, "strategy", func(s *Strategy, name string) { s.Name = name })
}

// decodeNamedMap reads a map of names to T, keeping the file's order.
func decodeNamedMap[T any](d *decoder, n *yaml.Node, path, what string, setName func(*T, string)) []*T {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, CodeWrongType, "%s must be a map of %s names to their settings, not %s", path, what, describe(n))
		return nil
	}
	var out []*T
	seen := map[string]*yaml.Node{}
	for _, p := range d.pairs(n) {
		k := p[0]
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			d.errorf(k, CodeWrongType, "a %s name in %s must be a non-empty string, not %s", what, path, describe(k))
			continue
		}
		if prev := seen[k.Value]; prev != nil {
			d.errorf(k, CodeDuplicate, "%s %q is defined twice (first on line %d)", what, k.Value, prev.Line)
			continue
		}
		seen[k.Value] = k
		t := new(T)
		setName(t, k.Value)
		v := d.resolve(p[1])
		if v == nil {
			break
		}
		d.decodeStruct(reflect.ValueOf(t).Elem(), v, k, pathKey(path, k.Value))
		out = append(out, t)
	}
	return out
}

func (r *Ref) decodeYAML(d *decoder, n, at *yaml.Node, path string) {
	r.Pos = d.pos(n)
	if n.Kind != yaml.ScalarNode || isNull(n) || n.Value == "" {
		d.errorf(n, CodeWrongType, "%s must be a name, not %s", path, describe(n))
		return
	}
	r.Name = n.Value
}

func (t *Template) decodeYAML(d *decoder, n, at *yaml.Node, path string) {
	t.Pos = d.pos(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, CodeWrongType, "%s must be a string, not %s", path, describe(n))
		return
	}
	t.Text = n.Value
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 || strings.Contains(n.Value, "\n"):
		t.shift = -1
	case n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		t.shift = 1
		if strings.ContainsAny(n.Value, "\\'\"") {
			t.shift = -1 // escapes make columns differ from offsets
		}
	}
}

var unitNames = []string{"seconds", "minutes", "hours"}

// canonicalUnit maps any case and the singular to seconds, minutes or hours.
func canonicalUnit(s string) string {
	l := strings.ToLower(s)
	for _, u := range unitNames {
		if l == u || l == strings.TrimSuffix(u, "s") {
			return u
		}
	}
	return ""
}

func (u *TimeUnit) decodeYAML(d *decoder, n, at *yaml.Node, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, CodeWrongType, "%s must be seconds, minutes or hours, not %s", path, describe(n))
		return
	}
	if canonicalUnit(n.Value) == "" {
		d.errorf(n, CodeInvalidValue, "%s must be seconds, minutes or hours (any case), not %q%s", path, n.Value, didYouMean(strings.ToLower(n.Value), unitNames))
		return
	}
	*u = TimeUnit(n.Value)
}

func (w *SetWeight) decodeYAML(d *decoder, n, at *yaml.Node, path string) {
	w.Pos = d.pos(at)
	valNode := n
	switch {
	case isNull(n):
		d.errorf(at, CodeMissingKey, "%s needs a weight: write setWeight: {weight: 25} or setWeight: 25", path)
		return
	case n.Kind == yaml.ScalarNode:
		if n.Tag != "!!int" {
			d.errorf(n, CodeWrongType, "%s must be a whole number from 0 to 100 or {weight: N}, not %s", path, describe(n))
			return
		}
		d.decode(reflect.ValueOf(&w.Weight).Elem(), n, at, path)
	case n.Kind == yaml.MappingNode:
		before := len(d.r.errs)
		d.decodeStruct(reflect.ValueOf(w).Elem(), n, at, path)
		if len(d.r.errs) > before {
			return
		}
		valNode = valueNode(n, "weight")
	default:
		d.errorf(n, CodeWrongType, "%s must be a whole number from 0 to 100 or {weight: N}, not %s", path, describe(n))
		return
	}
	if w.Weight < 0 || w.Weight > 100 {
		d.errorf(d.resolve(valNode), CodeWeightRange, "%s is %d; a weight is a percentage from 0 to 100", path, w.Weight)
	}
}

func (s *Step) afterDecode(d *decoder, n *yaml.Node, path string) {
	var kinds []string
	for _, k := range []string{"setWeight", "pause", "analysis", "runWebhook", "exposeServices"} {
		if keyNode(n, k) != nil {
			kinds = append(kinds, k)
		}
	}
	switch {
	case len(n.Content) == 0:
		d.errorf(n, CodeMissingKey, "%s is empty; a step is one of setWeight, pause, analysis, runWebhook or exposeServices", path)
	case len(kinds) > 1:
		d.errorf(keyNode(n, kinds[1]), CodeInvalidValue, "%s has both %s and %s; a step does one thing, so make them two list items (\"- %s: ...\" and \"- %s: ...\")", path, kinds[0], kinds[1], kinds[0], kinds[1])
	}
}

// maxApprovals bounds a pause's approvals (the engine's MaxApprovals).
const maxApprovals = 10

func (p *Pause) afterDecode(d *decoder, n *yaml.Node, path string) {
	if !d.clean {
		if p.Duration != nil {
			p.Wait = time.Duration(*p.Duration) * p.Unit.Duration()
		}
		return
	}
	switch {
	case p.Duration != nil && p.UntilApproved:
		d.errorf(keyNode(n, "untilApproved"), CodePauseConflict, "%s has both duration and untilApproved: a pause waits either for a time or for an approval; make them two pauses", path)
	case p.Duration == nil && !p.UntilApproved:
		if keyNode(n, "untilApproved") != nil {
			d.errorf(keyNode(n, "untilApproved"), CodeInvalidValue, "%s: untilApproved: false waits for nothing; give untilApproved: true or a duration and unit", path)
		} else {
			d.errorf(n, CodeMissingKey, "%s needs either a duration and unit, or untilApproved: true", path)
		}
	case p.Duration != nil:
		if p.Unit == "" {
			d.errorf(keyNode(n, "duration"), CodeMissingKey, "%s has a duration but no unit (seconds, minutes or hours)", path)
		}
		if *p.Duration < 0 {
			d.errorf(valueNode(n, "duration"), CodeInvalidValue, "%s: duration must not be negative", path)
		}
		p.Wait = time.Duration(*p.Duration) * p.Unit.Duration()
	}
	if kn := keyNode(n, "approvals"); kn != nil && (p.Approvals < 1 || p.Approvals > maxApprovals) {
		d.errorf(valueNode(n, "approvals"), CodeInvalidValue, "%s: approvals must be 1 to %d", path, maxApprovals)
	}
	if p.Duration == nil && p.Unit != "" && p.UntilApproved {
		d.errorf(firstKey(n, "unit", "units"), CodeInvalidValue, "%s has a unit but no duration; an approval pause has no unit", path)
	}
	if !p.UntilApproved {
		for _, k := range []string{"requiresRoles", "approvalExpiration", "approvers", "approvals", "notByStarter"} {
			if kn := keyNode(n, k); kn != nil && p.Duration != nil {
				d.errorf(kn, CodeInvalidValue, "%s: %s applies only to a pause with untilApproved: true", path, k)
			}
		}
	}
}

func firstKey(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		if kn := keyNode(n, k); kn != nil {
			return kn
		}
	}
	return n
}

func (du *Duration) afterDecode(d *decoder, n *yaml.Node, path string) {
	if du.Amount < 0 {
		d.errorf(valueNode(n, "duration"), CodeInvalidValue, "%s: duration must not be negative", path)
	}
	du.Value = time.Duration(du.Amount) * du.Unit.Duration()
}

func (a *AnalysisStep) afterDecode(d *decoder, n *yaml.Node, path string) {
	if kn := valueNode(n, "interval"); kn != nil && a.Interval <= 0 {
		d.errorf(kn, CodeInvalidValue, "%s: interval must be greater than 0", path)
	}
	if kn := valueNode(n, "numberOfJudgmentRuns"); kn != nil && a.NumberOfJudgmentRuns < 1 {
		d.errorf(kn, CodeInvalidValue, "%s: numberOfJudgmentRuns must be at least 1", path)
	}
	if kn := valueNode(n, "queries"); kn != nil && kn.Kind == yaml.SequenceNode && len(kn.Content) == 0 {
		d.errorf(kn, CodeInvalidValue, "%s: queries is empty; name at least one query of analysis.queries", path)
	}
	a.Every = time.Duration(a.Interval) * a.Units.Duration()
}

func (c *Canary) afterDecode(d *decoder, n *yaml.Node, path string) {
	if kn := valueNode(n, "steps"); kn != nil && len(c.Steps) == 0 {
		d.errorf(kn, CodeMissingKey, "%s.steps is empty; a canary needs at least one step, e.g. - setWeight: 100", path)
	}
	prev, prevLine := -1, 0
	for _, s := range c.Steps {
		if s == nil || s.SetWeight == nil {
			continue
		}
		w := s.SetWeight
		if w.Weight < 0 || w.Weight > 100 {
			continue
		}
		if w.Weight < prev {
			d.r.errorf(w.Pos, CodeWeightOrder, "setWeight %d is lower than the setWeight %d before it (line %d); canary weights may only grow", w.Weight, prev, prevLine)
		}
		prev, prevLine = w.Weight, w.Pos.Line
	}
}

func (b *BlueGreen) afterDecode(d *decoder, n *yaml.Node, path string) {
	if b.ActiveService != "" && b.PreviewService == b.ActiveService {
		d.errorf(valueNode(n, "previewService"), CodeSameService, "%s: previewService is the same Service as activeService (%q); the preview must be a different Service, or the new version gets production traffic before its gates pass", path, b.ActiveService)
	}
}

func (k *KubernetesTraffic) afterDecode(d *decoder, n *yaml.Node, path string) {
	if k.ActiveService != "" && k.PreviewService == k.ActiveService {
		d.errorf(valueNode(n, "previewService"), CodeSameService, "%s: previewService is the same Service as activeService (%q); they must differ", path, k.ActiveService)
	}
}

func (s *Strategy) afterDecode(d *decoder, n *yaml.Node, path string) {
	has := func(k string) bool { return keyNode(n, k) != nil }
	switch {
	case has("canary") && has("blueGreen"):
		d.errorf(keyNode(n, "blueGreen"), CodeInvalidValue, "strategy %q has both canary and blueGreen; a strategy is one of them", s.Name)
	case !has("canary") && !has("blueGreen"):
		d.r.errorf(s.Pos, CodeMissingKey, "strategy %q needs canary or blueGreen", s.Name)
	case has("canary") && s.Canary == nil:
		d.errorf(keyNode(n, "canary"), CodeMissingKey, "strategy %q: canary is empty; it needs steps", s.Name)
	case has("blueGreen") && s.BlueGreen == nil:
		d.errorf(keyNode(n, "blueGreen"), CodeMissingKey, "strategy %q: blueGreen is empty; it needs at least an activeService (here or under trafficManagement.kubernetes)", s.Name)
	}
}

func (m *Manifest) afterDecode(d *decoder, n *yaml.Node, path string) {
	path0, inline := keyNode(n, "path"), keyNode(n, "inline")
	if v := d.resolve(valueNode(n, "inline")); v != nil {
		m.inlineAt = inlinePos{line: v.Line, col: v.Column, literal: v.Style&yaml.LiteralStyle != 0 && v == valueNode(n, "inline")}
	}
	switch {
	case path0 != nil && inline != nil:
		d.errorf(inline, CodeInvalidValue, "%s has both path and inline; give one of them per list item", path)
	case path0 == nil && inline == nil:
		d.r.errorf(m.Pos, CodeMissingKey, "%s needs path (a file or directory) or inline (manifests written in place)", path)
	case path0 != nil && strings.TrimSpace(m.Path) == "":
		d.errorf(path0, CodeMissingKey, "%s: path is empty", path)
	case inline != nil && strings.TrimSpace(m.Inline) == "":
		d.errorf(inline, CodeMissingKey, "%s: inline is empty", path)
	}
}

func (c *DeploymentConfig) afterDecode(d *decoder, n *yaml.Node, path string) {
	if c.Timeout != nil && c.Timeout.Unit != "" && c.Timeout.Value < time.Minute {
		d.errorf(valueNode(n, "timeout"), CodeInvalidValue, "%s.timeout is %s; it must be at least 1 minute", path, c.Timeout.Value)
	}
}

// MaxRetryCount bounds a webhook's retryCount: with exponential backoff,
// more retries only hold a step (and a connection slot) longer.
const MaxRetryCount = 10

func (w *Webhook) afterDecode(d *decoder, n *yaml.Node, path string) {
	if w.RetryCount < 0 || w.RetryCount > MaxRetryCount {
		d.errorf(valueNode(n, "retryCount"), CodeInvalidValue, "webhook %q: retryCount is %d; it must be from 0 to %d", w.Name, w.RetryCount, MaxRetryCount)
	}
}

func (q *Query) afterDecode(d *decoder, n *yaml.Node, path string) {
	if q.LowerLimit != nil && q.UpperLimit != nil && *q.LowerLimit > *q.UpperLimit {
		d.errorf(valueNode(n, "lowerLimit"), CodeInvalidValue, "query %q: lowerLimit %v is above upperLimit %v, so every result fails", q.Name, *q.LowerLimit, *q.UpperLimit)
	}
}

func (tm *TrafficManagement) afterDecode(d *decoder, n *yaml.Node, path string) {
	if len(tm.SMI)+len(tm.Istio)+len(tm.Kubernetes)+len(tm.HTTPRoute) == 0 && len(n.Content) > 0 && keyNode(n, "smi") == nil && keyNode(n, "istio") == nil && keyNode(n, "kubernetes") == nil && keyNode(n, "httpRoute") == nil {
		d.errorf(n, CodeMissingKey, "%s names no smi, istio, kubernetes or httpRoute entries", path)
	}
}
