package pipeline

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// State fully describes a pipeline; the store saves it as JSON after every
// transition and the API shows it as the pipeline graph. Nothing outside it
// is needed to resume a pipeline after a restart: deadlines are absolute
// times, and the commands in flight are listed in Outstanding.
type State struct {
	ID      string `json:"id"`
	Spec    Spec   `json:"spec"`
	Status  Status `json:"status"`
	Message string `json:"message,omitempty"`
	// Cancelling is set once a Cancel was accepted: the pipeline ends
	// CANCELLED when its targets have stopped.
	Cancelling bool      `json:"cancelling,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	EndedAt    time.Time `json:"endedAt,omitzero"`
	// Targets holds the targets that run (those TargetFilters let through),
	// in spec order.
	Targets []TargetState `json:"targets"`
	// Outstanding are the commands emitted and not yet answered.
	Outstanding []Command `json:"outstanding,omitempty"`
	// History records every accepted action, with who and when.
	History []Record `json:"history,omitempty"`
	// Freezes are the freezes holding targets of this pipeline.
	Freezes []Freeze `json:"freezes,omitempty"`
	// BreakGlass is the reason of a break-glass start: the pipeline's
	// targets ignore their windows, and the freezes in force when it
	// started.
	BreakGlass string `json:"breakGlass,omitempty"`
}

// TargetState is one target's progress.
type TargetState struct {
	Name      string    `json:"name"`
	Status    Status    `json:"status"`
	Message   string    `json:"message,omitempty"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	EndedAt   time.Time `json:"endedAt,omitzero"`
	// RequestedWeight is the weight last asked of the new version, and
	// AchievedWeight the one the executor reported once pods were Ready.
	RequestedWeight int `json:"requestedWeight"`
	AchievedWeight  int `json:"achievedWeight"`
	// Deployed is set once a deploying command was emitted: from then on a
	// failure needs a rollback command.
	Deployed bool `json:"deployed,omitempty"`
	// Steps are laid out when the pipeline is created, so the graph shows
	// what is to come. Steps of one Stage run in parallel; stages run in
	// order.
	Steps []StepState `json:"steps"`
	// Rollback is set once the target started rolling back.
	Rollback *StepState `json:"rollback,omitempty"`
	// Held says why the target does not go on: a closed window keeps it
	// QUEUED until HeldUntil, a freeze holds it before its next step that
	// changes the cluster.
	Held      string    `json:"held,omitempty"`
	HeldUntil time.Time `json:"heldUntil,omitzero"`
	// WarmUntil, once the target SUCCEEDED with Spec's KeepPrevious, is when
	// the version it replaced, kept warm, is removed.
	WarmUntil time.Time `json:"warmUntil,omitzero"`
}

// StepKind is what a step does.
type StepKind string

// Step kinds: the canary and gate items of the spec, and the strategy's own
// phases.
const (
	KindSetWeight      StepKind = "setWeight"
	KindPause          StepKind = "pause" // timed
	KindApproval       StepKind = "approval"
	KindAnalysis       StepKind = "analysis"
	KindRunWebhook     StepKind = "runWebhook"
	KindExposeServices StepKind = "exposeServices"
	KindDeployPreview  StepKind = "deployPreview"
	KindRedirectActive StepKind = "redirectActive"
	KindFinalize       StepKind = "finalize"
	KindRollback       StepKind = "rollback"
)

// Step groups; a step's ID is its group, followed by "/index" for groups
// that come from a list in the spec.
const (
	GroupBefore         = "beforeDeployment"
	GroupCanary         = "canary"
	GroupDeployPreview  = "deployPreview"
	GroupRedirectAfter  = "redirectTrafficAfter"
	GroupRedirectActive = "redirectActive"
	GroupShutDownAfter  = "shutDownOldVersionAfter"
	GroupFinalize       = "finalize"
	GroupAfter          = "afterDeployment"
	GroupRollback       = "rollback"
)

// StepState is one step's progress.
type StepState struct {
	ID    string   `json:"id"`
	Kind  StepKind `json:"kind"`
	Group string   `json:"group"`
	// Index is the position in the spec's list for Group, -1 for phases.
	Index     int       `json:"index"`
	Stage     int       `json:"stage"`
	Status    Status    `json:"status"`
	Message   string    `json:"message,omitempty"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	EndedAt   time.Time `json:"endedAt,omitzero"`
	// Deadline is when the step ends by itself: a timed pause's end, an
	// approval's expiration, a command's timeout.
	Deadline  time.Time `json:"deadline,omitzero"`
	CommandID string    `json:"commandId,omitempty"`
	// By is who approved (all of them, in order), rejected or skipped the
	// step.
	By string `json:"by,omitempty"`
	// Approvals are who approved an approval step so far, in order.
	Approvals []string `json:"approvals,omitempty"`
	// Called is set on a webhook step whose call was answered and which now
	// waits for its callback.
	Called bool `json:"called,omitempty"`
}

// Record is one accepted action in a pipeline's history.
type Record struct {
	At      time.Time `json:"at"`
	Action  string    `json:"action"`
	By      string    `json:"by,omitempty"`
	Target  string    `json:"target,omitempty"`
	Step    string    `json:"step,omitempty"`
	Message string    `json:"message,omitempty"`
}

// New returns a QUEUED pipeline for spec, with every target and step laid
// out. Send it Start to run it.
func New(id string, spec Spec, now time.Time) (State, error) {
	if id == "" {
		return State{}, errorf(CodeInvalid, "pipeline id is empty")
	}
	if err := spec.Validate(); err != nil {
		return State{}, err
	}
	s := State{ID: id, Spec: spec, Status: StatusQueued, CreatedAt: now}
	for i := range spec.Targets {
		ts := &spec.Targets[i]
		if spec.runs(ts.Name) {
			s.Targets = append(s.Targets, TargetState{Name: ts.Name, Status: StatusQueued, Steps: layout(ts)})
		}
	}
	return s, nil
}

// layout lists the steps of a target in stages.
func layout(ts *TargetSpec) []StepState {
	var steps []StepState
	stage := 0
	add := func(group string, index int, kind StepKind) {
		id := group
		if index >= 0 {
			id += "/" + strconv.Itoa(index)
		}
		steps = append(steps, StepState{ID: id, Kind: kind, Group: group, Index: index, Stage: stage, Status: StatusQueued})
	}
	parallel := func(group string, list []Step) {
		for i, st := range list {
			add(group, i, st.kind())
		}
		if len(list) > 0 {
			stage++
		}
	}
	phase := func(group string, kind StepKind) {
		add(group, -1, kind)
		stage++
	}
	parallel(GroupBefore, ts.BeforeDeployment)
	switch st := ts.Strategy; {
	case ts.FirstDeployment, ts.Restore:
	case st.Canary != nil:
		for i, c := range st.Canary.Steps {
			add(GroupCanary, i, c.kind())
			stage++
		}
	case st.BlueGreen != nil:
		phase(GroupDeployPreview, KindDeployPreview)
		parallel(GroupRedirectAfter, st.BlueGreen.RedirectTrafficAfter)
		phase(GroupRedirectActive, KindRedirectActive)
		parallel(GroupShutDownAfter, st.BlueGreen.ShutDownOldVersionAfter)
	}
	phase(GroupFinalize, KindFinalize)
	parallel(GroupAfter, ts.AfterDeployment)
	return steps
}

func (st Step) kind() StepKind {
	switch {
	case st.SetWeight != nil:
		return KindSetWeight
	case st.Pause != nil && st.Pause.UntilApproved:
		return KindApproval
	case st.Pause != nil:
		return KindPause
	case st.Analysis != nil:
		return KindAnalysis
	case st.RunWebhook != nil:
		return KindRunWebhook
	}
	return KindExposeServices
}

// Wake returns the earliest deadline of a pipeline in flight, or the zero
// time when only an event can move it.
func (s *State) Wake() time.Time {
	var wake time.Time
	if s.Status == StatusQueued || s.Status.Terminal() {
		return wake
	}
	var at func(time.Time)
	consider := func(st *StepState) {
		if st != nil && st.Status.Active() {
			at(st.Deadline)
		}
	}
	at = func(d time.Time) {
		if !d.IsZero() && (wake.IsZero() || d.Before(wake)) {
			wake = d
		}
	}
	for i := range s.Targets {
		t := &s.Targets[i]
		for j := range t.Steps {
			consider(&t.Steps[j])
		}
		consider(t.Rollback)
		if t.Status == StatusQueued {
			at(t.HeldUntil)
		}
	}
	for _, f := range s.Freezes {
		at(f.Until)
	}
	return wake
}

// Target returns the state of the target named name, or nil.
func (s *State) Target(name string) *TargetState {
	for i := range s.Targets {
		if s.Targets[i].Name == name {
			return &s.Targets[i]
		}
	}
	return nil
}

// Step returns the step with the given id, or nil.
func (t *TargetState) Step(id string) *StepState {
	if t.Rollback != nil && t.Rollback.ID == id {
		return t.Rollback
	}
	for i := range t.Steps {
		if t.Steps[i].ID == id {
			return &t.Steps[i]
		}
	}
	return nil
}

// clone returns a deep copy of s, except for Spec and command payloads,
// which the engine never changes.
func (s *State) clone() State {
	n := *s
	n.Targets = slices.Clone(s.Targets)
	for i := range n.Targets {
		t := &n.Targets[i]
		t.Steps = slices.Clone(t.Steps)
		if t.Rollback != nil {
			r := *t.Rollback
			t.Rollback = &r
		}
	}
	n.Outstanding = slices.Clone(s.Outstanding)
	n.History = slices.Clone(s.History)
	n.Freezes = slices.Clone(s.Freezes)
	return n
}

// specStep returns the spec item behind a step laid out from a list.
func (s *State) specStep(target string, st *StepState) Step {
	sp := s.Spec.StepOf(target, *st)
	if sp == nil {
		panic(fmt.Sprintf("pipeline: step %s has no spec item", st.ID))
	}
	return *sp
}

// StepOf is the spec item a step of target runs, or nil for a phase (a
// deploy, a rollback) or a step the spec does not have: the one lookup
// from a step's group and index to what the file said.
func (s *Spec) StepOf(target string, st StepState) *Step {
	ts := s.Target(target)
	if ts == nil {
		return nil
	}
	var list []Step
	switch st.Group {
	case GroupBefore:
		list = ts.BeforeDeployment
	case GroupAfter:
		list = ts.AfterDeployment
	case GroupCanary:
		if ts.Strategy.Canary != nil {
			list = ts.Strategy.Canary.Steps
		}
	case GroupRedirectAfter:
		if ts.Strategy.BlueGreen != nil {
			list = ts.Strategy.BlueGreen.RedirectTrafficAfter
		}
	case GroupShutDownAfter:
		if ts.Strategy.BlueGreen != nil {
			list = ts.Strategy.BlueGreen.ShutDownOldVersionAfter
		}
	}
	if st.Index < 0 || st.Index >= len(list) {
		return nil
	}
	return &list[st.Index]
}
