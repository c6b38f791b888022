package auth_test

import (
	"net/url"
	"testing"

	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// TestTokenForTenant: an organization admin gets a token for any tenant
// that exists; anyone else only for its own, with one answer whether the
// other tenant exists or not. Every token issued is in the audit log.
func TestTokenForTenant(t *testing.T) {
	f := newFixture(t, auth.Options{})
	f2 := *f
	svc, err := auth.New(auth.Options{Credentials: f.store, Keys: mustKeys(t, f.keys), Issuer: issuer, Now: f.clock.Now, Tenants: f.store, Audit: f.store})
	if err != nil {
		t.Fatal(err)
	}
	f2.svc = svc
	if err := f.store.CreateTenant(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	org, orgSecret := f2.credential(t, store.DefaultTenant, pipeline.RoleOrganizationAdmin)
	ta, taSecret := f2.credential(t, store.DefaultTenant, pipeline.RoleTenantAdmin)
	h := svc.TokenHandler()
	ask := func(id, secret, tenant string) (int, auth.Principal) {
		v := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
		if tenant != "" {
			v.Set("tenant", tenant)
		}
		w := tokenRequest(h, "192.0.2.9:1", v, "", "")
		if w.Code != 200 {
			return w.Code, auth.Principal{}
		}
		p, err := svc.Verify(decode(t, w).AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		return w.Code, p
	}
	if code, p := ask(org.ClientID, orgSecret, "acme"); code != 200 || p.Tenant != "acme" || p.ClientID != org.ClientID {
		t.Errorf("organization admin asking for acme: %d %+v", code, p)
	}
	if code, p := ask(org.ClientID, orgSecret, ""); code != 200 || p.Tenant != store.DefaultTenant {
		t.Errorf("organization admin without tenant: %d %+v", code, p)
	}
	if code, _ := ask(org.ClientID, orgSecret, "nowhere"); code != 400 {
		t.Errorf("organization admin asking for a tenant that does not exist: %d, want 400", code)
	}
	if code, _ := ask(ta.ClientID, taSecret, "acme"); code != 400 {
		t.Errorf("tenant admin asking for another tenant: %d, want 400", code)
	}
	if code, p := ask(ta.ClientID, taSecret, store.DefaultTenant); code != 200 || p.Tenant != store.DefaultTenant {
		t.Errorf("tenant admin naming its own tenant: %d %+v", code, p)
	}
	acme, _ := f.store.ListAudit(t.Context(), "acme", store.AuditFilter{Action: "login"})
	main, _ := f.store.ListAudit(t.Context(), store.DefaultTenant, store.AuditFilter{Action: "login"})
	if len(acme) != 1 || acme[0].ClientID != org.ClientID || acme[0].Remote != "192.0.2.9" || len(main) != 2 {
		t.Errorf("logins recorded: acme %+v, main %+v", acme, main)
	}
}

func mustKeys(t *testing.T, dir string) *auth.KeySet {
	t.Helper()
	ks, err := auth.LoadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func TestSystemRoleGrants(t *testing.T) {
	custom := map[string][]auth.Grant{"qa": {auth.GrantRead}, "approver": {auth.GrantApprove}}
	for _, tc := range []struct {
		roles []string
		g     auth.Grant
		want  bool
	}{
		{[]string{pipeline.RoleViewer}, auth.GrantRead, true},
		{[]string{pipeline.RoleViewer}, auth.GrantApprove, false},
		{[]string{pipeline.RoleAgent}, auth.GrantRead, false},
		{[]string{pipeline.RoleDeployer}, auth.GrantAdmin, false},
		{[]string{pipeline.RoleTenantAdmin}, auth.GrantOrganization, false},
		{[]string{pipeline.RoleOrganizationAdmin}, auth.GrantOrganization, true},
		// An undefined custom role gives nothing, not even approve.
		{[]string{"release-manager"}, auth.GrantApprove, false},
		{[]string{"release-manager"}, auth.GrantRead, false},
		{[]string{"qa"}, auth.GrantApprove, false},
		{[]string{"approver"}, auth.GrantApprove, true},
		{[]string{"qa"}, auth.GrantRead, true},
		{[]string{"qa"}, auth.GrantDeploy, false},
	} {
		if got := auth.Has(tc.roles, custom, tc.g); got != tc.want {
			t.Errorf("Has(%v, %s) = %v, want %v", tc.roles, tc.g, got, tc.want)
		}
	}
}
