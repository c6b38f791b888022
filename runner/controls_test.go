package runner_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/sqlite"
)

var admin = pipeline.Principal{Name: "root", Roles: []string{pipeline.RoleOrganizationAdmin}}

const canaryHeld = `  c:
    canary:
      steps:
        - setWeight: 25
        - pause: {untilApproved: true}
        - setWeight: 50
        - setWeight: 100`

// A freeze holds a running canary on the real cluster before its next
// setWeight (the approval before it still goes through), refuses new
// starts, and lets a rollback through.
func TestFreezeHoldsACanaryAndARollbackGoesThrough(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if p := e.waitEnd(e.start(e.file("web", e.oneTarget("prod", "c"), canaryHeld, "web:v1", ""))); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first deployment ended %s\n%s", p.Status, dump(p))
	}
	id := e.start(e.file("web", e.oneTarget("prod", "c"), canaryHeld, "web:v2", ""))
	e.waitFor(id, "awaiting approval at 25 %", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })

	if err := e.r.SetFreeze(ctx, admin, store.DefaultTenant, pipeline.Freeze{Scope: pipeline.ApplicationScope("web"), Reason: "incident 4711"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.r.Act(ctx, store.DefaultTenant, id, pipeline.Approve{By: deployer}); err != nil {
		t.Fatal(err)
	}
	p := e.waitFor(id, "held before canary/2", func(p *store.Pipeline) bool {
		return strings.Contains(target(p, "prod").Held, "held before canary/2 by the freeze of application web: incident 4711")
	})
	if st := target(p, "prod").Step("canary/2"); st.Status != pipeline.StatusQueued || len(p.State.Outstanding) != 0 {
		t.Fatalf("canary/2 is %s with %v outstanding, want QUEUED and nothing sent\n%s", st.Status, p.State.Outstanding, dump(p))
	}
	if got := e.images(); got["web:v2"] != 1 || got["web:v1"] != 3 {
		t.Errorf("pods while frozen: %v, want still 1 new and 3 old", got)
	}

	_, err := e.r.Start(ctx, deployer, store.DefaultTenant, e.file("web", e.oneTarget("prod", "c"), canaryHeld, "web:v3", ""))
	if pipeline.ErrorCode(err) != pipeline.CodeConflict || !strings.Contains(err.Error(), "freeze of application web: incident 4711") {
		t.Errorf("a start during the freeze: %v, want a conflict naming the freeze", err)
	}

	if _, err := e.r.Act(ctx, store.DefaultTenant, id, pipeline.Rollback{Target: "prod", By: deployer, Reason: "frozen"}); err != nil {
		t.Fatal(err)
	}
	p = e.waitEnd(id)
	if got := target(p, "prod").Status; got != pipeline.StatusRolledBack {
		t.Fatalf("prod ended %s, want ROLLED_BACK\n%s", got, dump(p))
	}
	if got := e.images(); got["web:v1"] != 4 || len(got) != 1 {
		t.Errorf("pods after the rollback: %v, want 4 on v1", got)
	}
	if got := e.deploymentNames(); len(got) != 1 || got[0] != "web=web:v1" {
		t.Errorf("deployments after the rollback: %v", got)
	}
}

// fakeClock is time the test moves; the timers it hands out fire when
// Advance reaches them. The cluster's own waiting is on real time, and the
// executor's deadlines are the engine's: so the clock starts at the real
// time and only moves forward.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) runner.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// Advance moves the clock to to and fires the timers due by then.
func (c *fakeClock) Advance(to time.Time) {
	c.mu.Lock()
	c.now = to
	var due []*fakeTimer
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool {
		if !t.stopped && !t.at.After(to) {
			due = append(due, t)
			return true
		}
		return t.stopped
	})
	c.mu.Unlock()
	for _, t := range due {
		go t.f()
	}
}

// A start outside a queue-mode window waits, with nothing applied to the
// cluster, and the window opening (the runner's timer at its opening)
// releases it.
func TestWindowOpeningReleasesAQueuedStart(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/sortie.db", sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	y, m, d := now.In(paris).AddDate(0, 0, 1).Date()
	opens := time.Date(y, m, d, 9, 0, 0, 0, paris) // tomorrow 09:00 in Paris
	clock := &fakeClock{now: now}
	e := newEnvClock(t, st, clock)
	ctx := context.Background()
	office := pipeline.Window{Name: "office", Scope: pipeline.TargetScope("prod"), Dates: []string{opens.Format(time.DateOnly)}, Start: "09:00", End: "17:00", TimeZone: "Europe/Paris"}
	if err := e.r.PutWindow(ctx, store.DefaultTenant, office); err != nil {
		t.Fatal(err)
	}
	id := e.start(e.file("web", e.oneTarget("prod", "c"), canaryHeld, "web:v1", ""))
	p, err := e.r.Get(ctx, store.DefaultTenant, id)
	if err != nil {
		t.Fatal(err)
	}
	prod := target(p, "prod")
	if prod.Status != pipeline.StatusQueued || !prod.HeldUntil.Equal(opens) || !p.Wake.Equal(opens) ||
		!strings.Contains(prod.Held, "waiting for deploy window office of target prod") {
		t.Fatalf("prod is %s held %q until %v (wake %v), want QUEUED until %v\n%s", prod.Status, prod.Held, prod.HeldUntil, p.Wake, opens, dump(p))
	}
	if got := e.deploymentNames(); len(got) != 0 {
		t.Fatalf("deployments before the window opens: %v, want none", got)
	}
	// A restart meanwhile: the new runner arms its timer at the stored
	// opening.
	e.r.Close()
	ns := e.ns
	e = newEnvClock(t, st, clock)
	e.ns = ns
	clock.Advance(opens.Add(-time.Minute))
	if got := e.deploymentNames(); len(got) != 0 {
		t.Fatalf("deployments a minute before the window opens: %v, want none", got)
	}
	clock.Advance(opens)
	p = e.waitEnd(id)
	if p.Status != pipeline.StatusSucceeded || !target(p, "prod").StartedAt.Equal(opens) {
		t.Fatalf("pipeline ended %s, prod started %v; want SUCCEEDED, started at %v\n%s", p.Status, target(p, "prod").StartedAt, opens, dump(p))
	}
	if got := e.images(); got["web:v1"] != 4 {
		t.Errorf("pods after the window opened: %v", got)
	}

	// A window of mode refuse refuses the start, naming it, and stores
	// nothing; break glass goes through and is recorded.
	office.Mode = pipeline.WindowRefuse
	if err := e.r.PutWindow(ctx, store.DefaultTenant, office); err != nil {
		t.Fatal(err)
	}
	clock.Advance(opens.Add(10 * time.Hour)) // 19:00 in Paris
	req := e.file("web", e.oneTarget("prod", "c"), canaryHeld, "web:v2", "")
	if _, err := e.r.Start(ctx, deployer, store.DefaultTenant, req); pipeline.ErrorCode(err) != pipeline.CodeConflict || !strings.Contains(err.Error(), "outside deploy window office of target prod") {
		t.Fatalf("start outside a refusing window: %v, want a conflict naming it", err)
	}
	if ps, _ := e.r.List(ctx, store.DefaultTenant, store.Filter{}); len(ps) != 1 {
		t.Errorf("%d pipelines stored after a refused start, want 1", len(ps))
	}
	req.BreakGlass, req.Reason = true, "hotfix"
	oncall := pipeline.Principal{Name: "carol", Roles: []string{pipeline.RoleDeployer, pipeline.RoleBreakGlass}}
	res, err := e.r.Start(ctx, oncall, store.DefaultTenant, req)
	if err != nil {
		t.Fatal(err)
	}
	p = e.waitFor(res.PipelineID, "at 25 %", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })
	if p.State.BreakGlass != "hotfix" || p.State.History[0].Action != "breakGlass" || p.State.History[0].By != "carol" {
		t.Errorf("break glass not recorded: %q %+v", p.State.BreakGlass, p.State.History)
	}
}

// The deployment file's windows are its targets' own.
func TestFileWindowsReachTheSpec(t *testing.T) {
	f, _, err := runner.Load(runner.StartRequest{FileName: "deploy.yml", File: `version: v1
kind: kubernetes
application: web
deploymentConfig:
  outsideDeployWindow: refuse
targets:
  staging: {account: a, namespace: web, strategy: s}
  prod:
    account: a
    namespace: web
    strategy: s
    constraints:
      dependsOn: [staging]
      deployWindows:
        - {name: nightly, start: "22:00", end: "02:00", mode: queue}
strategies:
  s: {canary: {steps: [{setWeight: 100}]}}
manifests:
  - inline: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
`})
	if err != nil {
		t.Fatal(err)
	}
	spec := runner.SpecFrom(f, store.DefaultTenant, nil, nil)
	want := []pipeline.Window{{Name: "nightly", Scope: "the deployment file", Targets: []string{"prod"}, Start: "22:00", End: "02:00", Mode: pipeline.WindowQueue}}
	if diff := cmp.Diff(want, spec.Windows); diff != "" {
		t.Errorf("spec windows (-want +got):\n%s", diff)
	}
	if spec.OutsideWindow != pipeline.WindowRefuse {
		t.Errorf("spec outsideWindow %q, want the file's refuse", spec.OutsideWindow)
	}
	if err := spec.Validate(); err != nil {
		t.Error(err)
	}
}

// A deployment queued behind another (enqueueOne) whose turn comes during
// a freeze is held by it, and goes on when the freeze is lifted.
func TestQueuedStartDuringAFreezeWaitsForItsLifting(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.waitEnd(e.start(e.file("queued", e.oneTarget("t", "c"), canaryHeld, "web:v1", "")))
	first := e.start(e.file("queued", e.oneTarget("t", "c"), canaryHeld, "web:v2", ""))
	e.waitFor(first, "awaiting approval", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })
	q := e.file("queued", e.oneTarget("t", "c"), canaryHeld, "web:v3", "")
	q.File = "deploymentConfig:\n  ifDeploymentInProgress: {strategy: enqueueOne}\n" + q.File
	res, err := e.r.Start(ctx, deployer, store.DefaultTenant, q)
	if err != nil || !res.Queued {
		t.Fatalf("enqueueOne start: %+v, %v", res, err)
	}
	if err := e.r.SetFreeze(ctx, admin, store.DefaultTenant, pipeline.Freeze{Scope: pipeline.TargetScope("t"), Reason: "change freeze"}); err != nil {
		t.Fatal(err)
	}
	// The first pipeline is rolled back through the freeze; the queued one
	// then starts, held.
	if _, err := e.r.Act(ctx, store.DefaultTenant, first, pipeline.Rollback{Target: "t", By: deployer}); err != nil {
		t.Fatal(err)
	}
	if p := e.waitEnd(first); target(p, "t").Status != pipeline.StatusRolledBack {
		t.Fatalf("first ended %s\n%s", target(p, "t").Status, dump(p))
	}
	p := e.waitFor(res.PipelineID, "started and held", func(p *store.Pipeline) bool {
		return p.Status == pipeline.StatusRunning && strings.Contains(target(p, "t").Held, "held by the freeze of target t: change freeze")
	})
	if len(p.State.Outstanding) != 0 || target(p, "t").Status != pipeline.StatusQueued {
		t.Fatalf("the held pipeline sent %v, target %s\n%s", p.State.Outstanding, target(p, "t").Status, dump(p))
	}
	if err := e.r.LiftFreeze(ctx, admin, store.DefaultTenant, pipeline.TargetScope("t")); err != nil {
		t.Fatal(err)
	}
	e.waitFor(res.PipelineID, "at 25 % after the lifting", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })
	if got := e.images(); got["web:v3"] != 1 || got["web:v1"] != 3 {
		t.Errorf("pods: %v, want 1 of v3 and 3 of v1", got)
	}
}

// A break glass does not queue: admission would queue it behind the one in
// flight, where no person would start it.
func TestBreakGlassDoesNotQueue(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.waitEnd(e.start(e.file("glass", e.oneTarget("t", "c"), canaryHeld, "web:v1", "")))
	first := e.start(e.file("glass", e.oneTarget("t", "c"), canaryHeld, "web:v2", ""))
	e.waitFor(first, "awaiting approval", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })
	q := e.file("glass", e.oneTarget("t", "c"), canaryHeld, "web:v3", "")
	q.File = "deploymentConfig:\n  ifDeploymentInProgress: {strategy: enqueueOne}\n" + q.File
	q.BreakGlass, q.Reason = true, "hotfix"
	_, err := e.r.Start(ctx, admin, store.DefaultTenant, q)
	if pipeline.ErrorCode(err) != pipeline.CodeConflict || !strings.Contains(err.Error(), "a break-glass start does not queue") {
		t.Fatalf("break glass behind a deployment in flight: %v, want a conflict", err)
	}
	if ps, _ := e.r.List(ctx, store.DefaultTenant, store.Filter{Application: "glass"}); len(ps) != 2 {
		t.Errorf("%d pipelines stored, want 2 (the refused one is not)", len(ps))
	}
}

// A window an admin sets while a pipeline runs reaches it: prod, not
// started yet, waits for it when staging has succeeded, and starts as soon
// as the admin deletes it. A queued pipeline meets a refusing window set
// while it waited at its start, and is cancelled naming it.
func TestAdminWindowReachesPipelinesInFlightAndQueued(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	closed := pipeline.Window{Name: "tomorrow", Scope: pipeline.TargetScope("prod"), Dates: []string{tomorrow}}
	two := e.oneTarget("staging", "c") + "\n" + e.oneTarget("prod", "s") + "\n    constraints:\n      dependsOn: [staging]"
	strategies := canaryHeld + "\n  s:\n    canary:\n      steps:\n        - setWeight: 100"
	if p := e.waitEnd(e.start(e.file("web", two, strategies, "web:v1", ""))); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first deployment ended %s\n%s", p.Status, dump(p))
	}
	id := e.start(e.file("web", two, strategies, "web:v2", ""))
	e.waitFor(id, "staging awaiting approval", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })
	if err := e.r.PutWindow(ctx, store.DefaultTenant, closed); err != nil {
		t.Fatal(err)
	}
	if _, err := e.r.Act(ctx, store.DefaultTenant, id, pipeline.Approve{By: deployer}); err != nil {
		t.Fatal(err)
	}
	p := e.waitFor(id, "prod held by the window", func(p *store.Pipeline) bool {
		return target(p, "staging").Status == pipeline.StatusSucceeded && strings.Contains(target(p, "prod").Held, "waiting for deploy window tomorrow of target prod")
	})
	if got := target(p, "prod").Status; got != pipeline.StatusQueued {
		t.Fatalf("prod is %s, want QUEUED\n%s", got, dump(p))
	}
	if err := e.r.DeleteWindow(ctx, store.DefaultTenant, closed.Scope, closed.Name); err != nil {
		t.Fatal(err)
	}
	if p := e.waitEnd(id); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("pipeline ended %s after the window was deleted\n%s", p.Status, dump(p))
	}

	first := e.start(e.file("web", e.oneTarget("prod", "c"), canaryHeld, "web:v3", ""))
	e.waitFor(first, "awaiting approval", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })
	q := e.file("web", e.oneTarget("prod", "c"), canaryHeld, "web:v4", "")
	q.File = "deploymentConfig:\n  ifDeploymentInProgress: {strategy: enqueueOne}\n" + q.File
	res, err := e.r.Start(ctx, deployer, store.DefaultTenant, q)
	if err != nil || !res.Queued {
		t.Fatalf("enqueueOne start: %+v, %v", res, err)
	}
	closed.Mode = pipeline.WindowRefuse
	if err := e.r.PutWindow(ctx, store.DefaultTenant, closed); err != nil {
		t.Fatal(err)
	}
	if _, err := e.r.Act(ctx, store.DefaultTenant, first, pipeline.Rollback{Target: "prod", By: deployer}); err != nil {
		t.Fatal(err)
	}
	e.waitEnd(first)
	p = e.waitEnd(res.PipelineID)
	if p.Status != pipeline.StatusCancelled || !strings.Contains(p.State.Message+target(p, "prod").Message, "outside deploy window tomorrow of target prod") {
		t.Fatalf("the queued pipeline ended %s (%s), want CANCELLED naming the window\n%s", p.Status, p.State.Message, dump(p))
	}
	if got := e.images(); got["web:v2"] != 4 || len(got) != 1 {
		t.Errorf("pods: %v, want 4 of v2", got)
	}
}
