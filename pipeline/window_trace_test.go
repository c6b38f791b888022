package pipeline

import (
	"testing"
	"time"
)

// Golden traces of deploy windows, freezes and break-glass starts (issue
// 18); t0 is Sunday 2026-03-01 09:00 UTC.

var officeHours = Window{Name: "office-hours", Scope: "tenant", Days: []string{"mon", "tue", "wed", "thu", "fri"},
	Start: "09:00", End: "17:00", TimeZone: "Europe/Paris"}

var tenantFreeze = Freeze{Scope: "tenant", Reason: "incident 4711"}

var oncall = Principal{Name: "carol", Roles: []string{RoleDeployer, RoleBreakGlass}}

func TestTraceWindowClosedAtStart(t *testing.T) {
	// A queue-mode window closed at the start keeps the target QUEUED, with
	// a wake-up when it opens (Monday 09:00 in Paris, 08:00 UTC).
	s := spec(target("prod", canary(weight(50))))
	s.Windows = []Window{officeHours}
	r := newTrace(t, s)
	r.do(Start{By: ci})
	r.after(time.Hour).do(Tick{}) // still Sunday: nothing happens
	r.tick()
	r.ok("prod", "canary/0", 50)
	r.ok("prod", "finalize")
	r.check("window_closed_at_start", StatusSucceeded)
}

func TestTraceWindowOpeningLater(t *testing.T) {
	// Only prod has a window, which crosses midnight: staging deploys at
	// once, prod waits for 22:00 after staging succeeded.
	s := spec(target("staging", straight), target("prod", canary(weight(50)), "staging"))
	s.Windows = []Window{{Name: "nightly", Scope: "target prod", Targets: []string{"prod"}, Start: "22:00", End: "02:00"}}
	r := newTrace(t, s)
	r.do(Start{By: ci})
	r.ok("staging", "canary/0", 100)
	r.ok("staging", "finalize")
	r.tick()
	r.ok("prod", "canary/0", 50)
	r.ok("prod", "finalize")
	r.check("window_opening_later", StatusSucceeded)
}

func TestTraceFreezeDuringRunningPipeline(t *testing.T) {
	// A freeze holds the canary before its next setWeight; the timed pause
	// still runs out; a rollback goes through the freeze.
	r := newTrace(t, spec(target("prod", canary(weight(25), pause(time.Minute), weight(50)))))
	r.do(Start{By: ci})
	r.do(SetFreeze{Freeze: tenantFreeze, By: admin}) // setWeight 25 in flight: it finishes
	r.ok("prod", "canary/0", 25)
	r.tick() // the pause ends; canary/2 is held
	r.after(time.Hour).do(Tick{})
	r.do(Rollback{Target: "prod", By: alice, Reason: "the freeze is for this"})
	r.ok("prod", "rollback")
	r.check("freeze_running", StatusFailed)
}

func TestTraceFreezeLiftedAndExpired(t *testing.T) {
	// Held at the start (a queued pipeline started during a freeze), let go
	// when the freeze is lifted; held again by a freeze with an end time,
	// let go when it passes.
	r := newTrace(t, spec(target("prod", canary(weight(50), weight(100)))))
	r.do(Start{By: ci, Freezes: []Freeze{tenantFreeze}})
	r.refuse(LiftFreeze{Scope: "application web", By: admin}, CodeNotFound, "it does not hold pipeline p1")
	r.after(time.Minute).do(LiftFreeze{Scope: "tenant", By: admin})
	r.do(SetFreeze{Freeze: Freeze{Scope: "target prod", Targets: []string{"prod"}, Reason: "audit", Until: t0.Add(2 * time.Hour)}, By: admin})
	r.ok("prod", "canary/0", 50)
	r.tick() // the freeze ends
	r.ok("prod", "canary/1", 100)
	r.ok("prod", "finalize")
	r.check("freeze_lifted", StatusSucceeded)
}

func TestTraceBreakGlass(t *testing.T) {
	// A refuse-mode window refuses the start; break glass needs a reason
	// and a role, and then ignores the windows and the freezes in force,
	// but not a freeze set afterwards.
	s := spec(target("staging", straight), target("prod", canary(weight(50)), "staging"))
	w := officeHours
	w.Mode = WindowRefuse
	s.Windows = []Window{w}
	r := newTrace(t, s)
	r.refuse(Start{By: ci}, CodeConflict, "target staging is outside deploy window office-hours of tenant")
	r.refuse(Start{By: oncall, BreakGlass: true}, CodeInvalid, "needs a reason")
	r.refuse(Start{By: alice, BreakGlass: true, Reason: "hotfix"}, CodeForbidden, "alice holds deployer")
	r.do(Start{By: oncall, BreakGlass: true, Reason: "hotfix for incident 4711", Freezes: []Freeze{tenantFreeze}})
	r.ok("staging", "canary/0", 100)
	r.do(SetFreeze{Freeze: Freeze{Scope: "application web", Reason: "stop everything"}, By: admin})
	r.ok("staging", "finalize") // prod is not started
	r.do(LiftFreeze{Scope: "application web", By: admin})
	r.ok("prod", "canary/0", 50)
	r.ok("prod", "finalize")
	r.check("break_glass", StatusSucceeded)
}

func TestTraceWindowChangedByAnAdmin(t *testing.T) {
	// A window an admin adds while the pipeline runs holds prod, not
	// started yet, at its start; deleting it lets prod start at once. A
	// refuse-mode window reaching a queued pipeline refuses its start.
	s := spec(target("staging", straight), target("prod", canary(weight(50)), "staging"))
	prodHours := officeHours
	prodHours.Scope, prodHours.Targets = "target prod", []string{"prod"}
	r := newTrace(t, s)
	r.do(Start{By: ci})
	r.do(SetWindows{Windows: []Window{prodHours}, By: admin})
	r.ok("staging", "canary/0", 100)
	r.ok("staging", "finalize") // prod waits for Monday 08:00 UTC
	r.after(time.Hour).do(SetWindows{By: admin})
	r.ok("prod", "canary/0", 50)
	r.ok("prod", "finalize")
	r.check("window_changed_running", StatusSucceeded)

	refusing := prodHours
	refusing.Mode = WindowRefuse
	q := newTrace(t, spec(target("prod", canary(weight(50)))))
	q.do(SetWindows{Windows: []Window{refusing}, By: admin})
	q.refuse(Start{By: ci}, CodeConflict, "target prod is outside deploy window office-hours of target prod")
	q.refuse(SetWindows{Windows: []Window{{Name: "x", Scope: FileScope}}, By: admin}, CodeInvalid, "claims the deployment file's scope")
}
