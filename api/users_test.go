package api_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// login gets a user's tokens with the password grant.
func (h *harness) login(tenant, username, password string) (status int, access, refresh string) {
	h.t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}, "tenant": {tenant}}
	resp := h.do("POST", "/oauth/token", "", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	json.Unmarshal(resp.body, &tok)
	return resp.status, tok.AccessToken, tok.RefreshToken
}

func TestUsers(t *testing.T) {
	h := newHarness(t)
	admin, _ := h.token(store.DefaultTenant, pipeline.RoleTenantAdmin)
	const pw = "a long enough password"

	resp := h.do("POST", "/api/v1/users", admin, api.CreateUserRequest{Username: "alice", Name: "Alice", Password: pw, Roles: []string{"deployer"}})
	if resp.status != 201 || resp.header.Get("Location") != "/api/v1/users/alice" {
		t.Fatalf("create: %d %s", resp.status, resp.body)
	}
	if strings.Contains(string(resp.body), pw) || strings.Contains(string(resp.body), "argon2") {
		t.Errorf("the answer shows the password or its hash: %s", resp.body)
	}
	for name, tc := range map[string]struct {
		req    api.CreateUserRequest
		status int
	}{
		"taken":          {api.CreateUserRequest{Username: "alice", Password: pw, Roles: []string{"viewer"}}, 409},
		"weak password":  {api.CreateUserRequest{Username: "bob", Password: "short", Roles: []string{"viewer"}}, 400},
		"bad username":   {api.CreateUserRequest{Username: "Bob Smith", Password: pw, Roles: []string{"viewer"}}, 400},
		"no roles":       {api.CreateUserRequest{Username: "bob", Password: pw}, 400},
		"above the role": {api.CreateUserRequest{Username: "bob", Password: pw, Roles: []string{pipeline.RoleOrganizationAdmin}}, 403},
	} {
		if resp := h.do("POST", "/api/v1/users", admin, tc.req); resp.status != tc.status {
			t.Errorf("%s: %d %s, want %d", name, resp.status, resp.body, tc.status)
		}
	}

	// The user logs in and sees itself through /account.
	status, access, refresh := h.login(store.DefaultTenant, "alice", pw)
	if status != 200 || refresh == "" {
		t.Fatalf("login: %d", status)
	}
	resp = h.do("GET", "/api/v1/account", access, nil)
	var acct api.Account
	json.Unmarshal(resp.body, &acct)
	want := api.Account{Tenant: store.DefaultTenant, Name: "Alice", Subject: "user:alice", Username: "alice", Roles: []string{"deployer"}}
	if diff := cmp.Diff(want, acct); resp.status != 200 || diff != "" {
		t.Errorf("account: %d (-want +got):\n%s", resp.status, diff)
	}
	if resp := h.do("GET", "/api/v1/users", access, nil); resp.status != 403 {
		t.Errorf("a deployer lists users: %d", resp.status)
	}

	// Roles change from the next token; the tokens of the old roles are
	// revoked.
	if resp := h.do("PUT", "/api/v1/users/alice/roles", admin, api.SetRolesRequest{Roles: []string{"viewer"}}); resp.status != 200 {
		t.Fatalf("set roles: %d %s", resp.status, resp.body)
	}
	if resp := h.do("GET", "/api/v1/account", access, nil); resp.status != 401 || !strings.Contains(string(resp.body), "revoked") {
		t.Errorf("a token of the old roles: %d %s, want 401 saying it was revoked", resp.status, resp.body)
	}
	if status, access, refresh = h.login(store.DefaultTenant, "alice", pw); status != 200 {
		t.Fatalf("login with the new roles: %d", status)
	}
	resp = h.do("GET", "/api/v1/users", admin, nil)
	var list api.UserList
	json.Unmarshal(resp.body, &list)
	if len(list.Users) != 1 || list.Users[0].Username != "alice" || !cmp.Equal(list.Users[0].Roles, []string{"viewer"}) || !list.Users[0].HasPassword {
		t.Errorf("list: %s", resp.body)
	}

	// A user changes its own password; a client credential has none.
	if resp := h.do("PUT", "/api/v1/account/password", access, api.ChangePasswordRequest{CurrentPassword: "wrong password", NewPassword: pw + "2"}); resp.status != 403 {
		t.Errorf("wrong current password: %d %s", resp.status, resp.body)
	}
	if resp := h.do("PUT", "/api/v1/account/password", admin, api.ChangePasswordRequest{CurrentPassword: pw, NewPassword: pw + "2"}); resp.status != 400 {
		t.Errorf("a credential's password change: %d %s", resp.status, resp.body)
	}
	if resp := h.do("PUT", "/api/v1/account/password", access, api.ChangePasswordRequest{CurrentPassword: pw, NewPassword: pw + "2"}); resp.status != 204 {
		t.Fatalf("change password: %d %s", resp.status, resp.body)
	}
	if resp := h.do("GET", "/api/v1/account", access, nil); resp.status != 401 {
		t.Errorf("a token from before the new password: %d %s, want 401", resp.status, resp.body)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
	if resp := h.do("POST", "/oauth/token", "", form.Encode(), "Content-Type", "application/x-www-form-urlencoded"); resp.status != 400 {
		t.Errorf("a refresh token from before the new password: %d %s", resp.status, resp.body)
	}
	if status, _, _ := h.login(store.DefaultTenant, "alice", pw+"2"); status != 200 {
		t.Errorf("login with the new password: %d", status)
	}
	// An admin's reset.
	if resp := h.do("PUT", "/api/v1/users/alice/password", admin, api.SetPasswordRequest{Password: pw + "3"}); resp.status != 204 {
		t.Errorf("reset: %d %s", resp.status, resp.body)
	}
	_, _, refresh = h.login(store.DefaultTenant, "alice", pw+"3")

	// Another tenant's admin sees nothing and touches nothing.
	other, _ := h.token(otherTenant, pipeline.RoleTenantAdmin)
	for _, r := range []struct{ method, path string }{{"DELETE", "/api/v1/users/alice"}, {"PUT", "/api/v1/users/alice/roles"}, {"PUT", "/api/v1/users/alice/password"}} {
		var body any
		switch {
		case strings.HasSuffix(r.path, "/roles"):
			body = api.SetRolesRequest{Roles: []string{"viewer"}}
		case strings.HasSuffix(r.path, "/password"):
			body = api.SetPasswordRequest{Password: pw + "4"}
		}
		if resp := h.do(r.method, r.path, other, body); resp.status != 404 {
			t.Errorf("%s %s by another tenant: %d %s", r.method, r.path, resp.status, resp.body)
		}
	}
	if resp := h.do("GET", "/api/v1/users", other, nil); strings.Contains(string(resp.body), "alice") {
		t.Errorf("another tenant's list: %s", resp.body)
	}

	// Delete: the user's refresh tokens die with it.
	if resp := h.do("DELETE", "/api/v1/users/alice", admin, nil); resp.status != 204 {
		t.Fatalf("delete: %d %s", resp.status, resp.body)
	}
	form = url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
	if resp := h.do("POST", "/oauth/token", "", form.Encode(), "Content-Type", "application/x-www-form-urlencoded"); resp.status != 400 {
		t.Errorf("a deleted user's refresh token: %d %s", resp.status, resp.body)
	}
}
