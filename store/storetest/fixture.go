package storetest

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// T0 is the suite's reference time: not UTC, with nanoseconds, so that a
// store that drops either shows it.
var T0 = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("CET", 3600))

var t0 = T0

// CanarySpec is a realistic spec: three targets (two in parallel after the
// first), each a canary of 10 %, a timed pause, an approval, 50 % and
// 100 %, staging with a webhook before and a notification after.
func CanarySpec(tenant, application string) pipeline.Spec {
	weight := func(w int) pipeline.Step { return pipeline.Step{SetWeight: &pipeline.SetWeight{Weight: w}} }
	canary := pipeline.Strategy{Name: "canary", Canary: &pipeline.Canary{Steps: []pipeline.Step{
		weight(10),
		{Pause: &pipeline.Pause{Duration: pipeline.Duration(5 * time.Minute)}},
		{Analysis: &pipeline.Analysis{RollBackMode: pipeline.ModeAutomatic, Params: json.RawMessage(`{"queries":["error-ratio"],"interval":"30s"}`)}},
		weight(50),
		{Pause: &pipeline.Pause{UntilApproved: true, RequiresRoles: []string{"release-manager"}, ApprovalExpiration: pipeline.Duration(time.Hour)}},
		weight(100),
	}}}
	target := func(name string, dependsOn ...string) pipeline.TargetSpec {
		return pipeline.TargetSpec{Name: name, Account: name + "-cluster", Namespace: "web", Strategy: canary, DependsOn: dependsOn}
	}
	staging := target("staging")
	staging.BeforeDeployment = []pipeline.Step{{RunWebhook: &pipeline.RunWebhook{Name: "ticket", Context: map[string]string{"change": "CHG-1 <&>"}}}}
	staging.AfterDeployment = []pipeline.Step{{RunWebhook: &pipeline.RunWebhook{Name: "notify", DisableCallback: true}}}
	return pipeline.Spec{
		Application:  application,
		Tenant:       tenant,
		Targets:      []pipeline.TargetSpec{staging, target("prod-east", "staging"), target("prod-west", "staging")},
		Timeout:      pipeline.Duration(20 * time.Minute),
		IfInProgress: pipeline.InProgressEnqueueOne,
	}
}

// CanaryState returns the state of a CanarySpec pipeline that started at
// created and went through its staging webhook and first canary steps: it is
// RUNNING, staging is paused with a deadline, commands are outstanding and
// the history is not empty. It panics if the engine refuses a step, which
// is a bug in this fixture.
func CanaryState(id, tenant, application string, created time.Time) pipeline.State {
	s, err := pipeline.New(id, CanarySpec(tenant, application), created)
	must(err)
	now := created
	step := func(ev pipeline.Event) {
		now = now.Add(1500 * time.Millisecond)
		s, _, _, err = pipeline.Transition(s, ev, now)
		must(err)
	}
	step(pipeline.Start{By: pipeline.Principal{Name: "ci@example.com", Roles: []string{pipeline.RoleDeployer}}})
	answer := func(hook bool) {
		cmd := s.Outstanding[0]
		step(pipeline.CommandResult{CommandID: cmd.ID, Success: true, AchievedWeight: cmd.Weight, Message: "ok"})
		if hook {
			step(pipeline.WebhookCallback{CommandID: cmd.ID, Success: true, Message: "**approved** by CAB", By: pipeline.Principal{Name: "cab"}})
		}
	}
	answer(true)  // staging: the ticket webhook and its callback
	answer(false) // staging: setWeight 10, now pausing
	return s
}

// CanaryPipeline returns a stored pipeline around CanaryState, with a
// source, ready for CreatePipeline.
func CanaryPipeline(tenant, id, application string, created time.Time) *store.Pipeline {
	s := CanaryState(id, tenant, application, created)
	return &store.Pipeline{
		Tenant:      tenant,
		ID:          id,
		Application: application,
		Status:      s.Status,
		CreatedAt:   created,
		Wake:        s.Wake(),
		StartedBy:   "ci@example.com",
		State:       s,
		Source: store.Source{
			FileName: "deploy.yml",
			File:     "version: v1\nkind: kubernetes\napplication: " + application + "\n",
			Manifests: map[string]string{
				"manifests/web.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n",
				"inline/0":           "apiVersion: v1\nkind: ConfigMap\n",
			},
			Context: map[string]string{"ticket": "CHG-1"},
			Plan:    json.RawMessage(`{"application":"` + application + `","targets":[{"name":"staging","account":"staging-cluster"}]}`),
		},
	}
}

// withStatus sets p's status in both places it is kept.
func withStatus(p *store.Pipeline, st pipeline.Status) *store.Pipeline {
	p.Status, p.State.Status = st, st
	if st.Terminal() {
		p.State.EndedAt = p.CreatedAt.Add(time.Hour)
		p.Wake = time.Time{}
	}
	return p
}

func events(types ...string) []store.Event {
	var es []store.Event
	for i, ty := range types {
		es = append(es, store.Event{At: t0.Add(time.Duration(i) * time.Millisecond), Type: ty,
			Data: json.RawMessage(fmt.Sprintf(`{"n":%d,"text":"<b>%s</b>"}`, i, ty))})
	}
	return es
}

func must(err error) {
	if err != nil {
		panic("storetest: fixture: " + err.Error())
	}
}
