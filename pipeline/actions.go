package pipeline

import (
	"fmt"
	"slices"
	"strings"
)

// inFlight refuses an action on a pipeline that is not running.
func (e *engine) inFlight(action string) error {
	switch {
	case e.s.Status == StatusQueued:
		return errorf(CodeConflict, "cannot %s: pipeline %s has not started (it is QUEUED)", action, e.s.ID)
	case e.s.Status.Terminal():
		return errorf(CodeConflict, "cannot %s: pipeline %s has ended (it is %s)", action, e.s.ID, e.s.Status)
	}
	return nil
}

// findStep finds the one step of the pipeline that want accepts, among those
// named by target and step (empty names match any). It refuses with a
// message naming what it found instead.
func (e *engine) findStep(action, target, step string, want func(*StepState) bool, waiting string) (*TargetState, *StepState, error) {
	if err := e.inFlight(action); err != nil {
		return nil, nil, err
	}
	if step != "" && target == "" {
		return nil, nil, errorf(CodeInvalid, "cannot %s: step %s needs a target", action, step)
	}
	if target != "" && e.s.Target(target) == nil {
		return nil, nil, errorf(CodeNotFound, "cannot %s: pipeline %s has no target %q", action, e.s.ID, target)
	}
	var found []string
	var ft *TargetState
	var fs *StepState
	for i := range e.s.Targets {
		t := &e.s.Targets[i]
		if target != "" && t.Name != target {
			continue
		}
		if step != "" {
			st := t.Step(step)
			switch {
			case st == nil:
				return nil, nil, errorf(CodeNotFound, "cannot %s: target %s has no step %q", action, t.Name, step)
			case !want(st):
				return nil, nil, errorf(CodeConflict, "cannot %s: step %s of target %s is %s, not %s", action, step, t.Name, st.Status, waiting)
			}
			return t, st, nil
		}
		for j := range t.Steps {
			if st := &t.Steps[j]; want(st) {
				found = append(found, t.Name+" "+st.ID)
				ft, fs = t, st
			}
		}
	}
	switch len(found) {
	case 0:
		where := "pipeline " + e.s.ID
		if target != "" {
			where = "target " + target
		}
		return nil, nil, errorf(CodeConflict, "cannot %s: nothing in %s is %s", action, where, waiting)
	case 1:
		return ft, fs, nil
	}
	return nil, nil, errorf(CodeConflict, "cannot %s: several steps are %s (%s); name one", action, waiting, strings.Join(found, ", "))
}

func (e *engine) approve(ev Approve) error {
	t, st, err := e.findStep("approve", ev.Target, ev.Step, func(st *StepState) bool {
		return st.Status == StatusAwaitingApproval
	}, "awaiting approval")
	if err != nil {
		return err
	}
	msg := "approved by " + ev.By.Name
	if st.Kind == KindApproval {
		pause := e.s.specStep(t.Name, st).Pause
		if err := e.mayApprove(t, st, pause, ev.By, "approve"); err != nil {
			return err
		}
		if slices.Contains(st.Approvals, ev.By.Name) {
			return errorf(CodeConflict, "cannot approve: %s already approved step %s of target %s; %s from someone else",
				ev.By.Name, st.ID, t.Name, more(pause.approvals()-len(st.Approvals)))
		}
		st.Approvals = append(st.Approvals, ev.By.Name)
		e.record("approve", ev.By, t.Name, st.ID, "")
		if left := pause.approvals() - len(st.Approvals); left > 0 {
			st.Message = "approved by " + strings.Join(st.Approvals, ", ") + "; " + more(left)
			return nil
		}
		e.endStep(st, StatusSucceeded, "approved by "+strings.Join(st.Approvals, ", "))
		st.By = strings.Join(st.Approvals, ", ")
		return nil
	}
	if strings.HasPrefix(st.Message, "analysis failed") {
		msg += " despite the failed analysis"
	}
	e.endStep(st, StatusSucceeded, msg)
	st.By = ev.By.Name
	e.record("approve", ev.By, t.Name, st.ID, "")
	return nil
}

// more says how many approvals a step still needs.
func more(n int) string {
	if n == 1 {
		return "1 more approval needed"
	}
	return fmt.Sprintf("%d more approvals needed", n)
}

// mayApprove checks that by may approve (or reject) the approval step st
// of target t: one of its roles or names, and, with notByStarter, not who
// started the pipeline.
func (e *engine) mayApprove(t *TargetState, st *StepState, pause *Pause, by Principal, action string) error {
	if !by.mayApprove(pause.RequiresRoles, pause.Approvers) {
		var who []string
		if len(pause.RequiresRoles) > 0 {
			who = append(who, "one of the roles "+strings.Join(pause.RequiresRoles, ", "))
		}
		if len(pause.Approvers) > 0 {
			who = append(who, "one of "+strings.Join(pause.Approvers, ", "))
		}
		return errorf(CodeForbidden, "cannot %s: step %s of target %s requires %s; %s holds %s",
			action, st.ID, t.Name, strings.Join(who, " or "), by.Name, rolesText(by.Roles))
	}
	if pause.NotByStarter && action == "approve" && by.Name == e.starter() {
		return errorf(CodeForbidden, "cannot approve: step %s of target %s needs someone other than %s, who started the pipeline",
			st.ID, t.Name, by.Name)
	}
	return nil
}

// starter is who started the pipeline.
func (e *engine) starter() string {
	for _, r := range e.s.History {
		if r.Action == "start" {
			return r.By
		}
	}
	return ""
}

// reject ends a step awaiting approval as refused and rolls its target
// back.
func (e *engine) reject(ev Reject) error {
	if strings.TrimSpace(ev.Reason) == "" {
		return errorf(CodeInvalid, "cannot reject: give a reason")
	}
	t, st, err := e.findStep("reject", ev.Target, ev.Step, func(st *StepState) bool {
		return st.Status == StatusAwaitingApproval
	}, "awaiting approval")
	if err != nil {
		return err
	}
	if st.Kind == KindApproval {
		if err := e.mayApprove(t, st, e.s.specStep(t.Name, st).Pause, ev.By, "reject"); err != nil {
			return err
		}
	}
	reason := "rejected by " + ev.By.Name + ": " + ev.Reason
	e.record("reject", ev.By, t.Name, st.ID, ev.Reason)
	e.endStep(st, StatusFailed, reason)
	st.By = ev.By.Name
	e.stopTarget(t, st.ID+" "+reason, false)
	return nil
}

func rolesText(roles []string) string {
	if len(roles) == 0 {
		return "none"
	}
	return strings.Join(roles, ", ")
}

func (e *engine) skip(ev Skip) error {
	t, st, err := e.findStep("skip", ev.Target, ev.Step, func(st *StepState) bool {
		return st.Kind == KindPause && st.Status == StatusPaused
	}, "a running timed pause")
	if err != nil {
		return err
	}
	e.endStep(st, StatusSucceeded, "skipped by "+ev.By.Name)
	st.By = ev.By.Name
	e.record("skip", ev.By, t.Name, st.ID, "")
	return nil
}

func (e *engine) rollback(ev Rollback) error {
	if err := e.inFlight("roll back"); err != nil {
		return err
	}
	t := e.s.Target(ev.Target)
	switch {
	case t == nil:
		return errorf(CodeNotFound, "cannot roll back: pipeline %s has no target %q", e.s.ID, ev.Target)
	case t.Status == StatusQueued:
		return errorf(CodeConflict, "cannot roll back target %s: it has not started; cancel the pipeline instead", t.Name)
	case t.Status.Terminal():
		return errorf(CodeConflict, "cannot roll back target %s: it has ended (it is %s); redeploy an earlier pipeline to go back", t.Name, t.Status)
	case t.Rollback != nil:
		return errorf(CodeConflict, "cannot roll back target %s: it is already rolling back", t.Name)
	case t.finalized():
		return errorf(CodeConflict, "cannot roll back target %s: the new version is already promoted and afterDeployment is running; redeploy an earlier pipeline to go back", t.Name)
	}
	reason := "rolled back by " + ev.By.Name
	if ev.Reason != "" {
		reason += ": " + ev.Reason
	}
	e.record("rollback", ev.By, t.Name, "", ev.Reason)
	e.stopTarget(t, reason, false)
	return nil
}

func (e *engine) cancel(ev Cancel) error {
	if e.s.Status.Terminal() {
		return errorf(CodeConflict, "cannot cancel: pipeline %s has ended (it is %s)", e.s.ID, e.s.Status)
	}
	if e.s.Cancelling {
		return errorf(CodeConflict, "cannot cancel: pipeline %s is already being cancelled", e.s.ID)
	}
	reason := "cancelled by " + ev.By.Name
	if ev.Reason != "" {
		reason += ": " + ev.Reason
	}
	e.record("cancel", ev.By, "", "", ev.Reason)
	e.s.Cancelling = true
	e.s.Message = reason
	for i := range e.s.Targets {
		t := &e.s.Targets[i]
		switch {
		case t.Status == StatusQueued:
			e.cancelTarget(t, reason)
		case t.Status.Active() && t.Rollback == nil:
			e.stopTarget(t, reason, true)
		}
	}
	if e.s.Status == StatusQueued {
		e.s.Status = StatusCancelled
		e.s.EndedAt = e.now
	}
	return nil
}

func (e *engine) callback(ev WebhookCallback) error {
	t, st := e.byCommand(ev.CommandID)
	if st == nil || st.Kind != KindRunWebhook {
		return errorf(CodeNotFound, "pipeline %s has no webhook call %q", e.s.ID, ev.CommandID)
	}
	if e.s.specStep(t.Name, st).RunWebhook.DisableCallback {
		return errorf(CodeConflict, "webhook step %s of target %s does not take a callback (disableCallback)", st.ID, t.Name)
	}
	if !st.Status.Active() {
		return errorf(CodeConflict, "webhook step %s of target %s has ended (it is %s); the callback comes too late", st.ID, t.Name, st.Status)
	}
	verdict := "success"
	if !ev.Success {
		verdict = "failure"
	}
	e.record("webhookCallback", ev.By, t.Name, st.ID, fmt.Sprintf("%s: %s", verdict, ev.Message))
	// A callback may overtake the report of the call itself.
	e.retire(st.CommandID)
	if ev.Success {
		e.endStep(st, StatusSucceeded, ev.Message)
		return nil
	}
	e.failStep(t, st, "webhook callback reported failure: "+ev.Message)
	return nil
}
