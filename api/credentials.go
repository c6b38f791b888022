package api

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"

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
	if err := checkName(req.Name, "the credential"); err != nil {
		s.writeError(w, r, err)
		return
	}
	a, err := s.authority(r.Context(), p)
	if err == nil {
		err = a.assign(req.Roles)
	}
	if err != nil {
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

// checkName refuses an empty or overlong display name; an empty one is
// allowed only where optional.
func checkName(name, what string) error {
	switch {
	case name == "" && what != "":
		return errorf(http.StatusBadRequest, CodeInvalid, "name is empty: say what "+what+" is for")
	case len(name) > 200:
		return errorf(http.StatusBadRequest, CodeInvalid, "name is over 200 characters")
	}
	return nil
}

// mayTouchCredential returns the caller's authority once it has checked
// that the caller may change or delete credential id of its tenant (404
// for another tenant's).
func (s *server) mayTouchCredential(ctx context.Context, p Principal, id string) (authority, error) {
	a, err := s.authority(ctx, p)
	if err != nil {
		return a, err
	}
	c, err := s.auth.GetCredential(ctx, p.Tenant, id)
	if err != nil {
		return a, err
	}
	return a, a.actOn(fmt.Sprintf("credential %s (%s)", c.ClientID, c.Name), c.Roles)
}

func (s *server) deleteCredential(w http.ResponseWriter, r *http.Request, p Principal) {
	id := r.PathValue("id")
	if id == p.ClientID {
		s.writeError(w, r, errorf(http.StatusConflict, CodeConflict, "this request is made with that credential; delete it with another one"))
		return
	}
	if _, err := s.mayTouchCredential(r.Context(), p, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.auth.DeleteCredential(r.Context(), p.Tenant, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
