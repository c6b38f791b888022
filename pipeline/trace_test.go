package pipeline

import (
	"testing"
	"time"
)

// The traces below walk every transition of STATES.md; each is compared
// with testdata/<name>.golden (go test ./pipeline -update rewrites them).

func TestTraceCanary(t *testing.T) {
	// examples/canary-basic.yml
	r := newTrace(t, spec(target("dev", canary(weight(25), pause(30*time.Second), weight(50), approval(), weight(100)))))
	r.do(Start{By: ci})
	r.ok("dev", "canary/0", 25)
	r.after(10 * time.Second).do(Tick{}) // early: nothing happens
	r.tick()
	r.ok("dev", "canary/2", 50)
	r.after(time.Hour).do(Approve{Target: "dev", By: alice})
	r.ok("dev", "canary/4", 100)
	r.ok("dev", "finalize")
	r.check("canary", StatusSucceeded)
}

func TestTraceEnvironments(t *testing.T) {
	// examples/environments.yml: a chain with gates, roles and an expiring approval.
	careful := canary(weight(10), pause(2*time.Minute), weight(50), approval())
	s := spec(
		target("staging", straight).after(hook("smoke-tests")),
		target("prod-east", careful, "staging").before(expiringApproval(4*time.Hour, "Release Manager"), notify("notify")),
		target("prod-west", careful, "staging"),
	)
	s.Timeout = Duration(10 * time.Minute)
	r := newTrace(t, s)
	r.do(Start{By: ci})
	r.ok("staging", "canary/0", 100)
	r.ok("staging", "finalize")
	r.after(time.Second).ok("staging", "afterDeployment/0")
	r.refuse(Approve{Target: "staging", By: alice}, CodeConflict, "nothing in target staging is awaiting approval")
	r.callback("staging", "afterDeployment/0", true, "smoke tests **passed**")
	r.refuse(Approve{Target: "prod-east", Step: "beforeDeployment/0", By: alice}, CodeForbidden, "requires one of the roles Release Manager; alice holds deployer")
	r.ok("prod-west", "canary/0", 10)
	r.after(30 * time.Second).do(Skip{Target: "prod-west", By: alice})
	r.ok("prod-east", "beforeDeployment/1")
	r.after(time.Minute).do(Approve{Target: "prod-east", Step: "beforeDeployment/0", By: bob})
	r.ok("prod-west", "canary/2", 50)
	r.ok("prod-east", "canary/0", 10)
	r.refuse(Skip{Target: "prod-west", By: alice}, CodeConflict, "nothing in target prod-west is a running timed pause")
	r.do(Approve{By: alice}) // the only approval pending in the pipeline
	r.ok("prod-west", "finalize")
	r.tick()
	r.ok("prod-east", "canary/2", 48)
	r.do(Approve{By: admin})
	r.ok("prod-east", "finalize")
	r.check("environments", StatusSucceeded)
}

func TestTraceFanInFailure(t *testing.T) {
	// A failing target rolls back and cancels what depends on it,
	// transitively, but not an independent branch.
	r := newTrace(t, spec(
		target("dev", straight),
		target("staging", canary(weight(50)), "dev"),
		target("infosec", straight, "dev"),
		target("prod", straight, "staging", "infosec"),
		target("prod-eu", straight, "prod"),
		target("sandbox", canary(weight(20), pause(time.Minute))),
	))
	r.do(Start{By: ci})
	r.ok("dev", "canary/0", 100)
	r.ok("sandbox", "canary/0", 25)
	r.ok("dev", "finalize")
	r.fail("staging", "canary/0", "apply: Deployment web: spec.replicas: Invalid value: -1")
	r.ok("infosec", "canary/0", 100)
	r.ok("staging", "rollback")
	r.ok("infosec", "finalize")
	r.tick()
	r.ok("sandbox", "finalize")
	r.check("fan_in_failure", StatusFailed)
}

func TestTraceBlueGreen(t *testing.T) {
	// examples/blue-green.yml
	r := newTrace(t, spec(target("prod", blueGreen(
		[]Step{approval(), analysis("", "")},
		[]Step{pause(15 * time.Minute)},
	))))
	r.do(Start{By: ci})
	r.ok("prod", "deployPreview")
	r.ok("prod", "redirectTrafficAfter/1")
	r.after(time.Minute).do(Approve{Target: "prod", By: alice})
	r.ok("prod", "redirectActive")
	r.do(Rollback{Target: "prod", By: alice, Reason: "errors in the logs"})
	r.ok("prod", "rollback")
	r.check("blue_green_rollback", StatusFailed)
}

func TestTraceBlueGreenSucceeds(t *testing.T) {
	r := newTrace(t, spec(target("prod", blueGreen(
		[]Step{approval(), analysis("", "")},
		[]Step{pause(15 * time.Minute), hook("check-logs")},
	))))
	r.do(Start{By: ci})
	r.ok("prod", "deployPreview")
	r.do(Approve{Target: "prod", By: alice})
	r.ok("prod", "redirectTrafficAfter/1")
	r.ok("prod", "redirectActive")
	r.ok("prod", "shutDownOldVersionAfter/1")
	r.callback("prod", "shutDownOldVersionAfter/1", true, "logs clean")
	r.tick()
	r.ok("prod", "finalize")
	r.check("blue_green", StatusSucceeded)
}

func TestTraceReadinessTimeoutAndFailedRollback(t *testing.T) {
	r := newTrace(t, spec(target("prod", canary(weight(50)))))
	r.do(Start{By: ci})
	r.after(29 * time.Minute).do(Tick{})
	r.tick()                                                                              // 30 min: pods not Ready
	r.do(CommandResult{CommandID: "p1/prod/canary/0", Success: true, AchievedWeight: 50}) // too late: ignored
	r.fail("prod", "rollback", "agent prod-cluster: connection lost")
	r.check("readiness_timeout", StatusFailed)
}

func TestTraceRollbackTimeout(t *testing.T) {
	r := newTrace(t, spec(target("prod", canary(weight(50)))))
	r.do(Start{By: ci})
	r.fail("prod", "canary/0", "image pull failed")
	r.tick()
	r.check("rollback_timeout", StatusFailed)
}

func TestTraceApprovalExpires(t *testing.T) {
	r := newTrace(t, spec(
		target("staging", canary(weight(20), expiringApproval(time.Hour))),
		target("prod", straight, "staging"),
	))
	r.do(Start{By: ci})
	r.ok("staging", "canary/0", 20)
	// Sent after the expiration, the approval finds the step already failed.
	r.after(2*time.Hour).refuse(Approve{Target: "staging", By: alice}, CodeConflict, "nothing in target staging is awaiting approval")
	r.do(Tick{})
	r.ok("staging", "rollback")
	r.check("approval_expired", StatusFailed)
}

func TestTraceBeforeGateFailsBeforeDeploying(t *testing.T) {
	r := newTrace(t, spec(
		target("prod", straight).before(hook("change-ticket"), pause(time.Minute)),
		target("dr", straight, "prod"),
	))
	r.do(Start{By: ci})
	r.fail("prod", "beforeDeployment/0", "HTTP 500 after 3 attempts")
	r.check("before_gate_fails", StatusFailed)
}

func TestTraceAfterDeploymentFailure(t *testing.T) {
	// afterDeployment failure: no rollback, the target FAILED, dependants
	// CANCELLED.
	r := newTrace(t, spec(
		target("staging", straight).after(hook("integration-tests"), pause(time.Hour)),
		target("prod", straight, "staging"),
	))
	r.do(Start{By: ci})
	r.ok("staging", "canary/0", 100)
	r.ok("staging", "finalize")
	r.refuse(Rollback{Target: "staging", By: alice}, CodeConflict, "already promoted")
	r.ok("staging", "afterDeployment/0")
	r.callback("staging", "afterDeployment/0", false, "3 tests failed")
	r.refuse(WebhookCallback{CommandID: "p1/staging/afterDeployment/0", Success: true, By: webhook}, CodeConflict, "has ended (it is FAILED)")
	r.check("after_deployment_failure", StatusFailed)
}

func TestTraceWebhooks(t *testing.T) {
	s := spec(target("prod", canary(weight(10), hook("fast"), hook("slow"), hook("silent"))))
	s.Targets[0].Strategy.Canary.Steps[3].RunWebhook.CallbackTimeout = Duration(5 * time.Minute)
	r := newTrace(t, s)
	r.do(Start{By: ci})
	r.ok("prod", "canary/0", 10)
	// The callback overtakes the executor's report of the call.
	r.callback("prod", "canary/1", true, "done")
	r.do(CommandResult{CommandID: "p1/prod/canary/1", Success: true}) // stale: ignored
	r.ok("prod", "canary/2")
	r.refuse(WebhookCallback{CommandID: "p1/prod/nope", By: webhook}, CodeNotFound, `no webhook call "p1/prod/nope"`)
	r.callback("prod", "canary/2", true, "")
	r.ok("prod", "canary/3")
	r.tick() // no callback within 5m
	r.ok("prod", "rollback")
	r.check("webhooks", StatusFailed)
}

func TestTraceAnalysis(t *testing.T) {
	r := newTrace(t, spec(
		target("auto", canary(weight(10), analysis("", ""), analysis("", ""))),
		target("manual", canary(weight(10), analysis(ModeManual, ModeManual), analysis(ModeManual, ""))),
	))
	r.do(Start{By: ci})
	r.ok("auto", "canary/0", 10)
	r.ok("manual", "canary/0", 10)
	r.ok("auto", "canary/1")
	r.do(CommandResult{CommandID: r.command("manual", "canary/1").ID, Success: true, Message: "error-ratio 0.001"})
	r.do(Approve{Target: "manual", By: alice})
	r.fail("manual", "canary/2", "error-ratio 0.2 > 0.01")
	r.do(Approve{Target: "manual", Step: "canary/2", By: alice})
	r.fail("auto", "canary/2", "error-ratio 0.2 > 0.01")
	r.ok("auto", "rollback")
	r.ok("manual", "finalize")
	r.check("analysis", StatusFailed)
}

func TestTraceAnalysisManualRollback(t *testing.T) {
	r := newTrace(t, spec(target("prod", canary(weight(10), analysis(ModeManual, "")))))
	r.do(Start{By: ci})
	r.ok("prod", "canary/0", 10)
	r.fail("prod", "canary/1", "p95 0.9s > 0.4s")
	r.do(Rollback{Target: "prod", By: alice})
	r.refuse(Rollback{Target: "prod", By: alice}, CodeConflict, "already rolling back")
	r.ok("prod", "rollback")
	r.check("analysis_manual_rollback", StatusFailed)
}

func TestTraceCancel(t *testing.T) {
	r := newTrace(t, spec(
		target("dev", canary(weight(50), pause(time.Hour))),
		target("gated", straight).before(approval()),
		target("staging", straight, "dev"),
		target("finished", straight).after(pause(time.Hour)),
	))
	r.do(Start{By: ci})
	r.ok("dev", "canary/0", 50)
	r.ok("finished", "canary/0", 100)
	r.ok("finished", "finalize")
	r.do(Cancel{By: alice, Reason: "wrong image"})
	r.refuse(Cancel{By: alice}, CodeConflict, "already being cancelled")
	r.refuse(Approve{Target: "gated", By: alice}, CodeConflict, "nothing in target gated is awaiting approval")
	r.ok("dev", "rollback")
	r.refuse(Cancel{By: alice}, CodeConflict, "has ended (it is CANCELLED)")
	r.check("cancel", StatusCancelled)
}

func TestTraceCancelQueued(t *testing.T) {
	r := newTrace(t, spec(target("dev", straight)))
	r.do(Cancel{By: ci, Reason: "replaced by pipeline p2"})
	r.refuse(Start{By: ci}, CodeConflict, "has already started (it is CANCELLED)")
	r.check("cancel_queued", StatusCancelled)
}

func TestTraceFirstDeployment(t *testing.T) {
	// Straight to 100 %, gates still apply.
	r := newTrace(t, spec(
		target("prod", canary(weight(10), approval())).before(approval()).after(notify("chat")).first(),
	))
	r.do(Start{By: ci})
	r.do(Approve{Target: "prod", By: alice})
	r.ok("prod", "finalize")
	r.ok("prod", "afterDeployment/0")
	r.check("first_deployment", StatusSucceeded)
}

func TestTraceTargetFilters(t *testing.T) {
	s := spec(
		target("staging", straight),
		target("prod", straight, "staging"),
		target("other", straight),
	)
	s.TargetFilters = []string{"prod"}
	r := newTrace(t, s)
	r.do(Start{By: ci})
	r.refuse(Rollback{Target: "staging", By: alice}, CodeNotFound, `has no target "staging"`)
	r.ok("prod", "canary/0", 100)
	r.ok("prod", "finalize")
	r.check("target_filters", StatusSucceeded)
}

func TestTraceManualRollbackCancelsDependants(t *testing.T) {
	r := newTrace(t, spec(
		target("staging", canary(weight(30), pause(10*time.Minute))),
		target("prod", straight, "staging"),
	))
	r.do(Start{By: ci})
	r.ok("staging", "canary/0", 30)
	r.after(time.Minute).do(Rollback{Target: "staging", By: alice, Reason: "latency"})
	r.refuse(Skip{Target: "staging", By: alice}, CodeConflict, "nothing in target staging is a running timed pause")
	r.ok("staging", "rollback")
	r.check("manual_rollback", StatusFailed)
}

func TestTraceFailedDependencyCancelsBeforeOthersFinish(t *testing.T) {
	// prod waits for slow and fast; fast fails while slow still runs: prod
	// is cancelled at once, not when slow ends.
	r := newTrace(t, spec(
		target("slow", canary(weight(10), pause(time.Hour))),
		target("fast", straight).before(expiringApproval(time.Minute)),
		target("prod", straight, "slow", "fast"),
	))
	r.do(Start{By: ci})
	r.ok("slow", "canary/0", 10)
	r.tick()
	r.after(time.Hour).do(Tick{})
	r.ok("slow", "finalize")
	r.check("dependency_fails_early", StatusFailed)
}

func TestTraceExposeServicesAndRefusals(t *testing.T) {
	expose := Step{ExposeServices: &ExposeServices{Params: []byte(`{"services":["web-preview"],"ttl":"30m"}`)}}
	r := newTrace(t, spec(
		target("dev", straight).before(notify("chat")),
		target("prod", blueGreen([]Step{expose}, nil), "dev"),
	))
	r.do(Start{By: ci})
	r.refuse(Rollback{Target: "prod", By: alice}, CodeConflict, "cannot roll back target prod: it has not started; cancel the pipeline instead")
	r.refuse(WebhookCallback{CommandID: "p1/dev/beforeDeployment/0", Success: true, By: webhook}, CodeConflict, "does not take a callback (disableCallback)")
	r.ok("dev", "beforeDeployment/0")
	r.ok("dev", "canary/0", 100)
	r.ok("dev", "finalize")
	r.refuse(Rollback{Target: "dev", By: alice}, CodeConflict, "it has ended (it is SUCCEEDED); redeploy an earlier pipeline to go back")
	r.ok("prod", "deployPreview")
	r.tick() // exposeServices never answers
	r.ok("prod", "rollback")
	r.check("expose_services_timeout", StatusFailed)
}

func TestTraceAnalysisInconclusive(t *testing.T) {
	// Inconclusive is neither a pass nor a failure: by default it waits for
	// a person even with rollBackMode automatic; rollback and proceed are
	// opt-in.
	r := newTrace(t, spec(
		target("wait", canary(weight(10), analysis(ModeAutomatic, ""))),
		target("wait-rb", canary(weight(10), onInconclusive(InconclusiveWait, analysis(ModeAutomatic, "")))),
		target("rollback", canary(weight(10), onInconclusive(InconclusiveRollback, analysis(ModeManual, "")))),
		target("proceed", canary(weight(10), onInconclusive(InconclusiveProceed, analysis("", "")))),
	))
	r.do(Start{By: ci})
	for _, tgt := range []string{"wait", "wait-rb", "rollback", "proceed"} {
		r.ok(tgt, "canary/0", 10)
	}
	r.inconclusive("wait", "canary/1", "run 1 of 3: query error-ratio returned no data")
	r.inconclusive("wait-rb", "canary/1", "run 2 of 3: query error-ratio returned NaN")
	r.inconclusive("rollback", "canary/1", "run 1 of 3: metric provider prom unreachable")
	r.inconclusive("proceed", "canary/1", "run 3 of 3: query error-ratio returned no data")
	r.after(time.Minute).do(Approve{Target: "wait", By: alice})
	r.do(Rollback{Target: "wait-rb", By: alice, Reason: "no metrics"})
	r.ok("wait", "finalize")
	r.ok("wait-rb", "rollback")
	r.ok("rollback", "rollback")
	r.ok("proceed", "finalize")
	r.check("analysis_inconclusive", StatusFailed)
}

func TestTraceApprovalPolicy(t *testing.T) {
	// Two approvals from Release Managers or carol, not from the starter
	// (four eyes): the starter is refused even with the role, a second
	// approval by the same person is refused, a principal with neither the
	// role nor the name is refused, and two distinct ones pass it.
	carol := Principal{Name: "carol", Roles: []string{RoleDeployer}}
	manager := Principal{Name: "dave", Roles: []string{RoleDeployer, "Release Manager"}}
	r := newTrace(t, spec(target("prod", canary(weight(50), policy(2, true, []string{"Release Manager"}, []string{"carol"}), weight(100)))))
	r.do(Start{By: bob})
	r.ok("prod", "canary/0", 50)
	r.refuse(Approve{Target: "prod", By: bob}, CodeForbidden, "needs someone other than bob, who started the pipeline")
	r.refuse(Approve{Target: "prod", By: alice}, CodeForbidden, "requires one of the roles Release Manager or one of carol; alice holds deployer")
	r.do(Approve{Target: "prod", By: carol})
	r.refuse(Approve{Target: "prod", By: carol}, CodeConflict, "carol already approved step canary/1 of target prod; 1 more approval needed from someone else")
	r.do(Approve{Target: "prod", By: manager})
	r.ok("prod", "canary/2", 100)
	r.ok("prod", "finalize")
	r.check("approval_policy", StatusSucceeded)
}

func TestTraceApprovalRejected(t *testing.T) {
	// A rejection needs a reason and the right to approve; it fails the
	// step and rolls the target back, and a dependent target is cancelled.
	r := newTrace(t, spec(
		target("staging", canary(weight(25), approval("Release Manager"), weight(100))),
		target("prod", straight, "staging"),
	))
	r.do(Start{By: ci})
	r.ok("staging", "canary/0", 25)
	r.refuse(Reject{Target: "staging", By: bob}, CodeInvalid, "give a reason")
	r.refuse(Reject{Target: "staging", By: alice, Reason: "no"}, CodeForbidden, "cannot reject: step canary/1 of target staging requires one of the roles Release Manager")
	r.do(Reject{Target: "staging", By: bob, Reason: "error budget spent"})
	r.ok("staging", "rollback")
	r.check("approval_rejected", StatusFailed)
}

func TestTraceKeepPrevious(t *testing.T) {
	// A target with keepPrevious that succeeds keeps the version it
	// replaced warm for its time from then; one that rolls back does not,
	// nor a restore of that version.
	keep := &KeepPrevious{For: Duration(30 * time.Minute), Replicas: 2}
	prod, staging := target("prod", canary(weight(50), pause(time.Minute))), target("staging", canary(weight(50)))
	prod.KeepPrevious, staging.KeepPrevious = keep, keep
	r := newTrace(t, spec(prod, staging))
	r.do(Start{By: alice})
	r.ok("prod", "canary/0", 50)
	r.fail("staging", "canary/0", "deployment web: 0 of 4 pods ready")
	r.ok("staging", "rollback")
	r.after(time.Minute).do(Tick{})
	r.ok("prod", "finalize")
	r.check("keep_previous", StatusFailed)

	back := target("prod", canary(weight(50)))
	back.KeepPrevious, back.Restore = keep, true
	q := newTrace(t, spec(back))
	q.do(Start{By: alice})
	q.ok("prod", "finalize")
	if ts := q.s.Target("prod"); ts.Status != StatusSucceeded || !ts.WarmUntil.IsZero() {
		t.Errorf("a restore: prod %s, warm until %v; want SUCCEEDED and nothing kept", ts.Status, ts.WarmUntil)
	}
}

func TestTraceRestore(t *testing.T) {
	// A rollback after success (or to any stored version) is a pipeline
	// that puts the earlier version back straight: no strategy step, only
	// the finalize, whatever canary the target's file describes; and if
	// that fails, the target rolls back to what ran before it.
	careful := canary(weight(10), approval(), weight(50), pause(time.Hour))
	s := spec(target("prod", careful), target("staging", careful))
	for i := range s.Targets {
		s.Targets[i].Restore = true
	}
	s.Restores, s.Reason = "p0", "error rate doubled"
	r := newTrace(t, s)
	r.do(Start{By: alice})
	r.ok("prod", "finalize")
	r.fail("staging", "finalize", "deployment web: 0 of 4 pods ready")
	r.ok("staging", "rollback")
	r.check("restore", StatusFailed)
}
