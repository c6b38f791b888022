package pipeline

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestActionsInEveryState tries every action in every state a pipeline can be
// in: each is accepted where STATES.md allows it and refused with a clear
// message everywhere else.
func TestActionsInEveryState(t *testing.T) {
	sp := spec(target("prod", canary(weight(10), pause(time.Hour), approval(RoleDeployer), analysis(ModeManual, ""), hook("check"))).
		after(hook("after")))
	const hookID = "p1/prod/canary/4"
	ok := func(target, step string) Event {
		return CommandResult{CommandID: "p1/" + target + "/" + step, Success: true, AchievedWeight: 10}
	}
	type path []Event
	start := path{Start{By: ci}}
	paused := append(start, ok("prod", "canary/0"))
	approvalWait := append(paused, Skip{Target: "prod", By: alice})
	analysisWait := append(approvalWait, Approve{Target: "prod", By: alice}, CommandResult{CommandID: "p1/prod/canary/3", Message: "error-ratio too high"})
	callbackWait := append(analysisWait, Approve{Target: "prod", By: alice}, ok("prod", "canary/4"))
	after := append(callbackWait, WebhookCallback{CommandID: hookID, Success: true}, ok("prod", "finalize"))
	succeeded := append(after, ok("prod", "afterDeployment/0"), WebhookCallback{CommandID: "p1/prod/afterDeployment/0", Success: true})
	rollingBack := append(paused, Rollback{Target: "prod", By: alice})
	rolledBack := append(rollingBack, ok("prod", "rollback"))
	cancelling := append(paused, Cancel{By: alice})
	cancelled := append(cancelling, ok("prod", "rollback"))

	states := []struct {
		name   string
		path   path
		status Status
	}{
		{"queued", nil, StatusQueued},
		{"running", start, StatusRunning},
		{"paused", paused, StatusPaused},
		{"awaiting approval", approvalWait, StatusAwaitingApproval},
		{"awaiting analysis decision", analysisWait, StatusAwaitingApproval},
		{"awaiting webhook callback", callbackWait, StatusRunning},
		{"after deployment", after, StatusRunning},
		{"rolling back", rollingBack, StatusRunning},
		{"cancelling", cancelling, StatusRunning},
		{"succeeded", succeeded, StatusSucceeded},
		{"rolled back", rolledBack, StatusFailed},
		{"cancelled", cancelled, StatusCancelled},
	}
	actions := []struct {
		name string
		ev   Event
	}{
		{"start", Start{By: ci}},
		{"approve", Approve{Target: "prod", By: alice}},
		{"skip", Skip{Target: "prod", By: alice}},
		{"rollback", Rollback{Target: "prod", By: alice}},
		{"cancel", Cancel{By: alice}},
		{"callback", WebhookCallback{CommandID: hookID, Success: true, By: webhook}},
		{"tick", Tick{}},
		{"stale result", CommandResult{CommandID: "p1/prod/canary/9", Success: true}},
	}
	const allowed = "allowed"
	// want[state][action]: allowed, or "code: part of the message".
	want := map[string]map[string]string{
		"queued": {"start": allowed, "approve": "conflict: cannot approve: pipeline p1 has not started", "skip": "conflict: cannot skip: pipeline p1 has not started",
			"rollback": "conflict: cannot roll back: pipeline p1 has not started", "cancel": allowed, "callback": `not_found: no webhook call "p1/prod/canary/4"`},
		"running": {"start": "conflict: has already started (it is RUNNING)", "approve": "conflict: nothing in target prod is awaiting approval",
			"skip": "conflict: nothing in target prod is a running timed pause", "rollback": allowed, "cancel": allowed, "callback": "not_found: no webhook call"},
		"paused": {"start": "conflict: already started (it is PAUSED)", "approve": "conflict: nothing in target prod is awaiting approval",
			"skip": allowed, "rollback": allowed, "cancel": allowed, "callback": "not_found: no webhook call"},
		"awaiting approval": {"start": "conflict: already started", "approve": allowed, "skip": "conflict: nothing in target prod is a running timed pause",
			"rollback": allowed, "cancel": allowed, "callback": "not_found: no webhook call"},
		"awaiting analysis decision": {"start": "conflict: already started", "approve": allowed, "skip": "conflict: nothing in target prod is a running timed pause",
			"rollback": allowed, "cancel": allowed, "callback": "not_found: no webhook call"},
		"awaiting webhook callback": {"start": "conflict: already started", "approve": "conflict: nothing in target prod is awaiting approval",
			"skip": "conflict: nothing in target prod is a running timed pause", "rollback": allowed, "cancel": allowed, "callback": allowed},
		"after deployment": {"start": "conflict: already started", "approve": "conflict: nothing in target prod is awaiting approval",
			"skip": "conflict: nothing in target prod is a running timed pause", "rollback": "conflict: the new version is already promoted",
			"cancel": allowed, "callback": "conflict: webhook step canary/4 of target prod has ended (it is SUCCEEDED)"},
		"rolling back": {"start": "conflict: already started", "approve": "conflict: nothing in target prod is awaiting approval",
			"skip": "conflict: nothing in target prod is a running timed pause", "rollback": "conflict: it is already rolling back",
			"cancel": allowed, "callback": "not_found: no webhook call"},
		"cancelling": {"start": "conflict: already started", "approve": "conflict: nothing in target prod is awaiting approval",
			"skip": "conflict: nothing in target prod is a running timed pause", "rollback": "conflict: it is already rolling back",
			"cancel": "conflict: already being cancelled", "callback": "not_found: no webhook call"},
		"succeeded": {"start": "conflict: already started (it is SUCCEEDED)", "approve": "conflict: cannot approve: pipeline p1 has ended (it is SUCCEEDED)",
			"skip": "conflict: cannot skip: pipeline p1 has ended", "rollback": "conflict: cannot roll back: pipeline p1 has ended",
			"cancel": "conflict: cannot cancel: pipeline p1 has ended (it is SUCCEEDED)", "callback": "conflict: has ended (it is SUCCEEDED)"},
		"rolled back": {"start": "conflict: already started (it is FAILED)", "approve": "conflict: pipeline p1 has ended (it is FAILED)",
			"skip": "conflict: pipeline p1 has ended", "rollback": "conflict: pipeline p1 has ended", "cancel": "conflict: pipeline p1 has ended",
			"callback": "not_found: no webhook call"},
		"cancelled": {"start": "conflict: already started (it is CANCELLED)", "approve": "conflict: pipeline p1 has ended (it is CANCELLED)",
			"skip": "conflict: pipeline p1 has ended", "rollback": "conflict: pipeline p1 has ended", "cancel": "conflict: pipeline p1 has ended",
			"callback": "not_found: no webhook call"},
	}
	for _, st := range states {
		s := drive(t, sp, st.path)
		if s.Status != st.status {
			t.Fatalf("state %q: pipeline is %s, want %s", st.name, s.Status, st.status)
		}
		for _, a := range actions {
			t.Run(st.name+"/"+a.name, func(t *testing.T) {
				w, listed := want[st.name][a.name]
				if !listed {
					w = allowed // Tick and stale results are harmless everywhere
				}
				next, _, _, err := Transition(s, a.ev, t0.Add(time.Minute))
				if w == allowed {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					if _, isAction := a.ev.(Tick); !isAction && len(next.History) == len(s.History) && !isResult(a.ev) {
						t.Errorf("accepted action not recorded in the history")
					}
					return
				}
				code, msg, _ := strings.Cut(w, ": ")
				if err == nil {
					t.Fatalf("accepted, want refusal %q", w)
				}
				if got := string(ErrorCode(err)); got != code || !strings.Contains(err.Error(), msg) {
					t.Errorf("refused with %s: %q, want %s: ...%q...", got, err, code, msg)
				}
			})
		}
	}
}

func isResult(ev Event) bool { _, ok := ev.(CommandResult); return ok }

// drive builds the state reached by sending path to a new pipeline of sp,
// one event per second of fake time.
func drive(t testing.TB, sp Spec, path []Event) State {
	t.Helper()
	s, err := New("p1", sp, t0)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range path {
		if s, _, _, err = Transition(s, ev, t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatalf("event %d %s: %v", i, fmt.Sprintf("%T", ev), err)
		}
	}
	return s
}

func TestApproveChoosesTheOnlyCandidate(t *testing.T) {
	sp := spec(target("a", canary(weight(10), approval())), target("b", straight).before(approval("Release Manager"), approval()))
	s := drive(t, sp, []Event{Start{By: ci}, CommandResult{CommandID: "p1/a/canary/0", Success: true}})
	for _, tc := range []struct {
		ev   Approve
		code Code
		want string
	}{
		{Approve{By: alice}, CodeConflict, "several steps are awaiting approval (a canary/1, b beforeDeployment/0, b beforeDeployment/1); name one"},
		{Approve{Target: "b", By: alice}, CodeConflict, "several steps are awaiting approval (b beforeDeployment/0, b beforeDeployment/1)"},
		{Approve{Step: "canary/1", By: alice}, CodeInvalid, "cannot approve: step canary/1 needs a target"},
		{Approve{Target: "c", By: alice}, CodeNotFound, `pipeline p1 has no target "c"`},
		{Approve{Target: "b", Step: "canary/7", By: alice}, CodeNotFound, `target b has no step "canary/7"`},
		{Approve{Target: "b", Step: "canary/0", By: alice}, CodeConflict, "step canary/0 of target b is QUEUED, not awaiting approval"},
		{Approve{Target: "b", Step: "beforeDeployment/0", By: Principal{Name: "eve"}}, CodeForbidden, "requires one of the roles Release Manager; eve holds none"},
		{Approve{Target: "b", Step: "beforeDeployment/0", By: bob}, "", ""},
		{Approve{Target: "b", Step: "beforeDeployment/0", By: Principal{Name: "ta", Roles: []string{RoleTenantAdmin}}}, "", ""},
		{Approve{Target: "a", By: Principal{Name: "v", Roles: []string{RoleViewer}}}, "", ""},
	} {
		_, _, _, err := Transition(s, tc.ev, t0)
		if ErrorCode(err) != tc.code || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: got %v (%q), want %q %q", tc.ev, err, ErrorCode(err), tc.code, tc.want)
		}
	}
}
