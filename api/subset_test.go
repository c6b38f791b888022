package api_test

import (
	"encoding/json"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// clientToken gets a token at the token endpoint with a client credential.
func (h *harness) clientToken(id, secret string) (int, string) {
	h.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	resp := h.do("POST", "/oauth/token", "", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(resp.body, &tok)
	return resp.status, tok.AccessToken
}

// bootstrap gives the harness's tenant main the real bootstrap credential
// (auth.Bootstrap, as a new server does) and returns it with a token.
func (h *harness) bootstrap() (auth.CredentialsFile, string) {
	h.t.Helper()
	path, err := auth.Bootstrap(h.t.Context(), h.store, h.t.TempDir(), h.srv.URL)
	if err != nil || path == "" {
		h.t.Fatalf("bootstrap: %q %v", path, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		h.t.Fatal(err)
	}
	var cf auth.CredentialsFile
	if err := json.Unmarshal(b, &cf); err != nil {
		h.t.Fatal(err)
	}
	status, tok := h.clientToken(cf.ClientID, cf.ClientSecret)
	if status != 200 {
		h.t.Fatalf("bootstrap token: %d", status)
	}
	return cf, tok
}

// rolesOf returns the roles of the user or credential (kind "users" or
// "credentials") called name, as its list route shows them.
func (h *harness) rolesOf(admin, kind, name string) []string {
	h.t.Helper()
	resp := h.do("GET", "/api/v1/"+kind, admin, nil)
	var list map[string][]struct {
		Username, ClientID string
		Roles              []string
	}
	json.Unmarshal(resp.body, &list)
	for _, p := range list[kind] {
		if p.Username == name || p.ClientID == name {
			return p.Roles
		}
	}
	h.t.Fatalf("no %s %s: %s", kind, name, resp.body)
	return nil
}

// TestTenantAdminCannotBecomeOrganizationAdmin reproduces issue 16 item 1:
// a tenant admin reset an organization admin's password, logged in as
// them and minted an organization-admin credential; it could also demote
// or delete organization admins, the bootstrap credential included. Each
// step is now refused (403), and nothing changed; what a tenant admin may
// do to principals within its own grants still works.
func TestTenantAdminCannotBecomeOrganizationAdmin(t *testing.T) {
	h := newHarness(t)
	boot, root := h.bootstrap()
	const pw, evil = "olga's own long password", "the attacker's password"
	if resp := h.do("POST", "/api/v1/users", root, api.CreateUserRequest{Username: "olga", Password: pw, Roles: []string{pipeline.RoleOrganizationAdmin}}); resp.status != 201 {
		t.Fatalf("org admin creates an org-admin user: %d %s", resp.status, resp.body)
	}
	ta, _ := h.token(store.DefaultTenant, pipeline.RoleTenantAdmin)

	// The attack: reset, then log in as the organization admin.
	resp := h.do("PUT", "/api/v1/users/olga/password", ta, api.SetPasswordRequest{Password: evil})
	if resp.status != 403 || !strings.Contains(string(resp.body), "organization") {
		t.Errorf("tenant admin resets an org admin's password: %d %s, want 403 naming the grant", resp.status, resp.body)
	}
	if status, _, _ := h.login(store.DefaultTenant, "olga", evil); status == 200 {
		t.Fatal("the tenant admin logs in as the organization admin")
	}
	if status, _, _ := h.login(store.DefaultTenant, "olga", pw); status != 200 {
		t.Errorf("olga's own password: %d", status)
	}
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"PUT", "/api/v1/users/olga/roles", api.SetRolesRequest{Roles: []string{pipeline.RoleViewer}}},
		{"DELETE", "/api/v1/users/olga", nil},
		{"PUT", "/api/v1/credentials/" + boot.ClientID + "/roles", api.SetRolesRequest{Roles: []string{pipeline.RoleViewer}}},
		{"DELETE", "/api/v1/credentials/" + boot.ClientID, nil},
		{"POST", "/api/v1/credentials", api.CreateCredentialRequest{Name: "backdoor", Roles: []string{pipeline.RoleOrganizationAdmin}}},
		{"POST", "/api/v1/users", api.CreateUserRequest{Username: "mallory", Password: evil, Roles: []string{pipeline.RoleOrganizationAdmin}}},
	} {
		if resp := h.do(c.method, c.path, ta, c.body); resp.status != 403 || resp.errors(t).Errors[0].Code != api.CodeForbidden {
			t.Errorf("tenant admin: %s %s: %d %s, want 403", c.method, c.path, resp.status, resp.body)
		}
	}
	// Nothing changed: olga and the bootstrap credential keep their role,
	// and the bootstrap secret still gets a token.
	if got := h.rolesOf(root, "users", "olga"); !slices.Equal(got, []string{pipeline.RoleOrganizationAdmin}) {
		t.Errorf("olga's roles after the attack: %v", got)
	}
	if got := h.rolesOf(root, "credentials", boot.ClientID); !slices.Equal(got, []string{pipeline.RoleOrganizationAdmin}) {
		t.Errorf("the bootstrap credential's roles after the attack: %v", got)
	}
	if status, _ := h.clientToken(boot.ClientID, boot.ClientSecret); status != 200 {
		t.Errorf("the bootstrap credential after the attack: %d", status)
	}

	// Within its grants a tenant admin still manages principals: a
	// deployer user, an agent credential, a fellow tenant admin.
	for _, c := range []struct {
		method, path string
		body         any
		status       int
	}{
		{"POST", "/api/v1/users", api.CreateUserRequest{Username: "dev", Password: pw, Roles: []string{pipeline.RoleDeployer}}, 201},
		{"PUT", "/api/v1/users/dev/password", api.SetPasswordRequest{Password: pw + "2"}, 204},
		{"PUT", "/api/v1/users/dev/roles", api.SetRolesRequest{Roles: []string{pipeline.RoleTenantAdmin}}, 200},
		{"PUT", "/api/v1/users/dev/password", api.SetPasswordRequest{Password: pw + "3"}, 204},
		{"DELETE", "/api/v1/users/dev", nil, 204},
		{"POST", "/api/v1/credentials", api.CreateCredentialRequest{Name: "prod cluster", Roles: []string{pipeline.RoleAgent}}, 201},
	} {
		if resp := h.do(c.method, c.path, ta, c.body); resp.status != c.status {
			t.Errorf("tenant admin: %s %s: %d %s, want %d", c.method, c.path, resp.status, resp.body, c.status)
		}
	}
	_, peer := h.token(store.DefaultTenant, pipeline.RoleTenantAdmin)
	if resp := h.do("DELETE", "/api/v1/credentials/"+peer.ClientID, ta, nil); resp.status != 204 {
		t.Errorf("tenant admin deletes another tenant admin's credential: %d %s", resp.status, resp.body)
	}
	// An organization admin may do what the tenant admin may not.
	if resp := h.do("PUT", "/api/v1/users/olga/password", root, api.SetPasswordRequest{Password: pw + "4"}); resp.status != 204 {
		t.Errorf("org admin resets an org admin's password: %d %s", resp.status, resp.body)
	}
	// A missing principal is still 404, not 403.
	if resp := h.do("PUT", "/api/v1/users/nobody/password", ta, api.SetPasswordRequest{Password: evil}); resp.status != 404 {
		t.Errorf("reset of an unknown user: %d %s", resp.status, resp.body)
	}
}

// TestOnlyTheApproveGrantApproves reproduces issue 16 item 2: any custom
// role could approve, one defined with only read and a misspelt one alike,
// and a misspelt role was kept when assigned. Now approve comes only from
// grants, and an undefined role is refused when assigned (400 naming it).
func TestOnlyTheApproveGrantApproves(t *testing.T) {
	h := newHarness(t)
	h.runner.add(samplePipeline(store.DefaultTenant, "p1", time.Now()))
	org, _ := h.token(store.DefaultTenant, pipeline.RoleOrganizationAdmin)
	cfg := api.Config{Tenants: []api.TenantConfig{{Name: store.DefaultTenant, Roles: []api.RoleConfig{
		{Name: "auditor", Grants: []string{"read"}},
		{Name: "release-manager", Grants: []string{"read", "approve"}},
	}}}}
	if resp := h.do("PUT", "/api/v1/config", org, cfg); resp.status != 200 {
		t.Fatalf("config: %d %s", resp.status, resp.body)
	}
	approve := func(tok string) response {
		return h.do("POST", "/api/v1/pipelines/p1/approve", tok, api.ActionRequest{Target: "staging"})
	}
	auditor, _ := h.token(store.DefaultTenant, "auditor")
	if resp := approve(auditor); resp.status != 403 {
		t.Errorf("a read-only custom role approves: %d %s, want 403", resp.status, resp.body)
	}
	// A role name no definition has, as a server before this fix kept it.
	misspelt, _ := h.token(store.DefaultTenant, "relase-manager")
	if resp := approve(misspelt); resp.status != 403 {
		t.Errorf("a misspelt role approves: %d %s, want 403", resp.status, resp.body)
	}
	if len(h.runner.acted) != 0 {
		t.Fatalf("the runner was asked to approve: %v", h.runner.acted)
	}
	rm, _ := h.token(store.DefaultTenant, "release-manager")
	if resp := approve(rm); resp.status != 200 || len(h.runner.acted) != 1 {
		t.Errorf("a custom role defined with approve: %d %s", resp.status, resp.body)
	}

	// Assigning a role that is not defined is refused, naming it.
	ta, taCred := h.token(store.DefaultTenant, pipeline.RoleTenantAdmin)
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/v1/credentials", api.CreateCredentialRequest{Name: "x", Roles: []string{"relase-manager"}}},
		{"POST", "/api/v1/users", api.CreateUserRequest{Username: "rita", Roles: []string{"relase-manager"}}},
		{"PUT", "/api/v1/credentials/" + taCred.ClientID + "/roles", api.SetRolesRequest{Roles: []string{pipeline.RoleTenantAdmin, "relase-manager"}}},
	} {
		resp := h.do(c.method, c.path, ta, c.body)
		if resp.status != 400 || !strings.Contains(resp.errors(t).Errors[0].Message, `role "relase-manager" is not defined in tenant main`) {
			t.Errorf("%s %s with a misspelt role: %d %s, want 400 naming it", c.method, c.path, resp.status, resp.body)
		}
	}
	// A role of another tenant is not defined in this one.
	other, _ := h.token(otherTenant, pipeline.RoleTenantAdmin)
	if resp := h.do("POST", "/api/v1/credentials", other, api.CreateCredentialRequest{Name: "x", Roles: []string{"release-manager"}}); resp.status != 400 {
		t.Errorf("tenant main's custom role given in tenant other: %d %s", resp.status, resp.body)
	}
	if resp := h.do("POST", "/api/v1/users", ta, api.CreateUserRequest{Username: "rita", Roles: []string{"release-manager"}}); resp.status != 201 {
		t.Errorf("a defined custom role: %d %s", resp.status, resp.body)
	}
}

// TestCustomAdminRoleGrantsNoMoreThanItHolds reproduces issue 16 item 3: a
// custom role named admin, defined with read and admin, created
// tenant-admin credentials and gave itself more roles. The subset rule
// holds for custom roles too: it manages viewers and agents only.
func TestCustomAdminRoleGrantsNoMoreThanItHolds(t *testing.T) {
	h := newHarness(t)
	org, _ := h.token(store.DefaultTenant, pipeline.RoleOrganizationAdmin)
	cfg := api.Config{Tenants: []api.TenantConfig{{Name: store.DefaultTenant, Roles: []api.RoleConfig{
		{Name: "admin", Grants: []string{"read", "admin"}},
		{Name: "ops", Grants: []string{"read", "deploy"}},
	}}}}
	if resp := h.do("PUT", "/api/v1/config", org, cfg); resp.status != 200 {
		t.Fatalf("config: %d %s", resp.status, resp.body)
	}
	const pw = "a long enough password"
	for _, u := range []api.CreateUserRequest{
		{Username: "dev", Password: pw, Roles: []string{pipeline.RoleDeployer}},
		{Username: "watcher", Password: pw, Roles: []string{pipeline.RoleViewer}},
	} {
		if resp := h.do("POST", "/api/v1/users", org, u); resp.status != 201 {
			t.Fatalf("create %s: %d %s", u.Username, resp.status, resp.body)
		}
	}
	_, ta := h.token(store.DefaultTenant, pipeline.RoleTenantAdmin)
	ca, self := h.token(store.DefaultTenant, "admin")
	for _, c := range []struct {
		method, path string
		body         any
		status       int
	}{
		// More than it holds: refused.
		{"POST", "/api/v1/credentials", api.CreateCredentialRequest{Name: "x", Roles: []string{pipeline.RoleTenantAdmin}}, 403},
		{"POST", "/api/v1/credentials", api.CreateCredentialRequest{Name: "x", Roles: []string{pipeline.RoleDeployer}}, 403},
		{"POST", "/api/v1/credentials", api.CreateCredentialRequest{Name: "x", Roles: []string{"ops"}}, 403},
		{"POST", "/api/v1/users", api.CreateUserRequest{Username: "eve", Password: pw, Roles: []string{pipeline.RoleTenantAdmin}}, 403},
		{"PUT", "/api/v1/credentials/" + self.ClientID + "/roles", api.SetRolesRequest{Roles: []string{pipeline.RoleTenantAdmin}}, 403},
		{"PUT", "/api/v1/credentials/" + self.ClientID + "/roles", api.SetRolesRequest{Roles: []string{"admin", pipeline.RoleDeployer}}, 403},
		{"DELETE", "/api/v1/credentials/" + ta.ClientID, nil, 403},
		{"PUT", "/api/v1/credentials/" + ta.ClientID + "/roles", api.SetRolesRequest{Roles: []string{pipeline.RoleViewer}}, 403},
		{"PUT", "/api/v1/users/dev/password", api.SetPasswordRequest{Password: pw + "2"}, 403},
		{"PUT", "/api/v1/users/dev/roles", api.SetRolesRequest{Roles: []string{pipeline.RoleViewer}}, 403},
		{"DELETE", "/api/v1/users/dev", nil, 403},
		// Within what it holds: allowed.
		{"POST", "/api/v1/credentials", api.CreateCredentialRequest{Name: "dashboard", Roles: []string{pipeline.RoleViewer}}, 201},
		{"POST", "/api/v1/credentials", api.CreateCredentialRequest{Name: "cluster", Roles: []string{pipeline.RoleAgent}}, 201},
		{"POST", "/api/v1/credentials", api.CreateCredentialRequest{Name: "peer", Roles: []string{"admin"}}, 201},
		{"PUT", "/api/v1/users/watcher/password", api.SetPasswordRequest{Password: pw + "2"}, 204},
		{"PUT", "/api/v1/credentials/" + self.ClientID + "/roles", api.SetRolesRequest{Roles: []string{"admin", pipeline.RoleViewer}}, 200},
	} {
		if resp := h.do(c.method, c.path, ca, c.body); resp.status != c.status {
			t.Errorf("custom admin: %s %s %v: %d %s, want %d", c.method, c.path, c.body, resp.status, resp.body, c.status)
		}
	}
	if got := h.rolesOf(org, "credentials", self.ClientID); !slices.Equal(got, []string{"admin", pipeline.RoleViewer}) {
		t.Errorf("the custom admin's roles: %v", got)
	}
	if got := h.rolesOf(org, "users", "dev"); !slices.Equal(got, []string{pipeline.RoleDeployer}) {
		t.Errorf("dev's roles: %v", got)
	}
	// Its own roles changed: its token is revoked, the next one works.
	if resp := h.do("GET", "/api/v1/account", ca, nil); resp.status != 401 {
		t.Errorf("the custom admin's token from before its roles changed: %d %s, want 401", resp.status, resp.body)
	}
	self.Roles = []string{"admin", pipeline.RoleViewer}
	tok, err := h.auth.Issue(&self)
	if err != nil {
		t.Fatal(err)
	}
	ca = tok.AccessToken
	// Config apply holds a role's definition to the same rule: only a
	// caller holding every grant defines it (today only organization admins
	// reach the route, and they hold every grant a custom role may give).
	if resp := h.do("PUT", "/api/v1/config", ca, cfg); resp.status != 403 {
		t.Errorf("custom admin applies the configuration: %d %s", resp.status, resp.body)
	}
}

// TestRefusedRequestsAreAudited reproduces issue 16 item 15 for the API:
// a request refused with 403 left no trace. It is now an audit entry
// "denied" naming the route, and the path's ids when the handler refused
// after finding them in the caller's tenant (here the subset rule).
func TestRefusedRequestsAreAudited(t *testing.T) {
	h := newHarness(t)
	org, _ := h.token(store.DefaultTenant, pipeline.RoleOrganizationAdmin)
	if resp := h.do("POST", "/api/v1/users", org, api.CreateUserRequest{Username: "olga", Roles: []string{pipeline.RoleOrganizationAdmin}}); resp.status != 201 {
		t.Fatalf("create olga: %d %s", resp.status, resp.body)
	}
	viewer, vc := h.token(store.DefaultTenant, pipeline.RoleViewer)
	ta, tc := h.token(store.DefaultTenant, pipeline.RoleTenantAdmin)
	if resp := h.do("GET", "/api/v1/credentials", viewer, nil); resp.status != 403 {
		t.Fatalf("viewer lists credentials: %d", resp.status)
	}
	// Refused for the route's grant, before any lookup: the id (which
	// might be another tenant's) stays out of this tenant's log.
	if resp := h.do("DELETE", "/api/v1/credentials/some-other-tenants-id", viewer, nil); resp.status != 403 {
		t.Fatalf("viewer deletes a credential: %d", resp.status)
	}
	if resp := h.do("PUT", "/api/v1/users/olga/password", ta, api.SetPasswordRequest{Password: "the attacker's password"}); resp.status != 403 {
		t.Fatalf("tenant admin resets olga: %d", resp.status)
	}
	if resp := h.do("GET", "/api/v1/credentials", ta, nil); resp.status != 200 {
		t.Fatalf("tenant admin lists credentials: %d", resp.status)
	}
	es, err := h.store.ListAudit(t.Context(), store.DefaultTenant, store.AuditFilter{Action: api.ActionDenied})
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		ClientID, Remote string
		Objects          []string
	}
	var got []entry
	for i := len(es) - 1; i >= 0; i-- {
		got = append(got, entry{es[i].ClientID, es[i].Remote, es[i].Objects})
	}
	want := []entry{
		{vc.ClientID, "127.0.0.1", []string{"GET /api/v1/credentials"}},
		{vc.ClientID, "127.0.0.1", []string{"DELETE /api/v1/credentials/{id}"}},
		{tc.ClientID, "127.0.0.1", []string{"PUT /api/v1/users/{username}/password", "olga"}},
	}
	if !slices.EqualFunc(want, got, func(a, b entry) bool {
		return a.ClientID == b.ClientID && a.Remote == b.Remote && slices.Equal(a.Objects, b.Objects)
	}) {
		t.Errorf("denied entries: %+v, want %+v", got, want)
	}
	if all, _ := h.store.ListAudit(t.Context(), store.DefaultTenant, store.AuditFilter{}); slices.ContainsFunc(all, func(e store.AuditEntry) bool {
		return slices.ContainsFunc(e.Objects, func(o string) bool { return strings.Contains(o, "attacker") })
	}) {
		t.Error("an audit entry holds the password tried")
	}
}
