package console

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// roleName is what a role may look like (the API's rule).
var roleName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

type credentialsData struct {
	Page
	Credentials []store.Credential
	Roles       []string
	// Reason, when set, is why the page shows nothing: only admins manage
	// credentials.
	Reason string
	// Created is the credential just made, with its secret shown once.
	Created *store.Credential
	Secret  string
	Error   string
	Name    string
}

var grantable = []string{pipeline.RoleViewer, pipeline.RoleDeployer, pipeline.RoleTenantAdmin, pipeline.RoleOrganizationAdmin, pipeline.RoleAgent}

func (c *Console) credentialsData(r *http.Request, s *session) (credentialsData, error) {
	d := credentialsData{Page: c.page(r, s, "Client credentials"), Roles: grantable}
	if !s.HasAnyRole(adminRoles...) {
		d.Reason = "Only a tenant admin or an organization admin manages client credentials; your roles: " + roleList(s.Roles) + "."
		return d, nil
	}
	var list api.CredentialList
	if err := c.callAPI(r, s, http.MethodGet, api.Prefix+"/credentials", nil, &list); err != nil {
		return d, err
	}
	for _, cv := range list.Credentials {
		d.Credentials = append(d.Credentials, store.Credential{Tenant: s.Tenant, ClientID: cv.ClientID, Name: cv.Name, Roles: cv.Roles, CreatedAt: cv.CreatedAt})
	}
	slices.SortFunc(d.Credentials, func(a, b store.Credential) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return d, nil
}

func (c *Console) credentialsPage(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.credentialsData(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d.Flash = takeFlash(w, r)
	c.render(w, r, http.StatusOK, "credentials", d)
}

// createCredential answers with the page itself (no redirect), so the
// secret is shown once and never put in a URL or a cookie.
func (c *Console) createCredential(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.credentialsData(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	if d.Reason != "" {
		c.render(w, r, http.StatusForbidden, "credentials", d)
		return
	}
	f := r.PostForm
	name := strings.TrimSpace(f.Get("name"))
	roles := slices.Clone(f["roles"])
	roles = append(roles, strings.FieldsFunc(f.Get("custom_roles"), func(r rune) bool { return r == ',' || r == ' ' })...)
	slices.Sort(roles)
	roles = slices.Compact(roles)
	d.Name = name
	switch {
	case name == "":
		d.Error = "Give the credential a name: what is it for?"
	case len(name) > 200:
		d.Error = "The name is over 200 characters."
	case len(roles) == 0:
		d.Error = "Choose at least one role."
	case slices.Contains(roles, pipeline.RoleOrganizationAdmin) && !s.HasAnyRole(pipeline.RoleOrganizationAdmin):
		d.Error = "Only an organization admin may grant the organization-admin role."
	}
	for _, role := range roles {
		if !roleName.MatchString(role) {
			d.Error = "Role " + role + " is not a valid role name (lower-case letters, digits, '.', '_', '-')."
		}
	}
	if d.Error != "" {
		c.render(w, r, http.StatusBadRequest, "credentials", d)
		return
	}
	var nc api.NewCredential
	if err := c.callAPI(r, s, http.MethodPost, api.Prefix+"/credentials", api.CreateCredentialRequest{Name: name, Roles: roles}, &nc); err != nil {
		if msg := userMessage(err); msg != "" {
			d.Error = msg
			c.render(w, r, http.StatusBadRequest, "credentials", d)
			return
		}
		c.fail(w, r, s, err)
		return
	}
	cred := store.Credential{ClientID: nc.ClientID, Name: nc.Name, Roles: nc.Roles, CreatedAt: nc.CreatedAt, Tenant: s.Tenant}
	d.Created, d.Secret, d.Name = &cred, nc.ClientSecret, ""
	d.Credentials = append([]store.Credential{cred}, d.Credentials...)
	c.render(w, r, http.StatusOK, "credentials", d)
}

func (c *Console) deleteCredential(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	switch {
	case !s.HasAnyRole(adminRoles...):
		setFlash(w, r, "error", "Only an admin deletes credentials.")
	case id == s.ClientID:
		setFlash(w, r, "error", "You are signed in with that credential; delete it while signed in with another one.")
	default:
		if err := c.callAPI(r, s, http.MethodDelete, api.Prefix+"/credentials/"+url.PathEscape(id), nil, nil); err != nil {
			setFlash(w, r, "error", "Could not delete "+id+": "+errorText(err))
		} else {
			setFlash(w, r, "ok", "Deleted credential "+id+". Its tokens are refused and its streams (an agent's included) ended.")
		}
	}
	http.Redirect(w, r, "/settings/credentials", http.StatusSeeOther)
}

type agentsData struct {
	Page
	Agents []api.AgentView
}

// agentsPage lists the agents of the tenant connected now, with their
// versions and last heartbeats.
func (c *Console) agentsPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := agentsData{Page: c.page(r, s, "Agents")}
	if c.agents != nil {
		d.Agents = c.agents.ListAgents(s.Tenant)
	}
	slices.SortFunc(d.Agents, func(a, b api.AgentView) int { return strings.Compare(a.ID, b.ID) })
	c.render(w, r, http.StatusOK, "agents", d)
}
