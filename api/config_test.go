package api_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// config apply through the API: tenants created, custom roles created,
// updated, kept or (with allowAutoDelete) deleted, idempotent, validated
// before anything changes, organization admins only, audited; and a
// role's grants take effect on the routes.
func TestConfigApply(t *testing.T) {
	h := newHarness(t)
	org, _ := h.token(store.DefaultTenant, pipeline.RoleOrganizationAdmin)
	apply := func(c api.Config, status int) []string {
		t.Helper()
		resp := h.do("PUT", "/api/v1/config", org, c)
		if resp.status != status {
			t.Fatalf("apply: %d %s, want %d", resp.status, resp.body, status)
		}
		var ch api.ConfigChanges
		json.Unmarshal(resp.body, &ch)
		return ch.Changes
	}
	get := func() api.Config {
		t.Helper()
		resp := h.do("GET", "/api/v1/config", org, nil)
		var c api.Config
		if resp.status != 200 || json.Unmarshal(resp.body, &c) != nil {
			t.Fatalf("get: %d %s", resp.status, resp.body)
		}
		return c
	}
	first := api.Config{Tenants: []api.TenantConfig{
		{Name: "main", Roles: []api.RoleConfig{{Name: "ops", Grants: []string{"read", "deploy"}}, {Name: "qa", Grants: []string{"approve"}}}},
		{Name: "acme", Roles: []api.RoleConfig{{Name: "auditor", Grants: []string{"read", "admin"}}}},
	}}
	got := apply(first, 200)
	want := []string{"role main/ops created", "role main/qa created", "tenant acme created", "role acme/auditor created"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("first apply (-want +got):\n%s", diff)
	}
	if got := apply(first, 200); len(got) != 0 {
		t.Errorf("the same file again changed %q", got)
	}
	wantGet := api.Config{Tenants: []api.TenantConfig{
		{Name: "acme", Roles: []api.RoleConfig{{Name: "auditor", Grants: []string{"read", "admin"}}}},
		{Name: "main", Roles: []api.RoleConfig{{Name: "ops", Grants: []string{"read", "deploy"}}, {Name: "qa", Grants: []string{"approve"}}}},
		{Name: otherTenant},
	}}
	if diff := cmp.Diff(wantGet, get()); diff != "" {
		t.Errorf("get (-want +got):\n%s", diff)
	}

	// A custom role's grants work on the routes.
	ops, _ := h.token(store.DefaultTenant, "ops")
	if resp := h.do("GET", "/api/v1/pipelines", ops, nil); resp.status != 200 {
		t.Errorf("ops lists pipelines: %d", resp.status)
	}

	// Without allowAutoDelete a role the file leaves out is kept, and said
	// so; a changed role is updated.
	second := api.Config{Tenants: []api.TenantConfig{{Name: "main", Roles: []api.RoleConfig{{Name: "qa", Grants: []string{"approve", "read"}}}}}}
	got = apply(second, 200)
	want = []string{"role main/qa updated", "role main/ops kept: not in the file, and allowAutoDelete is false"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("apply without allowAutoDelete (-want +got):\n%s", diff)
	}
	if resp := h.do("GET", "/api/v1/pipelines", ops, nil); resp.status != 200 {
		t.Errorf("ops after a kept role: %d", resp.status)
	}
	// With allowAutoDelete it goes; tenants the file does not list, and
	// their roles, are untouched; no tenant is ever removed.
	second.AllowAutoDelete = true
	got = apply(second, 200)
	if diff := cmp.Diff([]string{"role main/ops deleted"}, got); diff != "" {
		t.Errorf("apply with allowAutoDelete (-want +got):\n%s", diff)
	}
	wantGet.Tenants[1].Roles = []api.RoleConfig{{Name: "qa", Grants: []string{"approve", "read"}}}
	if diff := cmp.Diff(wantGet, get()); diff != "" {
		t.Errorf("get after the deletion (-want +got):\n%s", diff)
	}
	if resp := h.do("GET", "/api/v1/pipelines", ops, nil); resp.status != 403 {
		t.Errorf("ops after its role was deleted: %d, want 403", resp.status)
	}

	// Invalid files change nothing.
	for name, c := range map[string]api.Config{
		"system role":    {Tenants: []api.TenantConfig{{Name: "main", Roles: []api.RoleConfig{{Name: pipeline.RoleDeployer, Grants: []string{"read"}}}}}},
		"grant too high": {Tenants: []api.TenantConfig{{Name: "main", Roles: []api.RoleConfig{{Name: "boss", Grants: []string{"organization"}}}}}},
		"role twice":     {Tenants: []api.TenantConfig{{Name: "main", Roles: []api.RoleConfig{{Name: "a", Grants: []string{}}, {Name: "a"}}}}},
		"tenant twice":   {Tenants: []api.TenantConfig{{Name: "zeta"}, {Name: "zeta"}}},
		"bad name":       {Tenants: []api.TenantConfig{{Name: "Zeta Corp"}}},
	} {
		resp := h.do("PUT", "/api/v1/config", org, c)
		if resp.status != 400 {
			t.Errorf("%s: %d %s, want 400", name, resp.status, resp.body)
		}
	}
	if diff := cmp.Diff(wantGet, get()); diff != "" {
		t.Errorf("get after refused files (-want +got):\n%s", diff)
	}

	// Organization admins only; every apply is audited.
	tenantAdmin, _ := h.token(store.DefaultTenant, pipeline.RoleTenantAdmin)
	if resp := h.do("PUT", "/api/v1/config", tenantAdmin, first); resp.status != 403 {
		t.Errorf("a tenant admin applies: %d", resp.status)
	}
	if resp := h.do("GET", "/api/v1/config", tenantAdmin, nil); resp.status != 403 {
		t.Errorf("a tenant admin reads the configuration: %d", resp.status)
	}
	entries, err := h.store.ListAudit(t.Context(), store.DefaultTenant, store.AuditFilter{Action: "config.apply"})
	if err != nil || len(entries) != 4 {
		t.Errorf("config.apply audit entries: %d, %v", len(entries), err)
	}
}
