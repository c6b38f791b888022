package pipeline

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Transition is the engine: it returns the state that follows s when ev
// happens at now, the commands adapters must now execute, and the time at
// which to send Tick (zero when only an event can move the pipeline).
//
// Deadlines due at now fire first, whatever the event. An action refused in
// this state returns s unchanged, no commands and an *Error saying why. s is
// never modified.
func Transition(s State, ev Event, now time.Time) (State, []Command, time.Time, error) {
	n := s.clone()
	e := &engine{s: &n, now: now}
	e.expire()
	if err := e.apply(ev); err != nil {
		return s, nil, s.Wake(), err
	}
	e.advance()
	return n, e.cmds, n.Wake(), nil
}

type engine struct {
	s    *State
	now  time.Time
	cmds []Command
}

func (e *engine) apply(ev Event) error {
	switch ev := ev.(type) {
	case Start:
		return e.start(ev)
	case Tick:
		return nil
	case SetFreeze:
		return e.setFreeze(ev)
	case LiftFreeze:
		return e.liftFreeze(ev)
	case SetWindows:
		return e.setWindows(ev)
	case CommandResult:
		e.result(ev)
		return nil
	case Approve:
		return e.approve(ev)
	case Reject:
		return e.reject(ev)
	case Skip:
		return e.skip(ev)
	case Rollback:
		return e.rollback(ev)
	case Cancel:
		return e.cancel(ev)
	case WebhookCallback:
		return e.callback(ev)
	}
	return errorf(CodeInvalid, "unknown event %T", ev)
}

func (e *engine) record(action string, by Principal, target, step, msg string) {
	e.s.History = append(e.s.History, Record{At: e.now, Action: action, By: by.Name, Target: target, Step: step, Message: msg})
}

// expire fires every deadline due at e.now.
func (e *engine) expire() {
	if e.s.Status == StatusQueued || e.s.Status.Terminal() {
		return
	}
	e.s.Freezes = slices.DeleteFunc(e.s.Freezes, func(f Freeze) bool {
		if due(f.Until, e.now) {
			e.record("freezeEnded", Principal{}, "", "", f.Scope)
			return true
		}
		return false
	})
	for i := range e.s.Targets {
		t := &e.s.Targets[i]
		if r := t.Rollback; r != nil {
			if r.Status.Active() && due(r.Deadline, e.now) {
				e.retire(r.CommandID)
				e.endStep(r, StatusFailed, fmt.Sprintf("not done within %s", e.s.Spec.timeout()))
				e.endTarget(t, StatusFailed, t.failure()+"; rollback did not finish within "+e.s.Spec.timeout().String())
			}
			continue
		}
		for j := range t.Steps {
			st := &t.Steps[j]
			if !st.Status.Active() || !due(st.Deadline, e.now) {
				continue
			}
			d := st.Deadline.Sub(st.StartedAt)
			switch st.Kind {
			case KindPause:
				e.endStep(st, StatusSucceeded, fmt.Sprintf("pause of %s ended", d))
			case KindApproval:
				e.failStep(t, st, fmt.Sprintf("approval expired after %s", d))
			case KindRunWebhook:
				what := "answer"
				if st.Called {
					what = "callback"
				}
				e.failStep(t, st, fmt.Sprintf("no webhook %s within %s", what, d))
			case KindSetWeight, KindDeployPreview, KindFinalize:
				e.failStep(t, st, fmt.Sprintf("pods not Ready within %s", d))
			default:
				e.failStep(t, st, fmt.Sprintf("no result within %s", d))
			}
		}
	}
}

func due(deadline, now time.Time) bool { return !deadline.IsZero() && !deadline.After(now) }

// advance starts whatever became runnable and settles statuses, until
// nothing changes.
func (e *engine) advance() {
	s := e.s
	if s.Status == StatusQueued || s.Status.Terminal() {
		return
	}
	for changed := true; changed; {
		changed = false
		for i := range s.Targets {
			t := &s.Targets[i]
			switch {
			case t.Status == StatusQueued:
				changed = e.startTarget(t) || changed
			case t.Status.Active() && t.Rollback == nil:
				changed = e.progress(t) || changed
			}
		}
	}
	for i := range s.Targets {
		if t := &s.Targets[i]; t.Status.Active() && t.Rollback == nil {
			t.Status = summarize(t.Steps, func(st *StepState) Status { return st.Status })
		}
	}
	if !slices.ContainsFunc(s.Targets, func(t TargetState) bool { return !t.Status.Terminal() }) {
		e.endPipeline()
		return
	}
	s.Status = summarize(s.Targets, func(t *TargetState) Status { return t.Status })
}

// summarize is the status of a holder of items: AWAITING_APPROVAL when any
// active item awaits a person, PAUSED when every active item is paused,
// RUNNING otherwise.
func summarize[T any](items []T, status func(*T) Status) Status {
	active, paused := 0, 0
	for i := range items {
		switch status(&items[i]) {
		case StatusAwaitingApproval:
			return StatusAwaitingApproval
		case StatusPaused:
			paused++
			active++
		case StatusRunning:
			active++
		}
	}
	if active > 0 && paused == active {
		return StatusPaused
	}
	return StatusRunning
}

func (e *engine) endPipeline() {
	s := e.s
	var failed []string
	for _, t := range s.Targets {
		if t.Status != StatusSucceeded {
			failed = append(failed, fmt.Sprintf("%s %s", t.Name, t.Status))
		}
	}
	switch {
	case s.Cancelling:
		s.Status = StatusCancelled
	case len(failed) == 0:
		s.Status = StatusSucceeded
	default:
		s.Status = StatusFailed
	}
	if !s.Cancelling && len(failed) > 0 {
		s.Message = "not succeeded: " + strings.Join(failed, ", ")
	}
	s.EndedAt = e.now
}

// startTarget starts a QUEUED target whose dependencies all succeeded, or
// cancels it when one of them will not.
func (e *engine) startTarget(t *TargetState) bool {
	ready := true
	for _, d := range e.s.Spec.Target(t.Name).DependsOn {
		dt := e.s.Target(d)
		switch {
		case dt == nil: // filtered out: satisfied
		case dt.Rollback != nil || (dt.Status.Terminal() && dt.Status != StatusSucceeded):
			e.cancelTarget(t, fmt.Sprintf("not started: dependency %s %s", d, outcome(dt)))
			return true
		case dt.Status != StatusSucceeded:
			ready = false
		}
	}
	if !ready {
		return false
	}
	if e.s.BreakGlass == "" {
		if w, opens := closedWindow(e.s.Spec.Windows, t.Name, e.now); w != nil {
			if e.s.Spec.mode(w) == WindowRefuse {
				e.cancelTarget(t, fmt.Sprintf("not started: outside %s; %s", w, opensText(w, opens)))
				return true
			}
			t.Held, t.HeldUntil = fmt.Sprintf("waiting for %s; %s", w, opensText(w, opens)), opens
			return false
		}
	}
	if f := e.s.frozen(t.Name); f != nil {
		t.Held, t.HeldUntil = "not started: held by the "+f.String(), time.Time{}
		return false
	}
	t.Held, t.HeldUntil = "", time.Time{}
	t.Status = StatusRunning
	t.StartedAt = e.now
	return true
}

func outcome(t *TargetState) string {
	if t.Rollback != nil && !t.Status.Terminal() {
		return "is rolling back"
	}
	return "ended " + string(t.Status)
}

// progress starts the next stage of a running target, or ends it SUCCEEDED
// after its last stage.
func (e *engine) progress(t *TargetState) bool {
	stage := -1
	for _, st := range t.Steps {
		if st.Status != StatusSucceeded {
			stage = st.Stage
			break
		}
	}
	if stage < 0 {
		e.endTarget(t, StatusSucceeded, "")
		return true
	}
	changed := false
	f := e.s.frozen(t.Name)
	t.Held = ""
	for i := range t.Steps {
		if st := &t.Steps[i]; st.Stage == stage && st.Status == StatusQueued {
			if f != nil && st.Kind.changesCluster() {
				t.Held = "held before " + st.ID + " by the " + f.String()
				continue
			}
			e.startStep(t, st)
			changed = true
		}
	}
	return changed
}

func (e *engine) startStep(t *TargetState, st *StepState) {
	timeout := e.s.Spec.timeout()
	st.Status = StatusRunning
	st.StartedAt = e.now
	switch st.Kind {
	case KindSetWeight:
		w := e.s.specStep(t.Name, st).SetWeight.Weight
		t.RequestedWeight, t.Deployed = w, true
		e.emit(t, st, Command{Kind: CmdSetWeight, Weight: w}, timeout)
	case KindDeployPreview:
		t.Deployed = true
		e.emit(t, st, Command{Kind: CmdDeployPreview}, timeout)
	case KindRedirectActive:
		t.RequestedWeight = 100
		e.emit(t, st, Command{Kind: CmdRedirectActive}, timeout)
	case KindFinalize:
		t.RequestedWeight, t.Deployed = 100, true
		e.emit(t, st, Command{Kind: CmdFinalize}, timeout)
	case KindPause:
		p := e.s.specStep(t.Name, st).Pause
		st.Status = StatusPaused
		st.Deadline = e.now.Add(p.Duration.Std())
	case KindApproval:
		p := e.s.specStep(t.Name, st).Pause
		st.Status = StatusAwaitingApproval
		st.Message = "waiting for approval"
		if len(p.RequiresRoles) > 0 {
			st.Message += " by a holder of " + strings.Join(p.RequiresRoles, " or ")
		}
		if p.ApprovalExpiration > 0 {
			st.Deadline = e.now.Add(p.ApprovalExpiration.Std())
		}
	case KindAnalysis:
		a := e.s.specStep(t.Name, st).Analysis
		e.emit(t, st, Command{Kind: CmdRunAnalysis, Params: a.Params}, 0)
	case KindRunWebhook:
		w := e.s.specStep(t.Name, st).RunWebhook
		d := timeout
		if w.CallbackTimeout > 0 {
			d = w.CallbackTimeout.Std()
		}
		e.emit(t, st, Command{Kind: CmdCallWebhook, Webhook: w.Name, Context: w.Context}, d)
	case KindExposeServices:
		x := e.s.specStep(t.Name, st).ExposeServices
		e.emit(t, st, Command{Kind: CmdExposeServices, Params: x.Params}, timeout)
	}
}

// emit issues c for step st of t; a positive timeout sets st's deadline.
func (e *engine) emit(t *TargetState, st *StepState, c Command, timeout time.Duration) {
	ts := e.s.Spec.Target(t.Name)
	c.ID = e.s.ID + "/" + t.Name + "/" + st.ID
	c.Pipeline, c.Target, c.Step = e.s.ID, t.Name, st.ID
	c.Account, c.Namespace = ts.Account, ts.Namespace
	st.CommandID = c.ID
	if timeout > 0 {
		st.Deadline = e.now.Add(timeout)
	}
	e.s.Outstanding = append(e.s.Outstanding, c)
	e.cmds = append(e.cmds, c)
}

// retire forgets the outstanding command id, reporting whether it was.
func (e *engine) retire(id string) bool {
	i := slices.IndexFunc(e.s.Outstanding, func(c Command) bool { return c.ID == id })
	if i < 0 {
		return false
	}
	e.s.Outstanding = slices.Delete(e.s.Outstanding, i, i+1)
	return true
}

func (e *engine) endStep(st *StepState, status Status, msg string) {
	st.Status = status
	st.EndedAt = e.now
	st.Deadline = time.Time{}
	if msg != "" {
		st.Message = msg
	}
}

func (e *engine) endTarget(t *TargetState, status Status, msg string) {
	t.Held, t.HeldUntil = "", time.Time{}
	t.Status = status
	t.EndedAt = e.now
	t.Message = msg
	if ts := e.s.Spec.Target(t.Name); status == StatusSucceeded && ts != nil && ts.KeepPrevious != nil && !ts.Restore && !ts.FirstDeployment {
		t.WarmUntil = e.now.Add(time.Duration(ts.KeepPrevious.For))
	}
}

// cancelTarget ends a target that has not started CANCELLED.
func (e *engine) cancelTarget(t *TargetState, msg string) {
	for i := range t.Steps {
		e.endStep(&t.Steps[i], StatusCancelled, "")
	}
	e.endTarget(t, StatusCancelled, msg)
}

const rollingBack = "rolling back: "

// failure is why a rolling-back target is rolling back.
func (t *TargetState) failure() string { return strings.TrimPrefix(t.Message, rollingBack) }

// failStep fails st and with it its target.
func (e *engine) failStep(t *TargetState, st *StepState, msg string) {
	e.retire(st.CommandID)
	e.endStep(st, StatusFailed, msg)
	e.stopTarget(t, fmt.Sprintf("%s failed: %s", st.ID, msg), false)
}

// stopTarget stops a running target: its unfinished steps are CANCELLED and,
// unless it is past its strategy, what it deployed is rolled back. A target
// that deployed nothing yet ends ROLLED_BACK at once (CANCELLED when
// cancelled), one past its strategy FAILED (CANCELLED). Dependants notice in
// advance.
func (e *engine) stopTarget(t *TargetState, reason string, cancel bool) {
	after := t.finalized()
	t.Held = "" // a rollback is never held
	for i := range t.Steps {
		if st := &t.Steps[i]; !st.Status.Terminal() {
			e.retire(st.CommandID)
			e.endStep(st, StatusCancelled, "")
		}
	}
	switch {
	case cancel && (after || !t.Deployed):
		e.endTarget(t, StatusCancelled, reason)
	case after:
		e.endTarget(t, StatusFailed, reason)
	case !t.Deployed:
		e.endTarget(t, StatusRolledBack, reason+" (nothing was deployed)")
	default:
		t.Status = StatusRunning
		t.Message = rollingBack + reason
		t.Rollback = &StepState{ID: GroupRollback, Kind: KindRollback, Group: GroupRollback, Index: -1, Status: StatusRunning, StartedAt: e.now}
		e.emit(t, t.Rollback, Command{Kind: CmdRollback}, e.s.Spec.timeout())
	}
}

func (e *engine) start(ev Start) error {
	if e.s.Status != StatusQueued {
		return errorf(CodeConflict, "pipeline %s has already started (it is %s)", e.s.ID, e.s.Status)
	}
	if ev.BreakGlass {
		switch {
		case ev.Reason == "":
			return errorf(CodeInvalid, "cannot break glass: a break-glass start needs a reason")
		case !ev.By.mayBreakGlass():
			return errorf(CodeForbidden, "cannot break glass: it needs one of the roles %s, %s, %s; %s holds %s",
				RoleOrganizationAdmin, RoleTenantAdmin, RoleBreakGlass, ev.By.Name, rolesText(ev.By.Roles))
		}
	} else if err := e.refusedByWindow(); err != nil {
		return err
	}
	e.s.Status = StatusRunning
	e.s.StartedAt = e.now
	if ev.BreakGlass {
		e.s.BreakGlass = ev.Reason
		e.record("breakGlass", ev.By, "", "", ev.Reason)
	} else {
		e.s.Freezes = append(e.s.Freezes, ev.Freezes...)
	}
	e.record("start", ev.By, "", "", "")
	return nil
}

// refusedByWindow refuses a start when a target that would start at once is
// outside a window of mode refuse.
func (e *engine) refusedByWindow() error {
	var refusing []Window
	for _, w := range e.s.Spec.Windows {
		if e.s.Spec.mode(&w) == WindowRefuse {
			refusing = append(refusing, w)
		}
	}
	for i := range e.s.Targets {
		t := &e.s.Targets[i]
		first := !slices.ContainsFunc(e.s.Spec.Target(t.Name).DependsOn, func(d string) bool { return e.s.Target(d) != nil })
		if !first {
			continue
		}
		if w, opens := closedWindow(refusing, t.Name, e.now); w != nil {
			return &Error{Code: CodeConflict, Hold: w.String(), Message: fmt.Sprintf("cannot start: target %s is outside %s; %s. A holder of %s, %s or %s may start it anyway (break glass) with a reason",
				t.Name, w, opensText(w, opens), RoleOrganizationAdmin, RoleTenantAdmin, RoleBreakGlass)}
		}
	}
	return nil
}

func (e *engine) setFreeze(ev SetFreeze) error {
	if e.s.Status.Terminal() {
		return errorf(CodeConflict, "cannot freeze: pipeline %s has ended (it is %s)", e.s.ID, e.s.Status)
	}
	f := ev.Freeze
	if f.Scope == "" {
		return errorf(CodeInvalid, "cannot freeze: the freeze has no scope")
	}
	f.By = ev.By.Name
	e.s.Freezes = slices.DeleteFunc(e.s.Freezes, func(o Freeze) bool { return o.Scope == f.Scope })
	e.s.Freezes = append(e.s.Freezes, f)
	e.record("freeze", ev.By, "", "", f.String())
	return nil
}

func (e *engine) setWindows(ev SetWindows) error {
	if e.s.Status.Terminal() {
		return errorf(CodeConflict, "cannot change its windows: pipeline %s has ended (it is %s)", e.s.ID, e.s.Status)
	}
	if e.s.Spec.Restores != "" {
		return nil // a rollback is never held by a window
	}
	for i := range ev.Windows {
		if ev.Windows[i].Scope == FileScope {
			return errorf(CodeInvalid, "cannot change the windows: window %q claims the deployment file's scope", ev.Windows[i].Name)
		}
		if err := ev.Windows[i].Validate(); err != nil {
			return err
		}
	}
	old := e.s.Spec.Windows
	kept := slices.DeleteFunc(slices.Clone(old), func(w Window) bool { return w.Scope != FileScope })
	next := append(kept, ev.Windows...)
	if slices.EqualFunc(old, next, func(a, b Window) bool {
		return a.String() == b.String() && slices.Equal(a.Targets, b.Targets) && a.Mode == b.Mode
	}) {
		return nil
	}
	e.s.Spec.Windows = next
	names := make([]string, 0, len(ev.Windows))
	for _, w := range ev.Windows {
		names = append(names, w.String())
	}
	msg := "no window set by an admin applies"
	if len(names) > 0 {
		msg = strings.Join(names, "; ")
	}
	e.record("windows", ev.By, "", "", msg)
	return nil
}

func (e *engine) liftFreeze(ev LiftFreeze) error {
	i := slices.IndexFunc(e.s.Freezes, func(f Freeze) bool { return f.Scope == ev.Scope })
	if i < 0 {
		return errorf(CodeNotFound, "cannot lift the freeze of %s: it does not hold pipeline %s", ev.Scope, e.s.ID)
	}
	e.s.Freezes = slices.Delete(e.s.Freezes, i, i+1)
	e.record("unfreeze", ev.By, "", "", ev.Scope)
	return nil
}

func (e *engine) result(ev CommandResult) {
	if !e.retire(ev.CommandID) {
		return
	}
	t, st := e.byCommand(ev.CommandID)
	if st == nil || !st.Status.Active() {
		return
	}
	if st.Kind == KindRollback {
		if ev.Success {
			e.endStep(st, StatusSucceeded, ev.Message)
			e.endTarget(t, StatusRolledBack, t.failure())
			t.RequestedWeight, t.AchievedWeight = 0, 0
		} else {
			e.endStep(st, StatusFailed, ev.Message)
			e.endTarget(t, StatusFailed, t.failure()+"; rollback failed: "+ev.Message)
		}
		return
	}
	switch st.Kind {
	case KindRunWebhook:
		w := e.s.specStep(t.Name, st).RunWebhook
		switch {
		case !ev.Success:
			e.failStep(t, st, "webhook "+w.Name+": "+ev.Message)
		case w.DisableCallback:
			e.endStep(st, StatusSucceeded, ev.Message)
		default:
			st.Called = true
			st.Message = "waiting for the callback"
		}
	case KindAnalysis:
		e.analysisResult(t, st, e.s.specStep(t.Name, st).Analysis, ev)
	default:
		if !ev.Success {
			e.failStep(t, st, ev.Message)
			return
		}
		switch st.Kind {
		case KindSetWeight:
			t.AchievedWeight = ev.AchievedWeight
		case KindFinalize, KindRedirectActive:
			t.AchievedWeight = 100
		}
		e.endStep(st, StatusSucceeded, ev.Message)
	}
}

// analysisResult settles an analysis step by its verdict and modes. An
// inconclusive verdict is neither a pass nor a failure: rollBackMode does
// not apply to it, the step's inconclusive setting does (default: wait for
// a person).
func (e *engine) analysisResult(t *TargetState, st *StepState, a *Analysis, ev CommandResult) {
	passed, verdict, msg := ev.Success, "passed", ev.Message
	if ev.Inconclusive {
		switch a.Inconclusive {
		case InconclusiveRollback:
			e.failStep(t, st, "analysis inconclusive: "+msg)
			return
		case InconclusiveProceed:
			passed, verdict = true, "inconclusive, taken as passed (inconclusive: proceed)"
			msg = "analysis " + verdict + ": " + msg
		default:
			st.Status = StatusAwaitingApproval
			st.Message = "analysis inconclusive; approve to go on, or roll back: " + msg
			return
		}
	}
	switch {
	case passed && a.RollForwardMode == ModeManual:
		st.Status = StatusAwaitingApproval
		st.Message = "analysis " + verdict + "; approve to go on: " + ev.Message
	case passed:
		e.endStep(st, StatusSucceeded, msg)
	case a.RollBackMode == ModeManual:
		st.Status = StatusAwaitingApproval
		st.Message = "analysis failed; roll back, or approve to go on anyway: " + msg
	default:
		e.failStep(t, st, "analysis: "+msg)
	}
}

// byCommand finds the step that emitted command id.
func (e *engine) byCommand(id string) (*TargetState, *StepState) {
	for i := range e.s.Targets {
		t := &e.s.Targets[i]
		if t.Rollback != nil && t.Rollback.CommandID == id {
			return t, t.Rollback
		}
		for j := range t.Steps {
			if t.Steps[j].CommandID == id {
				return t, &t.Steps[j]
			}
		}
	}
	return nil, nil
}

// finalized reports whether t's strategy is over: from then on the new
// version is the user's Deployment and there is nothing to roll back to.
func (t *TargetState) finalized() bool {
	st := t.Step(GroupFinalize)
	return st != nil && st.Status == StatusSucceeded
}
