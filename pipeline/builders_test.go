package pipeline

import (
	"encoding/json"
	"time"
)

func weight(w int) Step { return Step{SetWeight: &SetWeight{Weight: w}} }

func pause(d time.Duration) Step { return Step{Pause: &Pause{Duration: Duration(d)}} }

func approval(roles ...string) Step {
	return Step{Pause: &Pause{UntilApproved: true, RequiresRoles: roles}}
}

func expiringApproval(d time.Duration, roles ...string) Step {
	s := approval(roles...)
	s.Pause.ApprovalExpiration = Duration(d)
	return s
}

// policy is an approval step needing n distinct approvals from the roles or
// the named approvers, and, with fourEyes, not from the starter.
func policy(n int, fourEyes bool, roles, approvers []string) Step {
	return Step{Pause: &Pause{UntilApproved: true, Approvals: n, NotByStarter: fourEyes, RequiresRoles: roles, Approvers: approvers}}
}

func hook(name string) Step { return Step{RunWebhook: &RunWebhook{Name: name}} }

func notify(name string) Step {
	return Step{RunWebhook: &RunWebhook{Name: name, DisableCallback: true}}
}

func analysis(rollBack, rollForward string) Step {
	return Step{Analysis: &Analysis{RollBackMode: rollBack, RollForwardMode: rollForward,
		Params: json.RawMessage(`{"queries":["error-ratio"]}`)}}
}

// onInconclusive sets what an inconclusive result of analysis step s does.
func onInconclusive(mode string, s Step) Step {
	a := *s.Analysis
	a.Inconclusive = mode
	s.Analysis = &a
	return s
}

func canary(steps ...Step) Strategy {
	return Strategy{Name: "canary", Canary: &Canary{Steps: steps}}
}

func blueGreen(redirectAfter, shutDownAfter []Step) Strategy {
	return Strategy{Name: "bg", BlueGreen: &BlueGreen{ActiveService: "web", PreviewService: "web-preview",
		RedirectTrafficAfter: redirectAfter, ShutDownOldVersionAfter: shutDownAfter}}
}

// straight is a canary of one step at 100 %.
var straight = canary(weight(100))

func target(name string, strategy Strategy, dependsOn ...string) TargetSpec {
	return TargetSpec{Name: name, Account: name + "-cluster", Namespace: "web", Strategy: strategy, DependsOn: dependsOn}
}

func spec(targets ...TargetSpec) Spec {
	return Spec{Application: "web", Tenant: "main", Targets: targets}
}

func (t TargetSpec) before(steps ...Step) TargetSpec { t.BeforeDeployment = steps; return t }
func (t TargetSpec) after(steps ...Step) TargetSpec  { t.AfterDeployment = steps; return t }
func (t TargetSpec) first() TargetSpec               { t.FirstDeployment = true; return t }
