package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie-cd/sortie/store"
)

// testRevocations: one revocation per principal, the later kept whatever
// the order of the writes (racing replicas included); listed while not
// expired, pruned after, and still there after a reopen (what a restart
// reads).
func testRevocations(t *testing.T, open Opener) {
	s, reopen := open(t)
	ctx := t.Context()
	at := t0.Unix()
	exp := t0.Add(16 * time.Minute)
	a := store.Revocation{Tenant: store.DefaultTenant, Subject: "ci", At: at, Expires: exp}
	u := store.Revocation{Tenant: store.DefaultTenant, Subject: "user:ann", At: at, Expires: exp.Add(-time.Minute)}
	acme := store.Revocation{Tenant: "acme", Subject: "ci", At: at + 5, Expires: exp.Add(time.Minute)}
	for _, r := range []store.Revocation{a, u, acme} {
		if err := s.PutRevocation(ctx, r); err != nil {
			t.Fatalf("PutRevocation %+v: %v", r, err)
		}
	}
	list := func(s store.Store, now time.Time) []store.Revocation {
		t.Helper()
		got, err := s.ListRevocations(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	want := []store.Revocation{acme, a, u}
	if diff := cmp.Diff(want, list(s, t0), opts); diff != "" {
		t.Errorf("ListRevocations by tenant and subject (-want +got):\n%s", diff)
	}
	// A later revocation replaces; an earlier one (a slower writer) does not
	// move it back.
	later := a
	later.At, later.Expires = at+60, exp.Add(time.Minute)
	if err := s.PutRevocation(ctx, later); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRevocation(ctx, a); err != nil {
		t.Fatal(err)
	}
	want = []store.Revocation{acme, later, u}
	if diff := cmp.Diff(want, list(s, t0), opts); diff != "" {
		t.Errorf("after a later and then an earlier revocation of ci (-want +got):\n%s", diff)
	}
	// Racing writers of one principal: the latest At wins.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			r := store.Revocation{Tenant: store.DefaultTenant, Subject: "raced", At: at + int64(i), Expires: exp}
			if err := s.PutRevocation(ctx, r); err != nil {
				t.Errorf("PutRevocation racing: %v", err)
			}
		})
	}
	wg.Wait()
	for _, r := range list(s, t0) {
		if r.Subject == "raced" && r.At != at+7 {
			t.Errorf("after racing revocations, At = %d, want the latest %d", r.At, at+7)
		}
	}
	// Expired ones are not listed; Prune deletes exactly those.
	if diff := cmp.Diff([]store.Revocation{acme, later}, list(s, exp), opts); diff != "" {
		t.Errorf("ListRevocations at ci's old expiry (-want +got):\n%s", diff)
	}
	if err := s.PruneRevocations(ctx, exp); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.Revocation{acme, later}, list(s, t0), opts); diff != "" {
		t.Errorf("after PruneRevocations, even listed at t0 (-want +got):\n%s", diff)
	}
	// What a restarted server reads.
	if diff := cmp.Diff([]store.Revocation{acme, later}, list(reopen(t), t0), opts); diff != "" {
		t.Errorf("ListRevocations after a reopen (-want +got):\n%s", diff)
	}
	for _, bad := range []store.Revocation{{Subject: "x", At: at, Expires: exp}, {Tenant: "main", At: at, Expires: exp}, {Tenant: "main", Subject: "x", At: at}} {
		if err := s.PutRevocation(ctx, bad); err == nil {
			t.Errorf("PutRevocation(%+v) accepted", bad)
		}
	}
}
