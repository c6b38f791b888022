package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

func testWindows(t *testing.T, open Opener) {
	s, reopen := open(t)
	ctx := t.Context()
	createTenant(t, s, "acme")
	office := pipeline.Window{Name: "office", Scope: "tenant", Days: []string{"mon", "fri"}, Start: "09:00", End: "17:00", TimeZone: "Europe/Paris"}
	night := pipeline.Window{Name: "night", Scope: "target prod", Start: "22:00", End: "02:00", Mode: pipeline.WindowRefuse}
	xmas := pipeline.Window{Name: "xmas", Scope: "application web", Dates: []string{"2026-12-24"}}
	for _, w := range []pipeline.Window{office, night, xmas} {
		if err := s.PutWindow(ctx, store.DefaultTenant, w); err != nil {
			t.Fatalf("PutWindow %s: %v", w.Name, err)
		}
	}
	wantErr(t, "PutWindow in an unknown tenant", s.PutWindow(ctx, "nobody", office), store.ErrNotFound)
	office.End = "18:00"
	if err := s.PutWindow(ctx, store.DefaultTenant, office); err != nil {
		t.Fatalf("PutWindow replacing office: %v", err)
	}
	list, err := s.ListWindows(ctx, store.DefaultTenant)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]pipeline.Window{xmas, night, office}, list, opts); diff != "" {
		t.Errorf("ListWindows, by scope and name (-want +got):\n%s", diff)
	}
	if list, _ := s.ListWindows(ctx, "acme"); len(list) != 0 {
		t.Errorf("acme sees main's windows: %v", list)
	}
	wantErr(t, "DeleteWindow of another tenant's window", s.DeleteWindow(ctx, "acme", "tenant", "office"), store.ErrNotFound)
	if err := s.DeleteWindow(ctx, store.DefaultTenant, "target prod", "night"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteWindow twice", s.DeleteWindow(ctx, store.DefaultTenant, "target prod", "night"), store.ErrNotFound)
	list, err = reopen(t).ListWindows(ctx, store.DefaultTenant)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]pipeline.Window{xmas, office}, list, opts); diff != "" {
		t.Errorf("ListWindows after reopening (-want +got):\n%s", diff)
	}
}

func testFreezes(t *testing.T, open Opener) {
	s, reopen := open(t)
	ctx := t.Context()
	createTenant(t, s, "acme")
	tenant := pipeline.Freeze{Scope: "tenant", Reason: "incident 4711", By: "root", At: t0}
	app := pipeline.Freeze{Scope: "application web", Reason: "audit", Until: t0.Add(2 * time.Hour), By: "alice", At: t0}
	for _, f := range []pipeline.Freeze{tenant, app} {
		if err := s.PutFreeze(ctx, store.DefaultTenant, f); err != nil {
			t.Fatalf("PutFreeze %s: %v", f.Scope, err)
		}
	}
	wantErr(t, "PutFreeze in an unknown tenant", s.PutFreeze(ctx, "nobody", tenant), store.ErrNotFound)
	tenant.Reason = "incident 4712"
	if err := s.PutFreeze(ctx, store.DefaultTenant, tenant); err != nil {
		t.Fatalf("PutFreeze replacing: %v", err)
	}
	list, err := s.ListFreezes(ctx, store.DefaultTenant)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]pipeline.Freeze{app, tenant}, list, opts); diff != "" {
		t.Errorf("ListFreezes, by scope (-want +got):\n%s", diff)
	}
	if list[0].At.Location() != time.UTC || list[0].Until.Location() != time.UTC {
		t.Errorf("times in %v and %v, want UTC", list[0].At.Location(), list[0].Until.Location())
	}
	if list, _ := s.ListFreezes(ctx, "acme"); len(list) != 0 {
		t.Errorf("acme sees main's freezes: %v", list)
	}
	wantErr(t, "DeleteFreeze of another tenant's", s.DeleteFreeze(ctx, "acme", "tenant"), store.ErrNotFound)
	if err := s.DeleteFreeze(ctx, store.DefaultTenant, "tenant"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteFreeze twice", s.DeleteFreeze(ctx, store.DefaultTenant, "tenant"), store.ErrNotFound)
	// A stamped At, and the freezes survive a restart.
	if err := s.PutFreeze(ctx, "acme", pipeline.Freeze{Scope: "target prod", Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	s2 := reopen(t)
	list, err = s2.ListFreezes(ctx, store.DefaultTenant)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]pipeline.Freeze{app}, list, opts); diff != "" {
		t.Errorf("ListFreezes after reopening (-want +got):\n%s", diff)
	}
	if list, _ := s2.ListFreezes(ctx, "acme"); len(list) != 1 || list[0].At.IsZero() || !list[0].Until.IsZero() {
		t.Errorf("acme's freezes after reopening: %+v, want one stamped, without an end", list)
	}
}

func testWarm(t *testing.T, open Opener) {
	s, reopen := open(t)
	ctx := t.Context()
	createTenant(t, s, "acme")
	late := store.Warm{Tenant: store.DefaultTenant, Pipeline: "p1", Target: "prod", Until: t0.Add(2 * time.Hour)}
	soon := store.Warm{Tenant: "acme", Pipeline: "p2", Target: "prod", Until: t0.Add(time.Hour)}
	for _, w := range []store.Warm{late, soon} {
		if err := s.PutWarm(ctx, w); err != nil {
			t.Fatalf("PutWarm %+v: %v", w, err)
		}
	}
	wantErr(t, "PutWarm in an unknown tenant", s.PutWarm(ctx, store.Warm{Tenant: "nobody", Pipeline: "p", Target: "t", Until: t0}), store.ErrNotFound)
	late.Until = t0.Add(3 * time.Hour)
	if err := s.PutWarm(ctx, late); err != nil {
		t.Fatalf("PutWarm replacing: %v", err)
	}
	list, err := reopen(t).ListWarm(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.Warm{soon, late}, list, opts); diff != "" {
		t.Errorf("ListWarm after reopening, soonest first (-want +got):\n%s", diff)
	}
	if err := s.DeleteWarm(ctx, "acme", "p2", "prod"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteWarm(ctx, "acme", "p2", "prod"); err != nil {
		t.Errorf("DeleteWarm twice: %v, want no error", err)
	}
	if list, _ := s.ListWarm(ctx); len(list) != 1 || list[0].Pipeline != "p1" {
		t.Errorf("ListWarm after the deletion: %+v", list)
	}
}
