package api_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

func TestCredentials(t *testing.T) {
	h := newHarness(t)
	admin, adminCred := h.token(store.DefaultTenant, pipeline.RoleTenantAdmin)

	// Create: the secret is shown this once, and works at the token
	// endpoint.
	resp := h.do("POST", "/api/v1/credentials", admin, api.CreateCredentialRequest{Name: "github actions", Roles: []string{"deployer"}})
	if resp.status != 201 {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
	var created api.NewCredential
	json.Unmarshal(resp.body, &created)
	if created.ClientID == "" || !strings.HasPrefix(created.ClientSecret, auth.SecretPrefix) || created.Name != "github actions" ||
		resp.header.Get("Location") != "/api/v1/credentials/"+created.ClientID {
		t.Fatalf("created %s", resp.body)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {created.ClientID}, "client_secret": {created.ClientSecret}}
	resp = h.do("POST", "/oauth/token", "", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(resp.body, &tok)
	if resp.status != 200 || tok.AccessToken == "" {
		t.Fatalf("token for the new credential: %d %s", resp.status, resp.body)
	}
	// ... and that token deploys but does not manage credentials.
	if resp := h.do("GET", "/api/v1/pipelines", tok.AccessToken, nil); resp.status != 200 {
		t.Errorf("list with the new credential: %d", resp.status)
	}
	if resp := h.do("GET", "/api/v1/credentials", tok.AccessToken, nil); resp.status != 403 {
		t.Errorf("a deployer lists credentials: %d", resp.status)
	}

	// List: no secret, no hash, only this tenant's.
	h.token(otherTenant, pipeline.RoleTenantAdmin)
	resp = h.do("GET", "/api/v1/credentials", admin, nil)
	if strings.Contains(string(resp.body), created.ClientSecret) || strings.Contains(string(resp.body), "argon2") || strings.Contains(string(resp.body), otherTenant) {
		t.Errorf("list leaks: %s", resp.body)
	}
	var list api.CredentialList
	json.Unmarshal(resp.body, &list)
	var got []string
	for _, c := range list.Credentials {
		got = append(got, c.ClientID)
	}
	slices.Sort(got)
	want := []string{adminCred.ClientID, created.ClientID}
	slices.Sort(want)
	if diff := cmp.Diff(want, got); resp.status != 200 || diff != "" {
		t.Errorf("%d, ids (-want +got):\n%s", resp.status, diff)
	}

	// Refusals. A custom role must be defined in the tenant to be given.
	if err := h.store.PutRole(t.Context(), store.Role{Tenant: store.DefaultTenant, Name: "qa", Grants: []string{"approve"}}); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		body   any
		status int
	}{
		"no name":            {api.CreateCredentialRequest{Roles: []string{"viewer"}}, 400},
		"no roles":           {api.CreateCredentialRequest{Name: "x"}, 400},
		"bad role":           {api.CreateCredentialRequest{Name: "x", Roles: []string{"Deploy Everything"}}, 400},
		"unknown field":      {`{"name": "x", "roles": ["viewer"], "secret": "mine"}`, 400},
		"above own roles":    {api.CreateCredentialRequest{Name: "x", Roles: []string{pipeline.RoleOrganizationAdmin}}, 403},
		"a custom role, too": {api.CreateCredentialRequest{Name: "x", Roles: []string{"qa"}}, 201},
		"an undefined role":  {api.CreateCredentialRequest{Name: "x", Roles: []string{"q-a"}}, 400},
	} {
		resp := h.do("POST", "/api/v1/credentials", admin, tc.body)
		if resp.status != tc.status {
			t.Errorf("%s: %d %s", name, resp.status, resp.body)
		}
	}
	orgAdmin, _ := h.token(store.DefaultTenant, pipeline.RoleOrganizationAdmin)
	if resp := h.do("POST", "/api/v1/credentials", orgAdmin, api.CreateCredentialRequest{Name: "x", Roles: []string{pipeline.RoleOrganizationAdmin}}); resp.status != 201 {
		t.Errorf("an organization admin grants organization-admin: %d %s", resp.status, resp.body)
	}

	// Delete.
	otherTok, otherCred := h.token(otherTenant, pipeline.RoleTenantAdmin)
	if resp := h.do("DELETE", "/api/v1/credentials/"+otherCred.ClientID, admin, nil); resp.status != 404 {
		t.Errorf("deleting another tenant's credential: %d", resp.status)
	}
	if resp := h.do("DELETE", "/api/v1/credentials/"+adminCred.ClientID, admin, nil); resp.status != 409 {
		t.Errorf("deleting the credential in use: %d %s", resp.status, resp.body)
	}
	if resp := h.do("DELETE", "/api/v1/credentials/"+created.ClientID, otherTok, nil); resp.status != 404 {
		t.Errorf("deleting from another tenant: %d", resp.status)
	}
	if resp := h.do("DELETE", "/api/v1/credentials/"+created.ClientID, admin, nil); resp.status != 204 {
		t.Fatalf("delete: %d %s", resp.status, resp.body)
	}
	if resp := h.do("DELETE", "/api/v1/credentials/"+created.ClientID, admin, nil); resp.status != 404 {
		t.Errorf("delete again: %d", resp.status)
	}
	resp = h.do("POST", "/oauth/token", "", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	if resp.status != 401 {
		t.Errorf("token for a deleted credential: %d", resp.status)
	}
}
