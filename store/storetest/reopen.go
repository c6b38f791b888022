package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// testReopen writes through one store, opens a second on the same database
// while the first is still open (what a crash leaves: nothing closed, the
// log not checkpointed), and checks that the second sees every committed
// row exactly; then that both stay consistent as they write.
func testReopen(t *testing.T, open Opener) {
	s1, reopen := open(t)
	ctx := t.Context()
	all := fleet(t, s1)
	cred := store.Credential{Tenant: "acme", ClientID: "c1", Name: "ci", SecretHash: []byte("h"), Roles: []string{"deployer"}, CreatedAt: t0}
	if err := s1.CreateCredential(ctx, cred); err != nil {
		t.Fatal(err)
	}
	p2 := all["p2"]
	for i := range 5 {
		p2.State.History = append(p2.State.History, pipeline.Record{At: t0.Add(time.Duration(i) * time.Second), Action: "skip", By: "alice"})
		save(t, s1, p2, events("saved")...)
	}

	s2 := reopen(t)
	for id, want := range all {
		samePipeline(t, get(t, s2, want.Tenant, id), want)
		if diff := cmp.Diff(allEvents(t, s1, want.Tenant, id), allEvents(t, s2, want.Tenant, id), opts); diff != "" {
			t.Errorf("events of %s after reopen (-before +after):\n%s", id, diff)
		}
	}
	if diff := cmp.Diff(listTenants(t, s1), listTenants(t, s2)); diff != "" {
		t.Errorf("tenants after reopen (-before +after):\n%s", diff)
	}
	got, err := s2.GetCredential(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cred, *got, opts); diff != "" {
		t.Errorf("credential after reopen (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(ids(resumable(t, s1)), ids(resumable(t, s2))); diff != "" {
		t.Errorf("resumable after reopen (-before +after):\n%s", diff)
	}

	// The restarted one writes; the old one sees it, and its own copy is
	// now stale.
	stale := clone(p2)
	resumed := get(t, s2, p2.Tenant, p2.ID)
	resumed.State.Message = "resumed"
	save(t, s2, resumed, events("resumed")...)
	samePipeline(t, get(t, s1, p2.Tenant, p2.ID), resumed)
	stale.State.Message = "written by the dead server"
	wantErr(t, "SavePipeline through the old store after the new one saved", s1.SavePipeline(ctx, stale, events("late")), store.ErrConflict)
	es := allEvents(t, s2, p2.Tenant, p2.ID)
	if last := es[len(es)-1]; last.Type != "resumed" || last.Seq != int64(len(es)) {
		t.Errorf("last event %+v of %d, want resumed", last, len(es))
	}
}
