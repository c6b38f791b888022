package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// DefaultTimeout bounds how long a target waits for its pods to become Ready
// (and for any other cluster command) when the spec sets no timeout.
const DefaultTimeout = 30 * time.Minute

// Spec is what a pipeline runs, independent of the YAML it came from. It is
// stored as JSON next to the pipeline's state, which is what makes a
// redeploy a plain Start of a stored Spec.
type Spec struct {
	Application string `json:"application"`
	Tenant      string `json:"tenant"`
	// Targets in file order; the order only breaks ties (commands of targets
	// that start together are emitted in this order).
	Targets []TargetSpec `json:"targets"`
	// Timeout bounds every cluster command (readiness included) and, unless
	// the webhook step says otherwise, every webhook callback. Zero means
	// DefaultTimeout.
	Timeout Duration `json:"timeout,omitzero"`
	// IfInProgress is what Admit does when a pipeline of the same application
	// and tenant is in flight. Empty means InProgressReject.
	IfInProgress InProgressPolicy `json:"ifDeploymentInProgress,omitempty"`
	// TargetFilters, when not empty, names the only targets that run; a
	// dependsOn on a filtered-out target counts as satisfied.
	TargetFilters []string `json:"targetFilters,omitempty"`
	// Restores, when set, names the earlier pipeline whose version this one
	// puts back (a rollback after success, or to any stored version), and
	// Reason says why; its targets are Restore targets.
	Restores string `json:"restores,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Windows are the deploy windows that apply to the pipeline's targets
	// (the tenant's, the application's, the targets' and the file's), as
	// they were when it was created.
	Windows []Window `json:"windows,omitempty"`
	// OutsideWindow is what a start outside a window that gives no mode
	// does: the deployment file's say; empty means WindowQueue.
	OutsideWindow WindowMode `json:"outsideWindow,omitempty"`
}

// InProgressPolicy is deploymentConfig.ifDeploymentInProgress.strategy.
type InProgressPolicy string

// In-progress policies.
const (
	InProgressReject     InProgressPolicy = "reject"
	InProgressEnqueueOne InProgressPolicy = "enqueueOne"
)

// TargetSpec is one target: where, after what, with which gates and how.
type TargetSpec struct {
	Name      string   `json:"name"`
	Account   string   `json:"account"`
	Namespace string   `json:"namespace"`
	DependsOn []string `json:"dependsOn,omitempty"`
	// BeforeDeployment and AfterDeployment items run in parallel; only pause,
	// analysis, runWebhook and exposeServices make sense there.
	BeforeDeployment []Step   `json:"beforeDeployment,omitempty"`
	AfterDeployment  []Step   `json:"afterDeployment,omitempty"`
	Strategy         Strategy `json:"strategy"`
	// FirstDeployment is true when the application has never been deployed
	// to this target: the strategy is replaced by a straight deployment at
	// 100 %; beforeDeployment and afterDeployment still apply. The caller
	// decides it (it knows the history), the engine only obeys.
	FirstDeployment bool `json:"firstDeployment,omitempty"`
	// Restore puts an earlier version back: a straight deployment at 100 %
	// like a first deployment, and the caller leaves out the gates.
	Restore bool `json:"restore,omitempty"`
	// KeepPrevious, when set, keeps the version the target replaced warm
	// (out of traffic) for a while after the target succeeded, so that a
	// restore of it brings traffic back at once. A restore keeps none.
	KeepPrevious *KeepPrevious `json:"keepPrevious,omitempty"`
}

// KeepPrevious says how long and at what size a target's previous version
// is kept warm after the target succeeded.
type KeepPrevious struct {
	For Duration `json:"for"`
	// Replicas are the pods kept Ready; 0 keeps it scaled to zero.
	Replicas int32 `json:"replicas,omitempty"`
}

// Strategy is a canary or a blue/green. Neither set means a straight
// deployment at 100 %.
type Strategy struct {
	Name      string     `json:"name,omitempty"`
	Canary    *Canary    `json:"canary,omitempty"`
	BlueGreen *BlueGreen `json:"blueGreen,omitempty"`
}

// Canary runs its steps in sequence, then promotes the new version.
type Canary struct {
	Steps []Step `json:"steps"`
}

// BlueGreen starts the new version behind the preview service, redirects the
// active service after every RedirectTrafficAfter item passed, and removes
// the old version after every ShutDownOldVersionAfter item passed.
type BlueGreen struct {
	// ActiveService and PreviewService are opaque to the engine; the
	// executor reads them from the stored spec.
	ActiveService  string `json:"activeService,omitempty"`
	PreviewService string `json:"previewService,omitempty"`
	// MoreServices are the further Service pairs of a target deploying
	// several Deployments blue/green, one pair each (trafficManagement's
	// kubernetes list, as Armory's files give them).
	MoreServices            []ServicePair `json:"moreServices,omitempty"`
	RedirectTrafficAfter    []Step        `json:"redirectTrafficAfter,omitempty"`
	ShutDownOldVersionAfter []Step        `json:"shutDownOldVersionAfter,omitempty"`
}

// ServicePair is a blue/green's active Service and its optional preview.
type ServicePair struct {
	Active  string `json:"active"`
	Preview string `json:"preview,omitempty"`
}

// Step is a canary step or a gate item; exactly one field is set.
type Step struct {
	SetWeight      *SetWeight      `json:"setWeight,omitempty"`
	Pause          *Pause          `json:"pause,omitempty"`
	Analysis       *Analysis       `json:"analysis,omitempty"`
	RunWebhook     *RunWebhook     `json:"runWebhook,omitempty"`
	ExposeServices *ExposeServices `json:"exposeServices,omitempty"`
}

// SetWeight moves the canary to Weight percent (0..100).
type SetWeight struct {
	Weight int `json:"weight"`
}

// Pause waits for Duration, or, with UntilApproved, for approvals by
// Approvals distinct principals (zero: one), each holding one of
// RequiresRoles or named in Approvers (anyone when both are empty; admins
// always), and, with NotByStarter, not the one who started the pipeline.
// Approvals not all given within ApprovalExpiration (zero: never expires)
// fail the target.
type Pause struct {
	Duration           Duration `json:"duration,omitzero"`
	UntilApproved      bool     `json:"untilApproved,omitempty"`
	RequiresRoles      []string `json:"requiresRoles,omitempty"`
	Approvers          []string `json:"approvers,omitempty"`
	Approvals          int      `json:"approvals,omitempty"`
	NotByStarter       bool     `json:"notByStarter,omitempty"`
	ApprovalExpiration Duration `json:"approvalExpiration,omitzero"`
}

// MaxApprovals bounds Pause.Approvals.
const MaxApprovals = 10

// approvals is how many distinct approvals the pause needs.
func (p *Pause) approvals() int { return max(p.Approvals, 1) }

// Analysis modes.
const (
	ModeAutomatic = "automatic"
	ModeManual    = "manual"
)

// What an inconclusive analysis does (Analysis.Inconclusive).
const (
	InconclusiveWait     = "wait"
	InconclusiveRollback = "rollback"
	InconclusiveProceed  = "proceed"
)

// Analysis asks the analysis adapter to judge the new version. The engine
// only reads the modes; Params is passed through untouched.
type Analysis struct {
	// RollBackMode manual: a failed analysis waits for a person to roll back
	// (or to approve and go on) instead of rolling back at once.
	RollBackMode string `json:"rollBackMode,omitempty"`
	// RollForwardMode manual: a passed analysis waits for an approval.
	RollForwardMode string `json:"rollForwardMode,omitempty"`
	// Inconclusive is what an analysis that could not judge (no data, NaN,
	// a provider unreachable) does, whatever RollBackMode says: wait (empty
	// means wait) for a person to approve or roll back, rollback at once,
	// or proceed as a passed analysis would (RollForwardMode still applies).
	Inconclusive string          `json:"inconclusive,omitempty"`
	Params       json.RawMessage `json:"params,omitempty"`
}

// RunWebhook calls the named webhook and, unless DisableCallback, waits for
// its callback.
type RunWebhook struct {
	Name            string            `json:"name"`
	Context         map[string]string `json:"context,omitempty"`
	DisableCallback bool              `json:"disableCallback,omitempty"`
	// CallbackTimeout bounds the call plus its callback; zero means the
	// spec's Timeout.
	CallbackTimeout Duration `json:"callbackTimeout,omitzero"`
}

// ExposeServices asks the executor to expose services of the new version;
// Params is passed through untouched.
type ExposeServices struct {
	Params json.RawMessage `json:"params,omitempty"`
}

// Duration is a time.Duration stored as text ("1m30s") so stored specs and
// API answers stay readable.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// timeout is the effective deployment timeout.
func (s *Spec) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout.Std()
	}
	return DefaultTimeout
}

// runs reports whether the target named name takes part in this pipeline.
func (s *Spec) runs(name string) bool {
	return len(s.TargetFilters) == 0 || slices.Contains(s.TargetFilters, name)
}

// Target returns the target named name, or nil. Adapters read what a
// command leaves out (services, the strategy's kind) from it.
func (s *Spec) Target(name string) *TargetSpec {
	for i := range s.Targets {
		if s.Targets[i].Name == name {
			return &s.Targets[i]
		}
	}
	return nil
}

// Validate reports every structural problem of s at once. It checks what the
// engine relies on; the deployment-file validator reports the same mistakes
// earlier with file positions, so an error here is a bug in a conversion.
func (s *Spec) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.Application == "" {
		bad("application is empty")
	}
	switch s.IfInProgress {
	case "", InProgressReject, InProgressEnqueueOne:
	default:
		bad("ifDeploymentInProgress %q is neither %q nor %q", s.IfInProgress, InProgressReject, InProgressEnqueueOne)
	}
	if s.Timeout < 0 {
		bad("timeout %s is negative", s.Timeout.Std())
	}
	if len(s.Targets) == 0 {
		bad("no targets")
	}
	seen := map[string]bool{}
	for _, t := range s.Targets {
		if t.Name == "" {
			bad("a target has no name")
		} else if seen[t.Name] {
			bad("target %q is defined twice", t.Name)
		}
		seen[t.Name] = true
	}
	for _, t := range s.Targets {
		for _, d := range t.DependsOn {
			if !seen[d] {
				bad("target %q depends on unknown target %q", t.Name, d)
			}
		}
		validateSteps(bad, t.Name, "beforeDeployment", t.BeforeDeployment, false)
		validateSteps(bad, t.Name, "afterDeployment", t.AfterDeployment, false)
		switch st := t.Strategy; {
		case st.Canary != nil && st.BlueGreen != nil:
			bad("target %q: strategy is both canary and blueGreen", t.Name)
		case st.Canary != nil:
			validateSteps(bad, t.Name, "canary", st.Canary.Steps, true)
		case st.BlueGreen != nil:
			validateSteps(bad, t.Name, "redirectTrafficAfter", st.BlueGreen.RedirectTrafficAfter, false)
			validateSteps(bad, t.Name, "shutDownOldVersionAfter", st.BlueGreen.ShutDownOldVersionAfter, false)
		}
	}
	switch s.OutsideWindow {
	case "", WindowQueue, WindowRefuse:
	default:
		bad("outsideWindow %q is neither %q nor %q", s.OutsideWindow, WindowQueue, WindowRefuse)
	}
	for i := range s.Windows {
		if err := s.Windows[i].Validate(); err != nil {
			errs = append(errs, err)
		}
		for _, t := range s.Windows[i].Targets {
			if !seen[t] {
				bad("window %q names unknown target %q", s.Windows[i].Name, t)
			}
		}
	}
	if c := s.cycle(); c != nil {
		bad("dependency cycle: %v", c)
	}
	running := 0
	for _, f := range s.TargetFilters {
		if !seen[f] {
			bad("target filter names unknown target %q", f)
		}
	}
	for _, t := range s.Targets {
		if s.runs(t.Name) {
			running++
		}
	}
	if len(s.Targets) > 0 && running == 0 {
		bad("target filters leave no target to run")
	}
	if len(errs) == 0 {
		return nil
	}
	return &Error{Code: CodeInvalid, Message: "invalid spec: " + errors.Join(errs...).Error()}
}

func validateSteps(bad func(string, ...any), target, group string, steps []Step, canary bool) {
	for i, st := range steps {
		where := fmt.Sprintf("target %q %s[%d]", target, group, i)
		n := 0
		for _, set := range []bool{st.SetWeight != nil, st.Pause != nil, st.Analysis != nil, st.RunWebhook != nil, st.ExposeServices != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			bad("%s: a step needs exactly one kind, has %d", where, n)
			continue
		}
		switch {
		case st.SetWeight != nil:
			if !canary {
				bad("%s: setWeight is only a canary step", where)
			}
			if w := st.SetWeight.Weight; w < 0 || w > 100 {
				bad("%s: weight %d is not within 0..100", where, w)
			}
		case st.Pause != nil:
			p := st.Pause
			if p.UntilApproved == (p.Duration > 0) {
				bad("%s: a pause needs exactly one of duration and untilApproved", where)
			}
			if !p.UntilApproved && (len(p.RequiresRoles) > 0 || p.ApprovalExpiration != 0 || len(p.Approvers) > 0 || p.Approvals != 0 || p.NotByStarter) {
				bad("%s: requiresRoles, approvers, approvals, notByStarter and approvalExpiration need untilApproved", where)
			}
			if p.Approvals < 0 || p.Approvals > MaxApprovals {
				bad("%s: approvals must be 1 to %d", where, MaxApprovals)
			}
			if p.ApprovalExpiration < 0 {
				bad("%s: approvalExpiration is negative", where)
			}
		case st.Analysis != nil:
			for _, m := range []string{st.Analysis.RollBackMode, st.Analysis.RollForwardMode} {
				if m != "" && m != ModeAutomatic && m != ModeManual {
					bad("%s: mode %q is neither %q nor %q", where, m, ModeAutomatic, ModeManual)
				}
			}
			switch st.Analysis.Inconclusive {
			case "", InconclusiveWait, InconclusiveRollback, InconclusiveProceed:
			default:
				bad("%s: inconclusive %q is none of %q, %q, %q", where, st.Analysis.Inconclusive, InconclusiveWait, InconclusiveRollback, InconclusiveProceed)
			}
		case st.RunWebhook != nil:
			if st.RunWebhook.Name == "" {
				bad("%s: runWebhook has no name", where)
			}
		}
	}
}

// cycle returns the targets of one dependency cycle, or nil.
func (s *Spec) cycle() []string {
	const (
		unvisited = iota
		visiting
		done
	)
	mark := map[string]int{}
	var stack []string
	var visit func(name string) []string
	visit = func(name string) []string {
		switch mark[name] {
		case visiting:
			i := slices.Index(stack, name)
			return append(slices.Clone(stack[i:]), name)
		case done:
			return nil
		}
		mark[name] = visiting
		stack = append(stack, name)
		if t := s.Target(name); t != nil {
			for _, d := range t.DependsOn {
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		mark[name] = done
		return nil
	}
	for _, t := range s.Targets {
		if c := visit(t.Name); c != nil {
			return c
		}
	}
	return nil
}
