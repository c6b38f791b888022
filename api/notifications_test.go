package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/notify"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// TestActionLinks: a notification's approve link approves once, as its
// reader, with the route's role check and audit; it is refused when
// expired, reused, changed, for another action or tenant, and when the
// reader lacks the role (which leaves it unspent).
func TestActionLinks(t *testing.T) {
	links := notify.NewLinks([]byte("test-key-test-key-test-key-test!"), "https://sortie.test", time.Hour)
	h := newHarness(t, func(o *api.Options) { o.Links = links })
	p := samplePipeline(store.DefaultTenant, "p1", time.Now())
	// The engine checks the action against the state: give the staging
	// target the steps its state names.
	p.State.Spec.Targets[0].Strategy.Canary = &pipeline.Canary{Steps: []pipeline.Step{
		{SetWeight: &pipeline.SetWeight{Weight: 25}}, {Pause: &pipeline.Pause{UntilApproved: true}}}}
	h.runner.add(p)
	deployer, c := h.token(store.DefaultTenant, pipeline.RoleDeployer)
	viewer, _ := h.token(store.DefaultTenant, pipeline.RoleViewer)
	other, _ := h.token(otherTenant, pipeline.RoleDeployer)
	link := notify.Link{Tenant: store.DefaultTenant, Pipeline: "p1", Target: "staging", Step: "canary/1", Action: notify.ActionApprove,
		Expires: time.Now().Add(time.Hour), Nonce: "n1"}
	token := links.Sign(link)
	approve := func(tok, link string) response {
		t.Helper()
		return h.do("POST", "/api/v1/pipelines/p1/approve", tok, api.ActionRequest{Link: link})
	}

	if r := approve(viewer, token); r.status != 403 {
		t.Fatalf("a viewer with the link: %d %s, want 403", r.status, r.body)
	}
	if r := approve(other, token); r.status != 404 {
		t.Errorf("another tenant's deployer with the link: %d %s, want 404", r.status, r.body)
	}
	changed := link
	changed.Step = "canary/0"
	_, sig, _ := strings.Cut(token, ".")
	body, _, _ := strings.Cut(links.Sign(changed), ".")
	if r := approve(deployer, body+"."+sig); r.status != 400 {
		t.Errorf("a changed link: %d %s, want 400", r.status, r.body)
	}
	rb := link
	rb.Action, rb.Nonce = notify.ActionRollback, "n2"
	if r := approve(deployer, links.Sign(rb)); r.status != 400 {
		t.Errorf("a rollback link on approve: %d %s, want 400", r.status, r.body)
	}
	if len(h.runner.acted) != 0 {
		t.Fatalf("refused links acted: %v", h.runner.acted)
	}

	r := approve(deployer, token)
	if r.status != 200 {
		t.Fatalf("the deployer's first use: %d %s", r.status, r.body)
	}
	want := []pipeline.Event{pipeline.Approve{Target: "staging", Step: "canary/1", By: pipeline.Principal{Name: c.Name, Roles: c.Roles}}}
	if diff := cmp.Diff(want, h.runner.acted); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
	audit, err := h.store.ListAudit(t.Context(), store.DefaultTenant, store.AuditFilter{Action: "pipeline.approve"})
	if err != nil || len(audit) != 1 || audit[0].ClientID != c.ClientID {
		t.Errorf("audit of the approval: %+v, %v", audit, err)
	}
	if r := approve(deployer, token); r.status != 409 || !strings.Contains(string(r.body), "used already") {
		t.Errorf("a second use: %d %s, want 409", r.status, r.body)
	}
	expired := link
	expired.Expires, expired.Nonce = time.Now().Add(-time.Second), "n3"
	if r := approve(deployer, links.Sign(expired)); r.status != 410 || !strings.Contains(string(r.body), "expired") {
		t.Errorf("an expired link: %d %s, want 410", r.status, r.body)
	}
	if len(h.runner.acted) != 1 {
		t.Errorf("acted %d times, want once", len(h.runner.acted))
	}
}
