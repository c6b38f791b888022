package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

func listTenants(t *testing.T, s store.Store) []string {
	t.Helper()
	got, err := s.ListTenants(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return got
}

func testTenants(t *testing.T, open Opener) {
	s, _ := open(t)
	if diff := cmp.Diff([]string{store.DefaultTenant}, listTenants(t, s)); diff != "" {
		t.Errorf("tenants of a new store (-want +got):\n%s", diff)
	}
	createTenant(t, s, "acme")
	createTenant(t, s, "zeta")
	wantErr(t, "CreateTenant of an existing tenant", s.CreateTenant(t.Context(), "acme"), store.ErrConflict)
	wantErr(t, "CreateTenant of the default tenant", s.CreateTenant(t.Context(), store.DefaultTenant), store.ErrConflict)
	if diff := cmp.Diff([]string{"acme", store.DefaultTenant, "zeta"}, listTenants(t, s)); diff != "" {
		t.Errorf("tenants (-want +got):\n%s", diff)
	}
}

func testCredentials(t *testing.T, open Opener) {
	s, _ := open(t)
	ctx := t.Context()
	createTenant(t, s, "acme")
	admin := store.Credential{Tenant: store.DefaultTenant, ClientID: "admin", Name: "first admin",
		SecretHash: []byte{0, 1, 2, 0xfe, 0xff}, Roles: []string{pipeline.RoleOrganizationAdmin}, CreatedAt: t0}
	ci := store.Credential{Tenant: store.DefaultTenant, ClientID: "ci", Name: "ci",
		SecretHash: []byte("$argon2id$v=19$..."), Roles: []string{pipeline.RoleDeployer, "release-manager"}, CreatedAt: t0.Add(time.Second)}
	agent := store.Credential{Tenant: "acme", ClientID: "acme-agent", Name: "agent in prod",
		SecretHash: []byte("hash"), Roles: []string{pipeline.RoleAgent}, CreatedAt: t0}
	for _, c := range []store.Credential{admin, ci, agent} {
		if err := s.CreateCredential(ctx, c); err != nil {
			t.Fatalf("CreateCredential %s: %v", c.ClientID, err)
		}
	}
	dup := agent
	dup.Tenant = store.DefaultTenant
	wantErr(t, "CreateCredential of a client id taken in another tenant", s.CreateCredential(ctx, dup), store.ErrConflict)
	wantErr(t, "CreateCredential of a client id taken in its tenant", s.CreateCredential(ctx, ci), store.ErrConflict)
	wantErr(t, "CreateCredential in an unknown tenant", s.CreateCredential(ctx, store.Credential{Tenant: "nobody", ClientID: "x", SecretHash: []byte("h")}), store.ErrNotFound)

	// GetCredential looks across tenants.
	for _, want := range []store.Credential{admin, ci, agent} {
		got, err := s.GetCredential(ctx, want.ClientID)
		if err != nil {
			t.Fatalf("GetCredential %s: %v", want.ClientID, err)
		}
		if diff := cmp.Diff(want, *got, opts); diff != "" {
			t.Errorf("GetCredential %s (-want +got):\n%s", want.ClientID, diff)
		}
	}
	_, err := s.GetCredential(ctx, "nope")
	wantErr(t, "GetCredential of an unknown client id", err, store.ErrNotFound)

	list := func(tenant string) []store.Credential {
		t.Helper()
		got, err := s.ListCredentials(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(got, func(a, b store.Credential) int { return strings.Compare(a.ClientID, b.ClientID) })
		return got
	}
	if diff := cmp.Diff([]store.Credential{admin, ci}, list(store.DefaultTenant), opts); diff != "" {
		t.Errorf("ListCredentials(main) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]store.Credential{agent}, list("acme"), opts); diff != "" {
		t.Errorf("ListCredentials(acme) (-want +got):\n%s", diff)
	}
	if got := list("nobody"); len(got) != 0 {
		t.Errorf("ListCredentials(nobody) = %+v", got)
	}

	// DeleteCredential is scoped: acme cannot delete main's admin.
	wantErr(t, "DeleteCredential of another tenant's client id", s.DeleteCredential(ctx, "acme", admin.ClientID), store.ErrNotFound)
	if _, err := s.GetCredential(ctx, admin.ClientID); err != nil {
		t.Errorf("admin credential after another tenant's delete: %v", err)
	}
	if err := s.DeleteCredential(ctx, store.DefaultTenant, ci.ClientID); err != nil {
		t.Fatalf("DeleteCredential: %v", err)
	}
	_, err = s.GetCredential(ctx, ci.ClientID)
	wantErr(t, "GetCredential after delete", err, store.ErrNotFound)
	wantErr(t, "DeleteCredential again", s.DeleteCredential(ctx, store.DefaultTenant, ci.ClientID), store.ErrNotFound)
	if diff := cmp.Diff([]store.Credential{admin}, list(store.DefaultTenant), opts); diff != "" {
		t.Errorf("ListCredentials(main) after delete (-want +got):\n%s", diff)
	}
	// A deleted client id may be issued again.
	if err := s.CreateCredential(ctx, ci); err != nil {
		t.Errorf("CreateCredential of a deleted client id: %v", err)
	}
}

func testAgentBindings(t *testing.T, open Opener) {
	s, _ := open(t)
	ctx := t.Context()
	createTenant(t, s, "acme")
	for _, c := range []store.Credential{
		{Tenant: store.DefaultTenant, ClientID: "first", SecretHash: []byte("h"), Roles: []string{pipeline.RoleAgent}, CreatedAt: t0},
		{Tenant: store.DefaultTenant, ClientID: "second", SecretHash: []byte("h"), Roles: []string{pipeline.RoleAgent}, CreatedAt: t0},
		{Tenant: "acme", ClientID: "acme-agent", SecretHash: []byte("h"), Roles: []string{pipeline.RoleAgent}, CreatedAt: t0},
	} {
		if err := s.CreateCredential(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	bind := func(tenant, agentID, clientID, want string) {
		t.Helper()
		got, err := s.BindAgent(ctx, tenant, agentID, clientID, t0)
		if err != nil || got != want {
			t.Errorf("BindAgent(%s, %s, %s) = %q, %v; want %q", tenant, agentID, clientID, got, err, want)
		}
	}
	bind(store.DefaultTenant, "prod", "first", "first")
	bind(store.DefaultTenant, "prod", "second", "first") // taken
	bind(store.DefaultTenant, "prod", "first", "first")  // again, same owner
	bind("acme", "prod", "acme-agent", "acme-agent")     // another tenant's id space
	got, err := s.AgentBindings(ctx, store.DefaultTenant)
	if err != nil || !cmp.Equal(got, map[string]string{"prod": "first"}) {
		t.Errorf("AgentBindings = %v, %v", got, err)
	}
	// Deleting the owner releases the id.
	if err := s.DeleteCredential(ctx, store.DefaultTenant, "first"); err != nil {
		t.Fatal(err)
	}
	bind(store.DefaultTenant, "prod", "second", "second")
	if got, _ := s.AgentBindings(ctx, "acme"); !cmp.Equal(got, map[string]string{"prod": "acme-agent"}) {
		t.Errorf("acme's bindings = %v", got)
	}
}
