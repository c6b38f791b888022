package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie-cd/sortie/store"
)

func testSecrets(t *testing.T, open Opener) {
	s, reopen := open(t)
	ctx := t.Context()
	createTenant(t, s, "acme")
	a := store.Secret{Tenant: store.DefaultTenant, Name: "token", Ciphertext: []byte{1, 2, 3}, UpdatedAt: t0}
	b := store.Secret{Tenant: store.DefaultTenant, Name: "api", Ciphertext: []byte{4}, AllowedHosts: []string{"hooks.example.com", "*.example.org:8443"}, UpdatedAt: t0}
	acme := store.Secret{Tenant: "acme", Name: "token", Ciphertext: []byte{9}, UpdatedAt: t0}
	for _, sec := range []store.Secret{a, b, acme} {
		if err := s.PutSecret(ctx, sec); err != nil {
			t.Fatalf("PutSecret %s/%s: %v", sec.Tenant, sec.Name, err)
		}
	}
	wantErr(t, "PutSecret in an unknown tenant", s.PutSecret(ctx, store.Secret{Tenant: "nobody", Name: "x", Ciphertext: []byte{1}}), store.ErrNotFound)
	a.Ciphertext, a.UpdatedAt = []byte{7, 7}, t0.Add(time.Minute)
	if err := s.PutSecret(ctx, a); err != nil {
		t.Fatalf("PutSecret replacing: %v", err)
	}
	got, err := s.GetSecret(ctx, store.DefaultTenant, "token")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, *got, opts); diff != "" {
		t.Errorf("GetSecret after a replace (-want +got):\n%s", diff)
	}
	_, err = s.GetSecret(ctx, "acme", "api")
	wantErr(t, "GetSecret of another tenant's name", err, store.ErrNotFound)
	list, err := s.ListSecrets(ctx, store.DefaultTenant)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Secret{{Tenant: store.DefaultTenant, Name: "api", AllowedHosts: b.AllowedHosts, UpdatedAt: t0}, {Tenant: store.DefaultTenant, Name: "token", UpdatedAt: t0.Add(time.Minute)}}
	if diff := cmp.Diff(want, list, opts); diff != "" {
		t.Errorf("ListSecrets: names, allowed hosts and times by name, no ciphertext (-want +got):\n%s", diff)
	}
	if got, err := s.GetSecret(ctx, store.DefaultTenant, "api"); err != nil || !cmp.Equal(b, *got, opts) {
		t.Errorf("GetSecret of a secret with allowed hosts: %+v, %v", got, err)
	}
	b.AllowedHosts = nil
	if err := s.PutSecret(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetSecret(ctx, store.DefaultTenant, "api"); err != nil || got.AllowedHosts != nil {
		t.Errorf("a replace without allowed hosts keeps them: %+v, %v", got, err)
	}
	wantErr(t, "DeleteSecret of another tenant's name", s.DeleteSecret(ctx, "acme", "api"), store.ErrNotFound)
	if err := s.DeleteSecret(ctx, store.DefaultTenant, "token"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteSecret twice", s.DeleteSecret(ctx, store.DefaultTenant, "token"), store.ErrNotFound)
	s2 := reopen(t)
	if got, err := s2.GetSecret(ctx, "acme", "token"); err != nil || !cmp.Equal(acme, *got, opts) {
		t.Errorf("after reopening, acme's secret: %+v, %v", got, err)
	}
}

func testDataKeys(t *testing.T, open Opener) {
	s, _ := open(t)
	ctx := t.Context()
	createTenant(t, s, "acme")
	k := store.DataKey{Tenant: "acme", MasterKeyID: "m1", Wrapped: []byte{1, 2}, CreatedAt: t0}
	if err := s.CreateDataKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "CreateDataKey twice", s.CreateDataKey(ctx, k), store.ErrConflict)
	wantErr(t, "CreateDataKey for an unknown tenant", s.CreateDataKey(ctx, store.DataKey{Tenant: "nobody", MasterKeyID: "m1", Wrapped: []byte{1}}), store.ErrNotFound)
	_, err := s.GetDataKey(ctx, store.DefaultTenant)
	wantErr(t, "GetDataKey of a tenant without one", err, store.ErrNotFound)
	got, err := s.GetDataKey(ctx, "acme")
	if err != nil || !cmp.Equal(k, *got, opts) {
		t.Errorf("GetDataKey: %+v, %v, want %+v", got, err, k)
	}
	k2 := store.DataKey{Tenant: "acme", MasterKeyID: "m2", Wrapped: []byte{3}, CreatedAt: t0}
	if err := s.ReplaceDataKey(ctx, k, k2); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "ReplaceDataKey from a stale key", s.ReplaceDataKey(ctx, k, k2), store.ErrConflict)
	list, err := s.ListDataKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.DataKey{k2}, list, opts); diff != "" {
		t.Errorf("ListDataKeys after a replace (-want +got):\n%s", diff)
	}
}

func testRoles(t *testing.T, open Opener) {
	s, _ := open(t)
	ctx := t.Context()
	createTenant(t, s, "acme")
	rm := store.Role{Tenant: store.DefaultTenant, Name: "release-manager", Grants: []string{"read", "approve"}, UpdatedAt: t0}
	qa := store.Role{Tenant: store.DefaultTenant, Name: "qa", Grants: []string{"read"}, UpdatedAt: t0}
	for _, r := range []store.Role{rm, qa, {Tenant: "acme", Name: "qa", UpdatedAt: t0}} {
		if err := s.PutRole(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, "PutRole in an unknown tenant", s.PutRole(ctx, store.Role{Tenant: "nobody", Name: "x"}), store.ErrNotFound)
	rm.Grants = []string{"approve"}
	if err := s.PutRole(ctx, rm); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListRoles(ctx, store.DefaultTenant)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.Role{qa, rm}, list, opts); diff != "" {
		t.Errorf("ListRoles (-want +got):\n%s", diff)
	}
	wantErr(t, "DeleteRole of another tenant's role", s.DeleteRole(ctx, "acme", "release-manager"), store.ErrNotFound)
	if err := s.DeleteRole(ctx, store.DefaultTenant, "qa"); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListRoles(ctx, "acme"); len(list) != 1 {
		t.Errorf("acme's roles after deleting main's qa: %v", list)
	}

	c := store.Credential{Tenant: store.DefaultTenant, ClientID: "c1", Name: "bot", SecretHash: []byte{1}, Roles: []string{"viewer"}, CreatedAt: t0}
	if err := s.CreateCredential(ctx, c); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "SetCredentialRoles of another tenant's client id", s.SetCredentialRoles(ctx, "acme", "c1", []string{"deployer"}), store.ErrNotFound)
	if err := s.SetCredentialRoles(ctx, store.DefaultTenant, "c1", []string{"deployer", "qa"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetCredential(ctx, "c1")
	if err != nil || !cmp.Equal(got.Roles, []string{"deployer", "qa"}) {
		t.Errorf("roles after SetCredentialRoles: %+v, %v", got, err)
	}
}

func testAudit(t *testing.T, open Opener) {
	s, reopen := open(t)
	ctx := t.Context()
	createTenant(t, s, "acme")
	entries := []store.AuditEntry{
		{Tenant: store.DefaultTenant, At: t0, Actor: "alice", ClientID: "c1", Remote: "10.0.0.1", Action: "pipeline.start", Objects: []string{"p1"}},
		{Tenant: "acme", At: t0.Add(time.Second), Actor: "mallory", ClientID: "c9", Remote: "10.0.0.9", Action: "secret.put", Objects: []string{"token"}},
		{Tenant: store.DefaultTenant, At: t0.Add(2 * time.Second), Actor: "bob", ClientID: "c2", Remote: "10.0.0.2", Action: "pipeline.approve", Objects: []string{"p1", "prod"}},
		{Tenant: store.DefaultTenant, At: t0.Add(3 * time.Second), Actor: "alice", ClientID: "c1", Remote: "10.0.0.1", Action: "login"},
	}
	for _, e := range entries {
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, "AppendAudit in an unknown tenant", s.AppendAudit(ctx, store.AuditEntry{Tenant: "nobody", Action: "x"}), store.ErrNotFound)
	ignoreSeq := cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Seq" }, cmp.Ignore())
	s2 := reopen(t)
	for _, tc := range []struct {
		name string
		f    store.AuditFilter
		want []store.AuditEntry
	}{
		{"all, newest first", store.AuditFilter{}, []store.AuditEntry{entries[3], entries[2], entries[0]}},
		{"by actor name", store.AuditFilter{Actor: "bob"}, []store.AuditEntry{entries[2]}},
		{"by client id", store.AuditFilter{Actor: "c1"}, []store.AuditEntry{entries[3], entries[0]}},
		{"by action", store.AuditFilter{Action: "pipeline.start"}, []store.AuditEntry{entries[0]}},
		{"since and until", store.AuditFilter{Since: t0.Add(time.Second), Until: t0.Add(3 * time.Second)}, []store.AuditEntry{entries[2]}},
		{"limit", store.AuditFilter{Limit: 1}, []store.AuditEntry{entries[3]}},
	} {
		got, err := s2.ListAudit(ctx, store.DefaultTenant, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got, opts, ignoreSeq); diff != "" {
			t.Errorf("ListAudit %s (-want +got):\n%s", tc.name, diff)
		}
		for i := 1; i < len(got); i++ {
			if got[i].Seq >= got[i-1].Seq {
				t.Errorf("ListAudit %s: seq %d after %d, want decreasing", tc.name, got[i].Seq, got[i-1].Seq)
			}
		}
	}
}
