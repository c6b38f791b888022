package api

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// roleName is what a role may look like: system roles and custom ones.
var roleName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

func (s *server) listCredentials(w http.ResponseWriter, r *http.Request, p Principal) {
	cs, err := s.auth.ListCredentials(r.Context(), p.Tenant)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := CredentialList{Credentials: make([]CredentialView, 0, len(cs))}
	for _, c := range cs {
		out.Credentials = append(out.Credentials, credentialView(c))
	}
	writeJSON(w, http.StatusOK, out)
}

func credentialView(c store.Credential) CredentialView {
	roles := c.Roles
	if roles == nil {
		roles = []string{}
	}
	return CredentialView{ClientID: c.ClientID, Name: c.Name, Roles: roles, CreatedAt: c.CreatedAt}
}

func (s *server) createCredential(w http.ResponseWriter, r *http.Request, p Principal) {
	var req CreateCredentialRequest
	if err := decodeJSON(w, r, maxBodyBytes, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	req.Name = strings.TrimSpace(req.Name)
	if err := checkCredential(req, p); err != nil {
		s.writeError(w, r, err)
		return
	}
	c, secret, err := s.auth.CreateCredential(r.Context(), p.Tenant, req.Name, req.Roles)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", Prefix+"/credentials/"+c.ClientID)
	writeJSON(w, http.StatusCreated, NewCredential{CredentialView: credentialView(c), ClientSecret: secret})
}

// checkCredential refuses malformed requests and any grant of a role above
// the caller's own: only an organization admin makes organization admins.
func checkCredential(req CreateCredentialRequest, p Principal) error {
	bad := func(format string, args ...any) error {
		return errorf(http.StatusBadRequest, CodeInvalid, fmt.Sprintf(format, args...))
	}
	switch {
	case req.Name == "":
		return bad("name is empty: say what the credential is for")
	case len(req.Name) > 200:
		return bad("name is over 200 characters")
	case len(req.Roles) == 0:
		return bad("roles is empty: give at least one role (viewer, deployer, tenant-admin, organization-admin, agent, or a custom role)")
	}
	for _, role := range req.Roles {
		if !roleName.MatchString(role) {
			return bad("role %q is not a valid role name (lower-case letters, digits, '.', '_', '-')", role)
		}
	}
	if slices.Contains(req.Roles, pipeline.RoleOrganizationAdmin) && !p.HasAnyRole(pipeline.RoleOrganizationAdmin) {
		return errorf(http.StatusForbidden, CodeForbidden, "only an organization admin may grant the organization-admin role")
	}
	return nil
}

func (s *server) deleteCredential(w http.ResponseWriter, r *http.Request, p Principal) {
	id := r.PathValue("id")
	if id == p.ClientID {
		s.writeError(w, r, errorf(http.StatusConflict, CodeConflict, "this request is made with that credential; delete it with another one"))
		return
	}
	if err := s.auth.DeleteCredential(r.Context(), p.Tenant, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
