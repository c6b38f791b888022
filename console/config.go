package console

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/analysis"
	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// The configuration pages read and write through the REST API in process
// (callAPI), so what a user may see or change here is exactly what the API
// lets the same token see or change, and every change is in the audit log.

// refusal is why p may not use what grant g allows, or "" when it may (or
// might: a custom role's grants are the organization's configuration, so
// a principal holding one gets the button and the API's answer).
func refusal(p auth.Principal, g auth.Grant, what string) string {
	if auth.Has(p.Roles, nil, g) || slices.ContainsFunc(p.Roles, func(r string) bool { return !auth.IsSystemRole(r) }) {
		return ""
	}
	who := "a tenant admin or an organization admin"
	if g == auth.GrantOrganization {
		who = "an organization admin"
	}
	return "only " + who + " " + what + "; your roles: " + roleList(p.Roles)
}

// backTo redirects to page with a one-time message.
func backTo(w http.ResponseWriter, r *http.Request, page, kind, msg string) {
	setFlash(w, r, kind, msg)
	http.Redirect(w, r, page, http.StatusSeeOther)
}

// ---- secrets

type secretsData struct {
	Page
	Secrets []api.SecretView
	// Reason, when set, is why the page shows nothing.
	Reason string
}

func (c *Console) secretsPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := secretsData{Page: c.page(r, s, "Secrets"), Reason: refusal(s.Principal, auth.GrantAdmin, "manages secrets")}
	if d.Reason == "" {
		var list api.SecretList
		if err := c.callAPI(r, s, http.MethodGet, api.Prefix+"/secrets", nil, &list); err != nil {
			d.Reason = errorText(err)
		}
		d.Secrets = list.Secrets
	}
	d.Flash = takeFlash(w, r)
	c.render(w, r, http.StatusOK, "secrets", d)
}

// putSecret sets a secret's value and allowed hosts (comma- or
// space-separated; none keeps the ones it had, any_host lifts them). The
// value goes to the API and nowhere else: not into the answer, a flash, a
// log line or a redirect.
func (c *Console) putSecret(w http.ResponseWriter, r *http.Request, s *session) {
	const page = "/settings/secrets"
	name := strings.TrimSpace(r.PostForm.Get("name"))
	value := r.PostForm.Get("value")
	hosts := strings.FieldsFunc(r.PostForm.Get("allowed_hosts"), func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t' })
	switch {
	case name == "":
		backTo(w, r, page, "error", "Name the secret.")
		return
	case value == "":
		backTo(w, r, page, "error", "The value is empty; nothing was stored.")
		return
	}
	err := c.callAPI(r, s, http.MethodPut, api.Prefix+"/secrets/"+url.PathEscape(name), api.PutSecretRequest{Value: value, AllowedHosts: hosts, AnyHost: r.PostForm.Get("any_host") != ""}, nil)
	if err != nil {
		backTo(w, r, page, "error", "Secret "+name+" not stored: "+errorText(err))
		return
	}
	backTo(w, r, page, "ok", "Stored secret "+name+". Its value is never shown again; reference it as {{secrets."+name+"}}.")
}

func (c *Console) deleteSecret(w http.ResponseWriter, r *http.Request, s *session) {
	const page = "/settings/secrets"
	name := r.PathValue("name")
	if err := c.callAPI(r, s, http.MethodDelete, api.Prefix+"/secrets/"+url.PathEscape(name), nil, nil); err != nil {
		backTo(w, r, page, "error", "Secret "+name+" not deleted: "+errorText(err))
		return
	}
	backTo(w, r, page, "ok", "Deleted secret "+name+".")
}

// ---- metric providers

type providersData struct {
	Page
	Providers []api.ProviderView
	// Write is why the add and delete buttons are disabled, or "".
	Write string
	Error string
	Form  analysis.Config
	Types []string
}

func (c *Console) providersData(r *http.Request, s *session) (providersData, error) {
	d := providersData{Page: c.page(r, s, "Metric providers"), Write: refusal(s.Principal, auth.GrantAdmin, "adds or deletes metric providers"),
		Types: []string{analysis.TypePrometheus, analysis.TypeDatadog, analysis.TypeNewRelic}}
	var list api.ProviderList
	if err := c.callAPI(r, s, http.MethodGet, api.Prefix+"/providers", nil, &list); err != nil {
		return d, err
	}
	d.Providers = list.Providers
	slices.SortFunc(d.Providers, func(a, b api.ProviderView) int { return strings.Compare(a.Name, b.Name) })
	return d, nil
}

func (c *Console) providersPage(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.providersData(r, s)
	if err != nil {
		d.Error = errorText(err)
	}
	d.Form.Type = analysis.TypePrometheus
	d.Flash = takeFlash(w, r)
	c.render(w, r, http.StatusOK, "providers", d)
}

// providerForm reads the add form; every field names a secret at most,
// never holds one.
func providerForm(f url.Values) (analysis.Config, string) {
	pc := analysis.Config{
		Name: strings.TrimSpace(f.Get("name")), Type: f.Get("type"), URL: strings.TrimSpace(f.Get("url")),
		AgentIdentifier:      strings.TrimSpace(f.Get("agent")),
		APIKeySecret:         strings.TrimSpace(f.Get("api_key_secret")),
		ApplicationKeySecret: strings.TrimSpace(f.Get("application_key_secret")),
	}
	if v := strings.TrimSpace(f.Get("account_id")); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return pc, "The account id is not a number."
		}
		pc.AccountID = n
	}
	switch at := f.Get("auth"); at {
	case "", analysis.AuthNone:
	case analysis.AuthBasic:
		pc.Auth = &analysis.Auth{Type: at, Username: strings.TrimSpace(f.Get("username")), PasswordSecret: strings.TrimSpace(f.Get("password_secret"))}
	case analysis.AuthBearer:
		pc.Auth = &analysis.Auth{Type: at, TokenSecret: strings.TrimSpace(f.Get("token_secret"))}
	default:
		return pc, "Unknown authentication " + strconv.Quote(at) + "."
	}
	return pc, ""
}

func (c *Console) createProvider(w http.ResponseWriter, r *http.Request, s *session) {
	pc, problem := providerForm(r.PostForm)
	if problem == "" {
		err := c.callAPI(r, s, http.MethodPost, api.Prefix+"/providers", pc, nil)
		if err == nil {
			backTo(w, r, "/settings/providers", "ok", "Added metric provider "+pc.Name+".")
			return
		}
		problem = errorText(err)
	}
	d, err := c.providersData(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d.Form, d.Error = pc, problem
	c.render(w, r, http.StatusBadRequest, "providers", d)
}

func (c *Console) deleteProvider(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	if err := c.callAPI(r, s, http.MethodDelete, api.Prefix+"/providers/"+url.PathEscape(name), nil, nil); err != nil {
		backTo(w, r, "/settings/providers", "error", "Metric provider "+name+" not deleted: "+errorText(err))
		return
	}
	backTo(w, r, "/settings/providers", "ok", "Deleted metric provider "+name+".")
}

// ---- users and roles

// RoleRow is a role and the grants it gives.
type RoleRow struct {
	Name   string
	Grants []string
	// Known is false for a custom role whose definition the principal may
	// not read (only organization admins read the configuration).
	Known bool
}

type usersData struct {
	Page
	System      []RoleRow
	Custom      []RoleRow
	CustomNote  string
	Credentials []api.CredentialView
	// Reason is why the credentials' roles are not shown.
	Reason string
}

// systemRoleOrder lists auth.SystemRoles from the most to the least
// powerful.
var systemRoleOrder = []string{pipeline.RoleOrganizationAdmin, pipeline.RoleTenantAdmin, pipeline.RoleDeployer, pipeline.RoleViewer, pipeline.RoleAgent}

func (c *Console) usersPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := usersData{Page: c.page(r, s, "Users and roles")}
	for _, name := range systemRoleOrder {
		row := RoleRow{Name: name, Known: true}
		for _, g := range auth.SystemRoles[name] {
			row.Grants = append(row.Grants, string(g))
		}
		d.System = append(d.System, row)
	}
	d.Reason = refusal(s.Principal, auth.GrantAdmin, "sees and assigns the credentials' roles")
	if d.Reason == "" {
		var list api.CredentialList
		if err := c.callAPI(r, s, http.MethodGet, api.Prefix+"/credentials", nil, &list); err != nil {
			d.Reason = errorText(err)
		}
		d.Credentials = list.Credentials
		slices.SortFunc(d.Credentials, func(a, b api.CredentialView) int { return strings.Compare(a.Name, b.Name) })
	}
	// Custom roles: their definitions for an organization admin; for
	// others, the custom roles the tenant's credentials hold.
	custom := map[string]RoleRow{}
	if auth.Has(s.Roles, nil, auth.GrantOrganization) {
		var cfg api.Config
		if err := c.callAPI(r, s, http.MethodGet, api.Prefix+"/config", nil, &cfg); err != nil {
			d.CustomNote = "The configuration could not be read: " + errorText(err)
		}
		for _, t := range cfg.Tenants {
			if t.Name == s.Tenant {
				for _, role := range t.Roles {
					custom[role.Name] = RoleRow{Name: role.Name, Grants: role.Grants, Known: true}
				}
			}
		}
	} else {
		d.CustomNote = "Custom roles are defined with `sortie config apply` by an organization admin, who sees their grants here. Listed: the custom roles your tenant's credentials hold."
	}
	for _, cr := range d.Credentials {
		for _, role := range cr.Roles {
			if _, ok := custom[role]; !ok && !auth.IsSystemRole(role) {
				// Its definition is not shown to this principal; the API
				// refuses to give a role that has none.
				custom[role] = RoleRow{Name: role, Known: false}
			}
		}
	}
	for _, row := range custom {
		d.Custom = append(d.Custom, row)
	}
	slices.SortFunc(d.Custom, func(a, b RoleRow) int { return strings.Compare(a.Name, b.Name) })
	d.Flash = takeFlash(w, r)
	c.render(w, r, http.StatusOK, "users", d)
}

// setRoles assigns a credential's roles (comma- or space-separated).
func (c *Console) setRoles(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	roles := strings.FieldsFunc(r.PostForm.Get("roles"), func(r rune) bool { return r == ',' || r == ' ' })
	slices.Sort(roles)
	roles = slices.Compact(roles)
	if len(roles) == 0 {
		backTo(w, r, "/settings/users", "error", "Give the credential at least one role.")
		return
	}
	if err := c.callAPI(r, s, http.MethodPut, api.Prefix+"/credentials/"+url.PathEscape(id)+"/roles", api.SetRolesRequest{Roles: roles}, nil); err != nil {
		backTo(w, r, "/settings/users", "error", "Roles of "+id+" not changed: "+errorText(err))
		return
	}
	backTo(w, r, "/settings/users", "ok", "Credential "+id+" now has roles "+strings.Join(roles, ", ")+"; its tokens carry them from the next login.")
}

// ---- audit log

type auditData struct {
	Page
	Entries                            []store.AuditEntry
	Actor, Action, Since, Until, Limit string
	Actions                            []string
	Reason, Error                      string
}

// auditActions are the actions the audit log records: the API's audited
// routes, logins and refused logins, and requests refused with 403.
func auditActions() []string {
	out := []string{"login", auth.ActionLoginFailed, api.ActionDenied}
	for _, rt := range api.Routes() {
		if rt.Audit != "" && !slices.Contains(out, rt.Audit) {
			out = append(out, rt.Audit)
		}
	}
	slices.Sort(out)
	return out
}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := auditData{Page: c.page(r, s, "Audit log"), Actions: auditActions(),
		Actor: strings.TrimSpace(q.Get("actor")), Action: q.Get("action"),
		Since: q.Get("since"), Until: q.Get("until"), Limit: q.Get("limit"),
		Reason: refusal(s.Principal, auth.GrantAdmin, "reads the audit log")}
	if d.Reason == "" {
		aq := url.Values{}
		for key, v := range map[string]string{"actor": d.Actor, "action": d.Action, "limit": d.Limit} {
			if v != "" {
				aq.Set(key, v)
			}
		}
		for key, v := range map[string]string{"since": d.Since, "until": d.Until} {
			if v == "" {
				continue
			}
			t, ok := parseWhen(v)
			if !ok {
				d.Error = key + " " + strconv.Quote(v) + " is not a time (2026-01-02T15:04 or RFC 3339)"
				break
			}
			aq.Set(key, t.Format(time.RFC3339))
		}
		if d.Error == "" {
			var list api.AuditList
			path := api.Prefix + "/audit"
			if len(aq) > 0 {
				path += "?" + aq.Encode()
			}
			if err := c.callAPI(r, s, http.MethodGet, path, nil, &list); err != nil {
				d.Error = errorText(err)
			}
			d.Entries = list.Entries
		}
	}
	c.render(w, r, http.StatusOK, "audit", d)
}

// parseWhen reads a datetime-local input's value (taken as UTC) or an RFC
// 3339 time.
func parseWhen(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// ---- tenant

type tenantData struct {
	Page
	Tenants []string
	// Reason is why the principal cannot switch; Error why a switch failed.
	Reason, Error string
}

func (c *Console) tenantData(r *http.Request, s *session) tenantData {
	d := tenantData{Page: c.page(r, s, "Tenant")}
	if !auth.Has(s.Roles, nil, auth.GrantOrganization) {
		d.Reason = "You act in tenant " + s.Tenant + " only: switching tenants takes the organization-admin role; your roles: " + roleList(s.Roles) + "."
		return d
	}
	if user, ok := s.Username(); ok {
		d.Reason = "You are signed in as user " + user + " of tenant " + s.Tenant + ", and a user belongs to one tenant: to act in another, log in there with its user account or with an organization admin's client credential."
		return d
	}
	var list api.TenantList
	if err := c.callAPI(r, s, http.MethodGet, api.Prefix+"/tenants", nil, &list); err != nil {
		d.Reason = "The tenants could not be listed: " + errorText(err)
	}
	d.Tenants = list.Tenants
	return d
}

func (c *Console) tenantPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := c.tenantData(r, s)
	d.Flash = takeFlash(w, r)
	c.render(w, r, http.StatusOK, "tenant", d)
}

// switchTenant gets a token for another tenant from the token endpoint
// (its tenant parameter, which only organization admins may use) and makes
// it the session's. The endpoint wants the client secret again: the
// console keeps none, and a token for another tenant comes from nowhere
// else, so the endpoint's rate limits and its "login" audit entry apply.
func (c *Console) switchTenant(w http.ResponseWriter, r *http.Request, s *session) {
	d := c.tenantData(r, s)
	if d.Reason != "" {
		c.render(w, r, http.StatusForbidden, "tenant", d)
		return
	}
	to := r.PostForm.Get("tenant")
	token, status, msg := c.exchange(r, s.ClientID, r.PostForm.Get("client_secret"), to)
	if token == "" {
		d.Error = msg
		c.render(w, r, status, "tenant", d)
		return
	}
	if _, err := c.auth.Verify(token); err != nil {
		c.serverError(w, r, err)
		return
	}
	c.startSession(w, r, token)
	c.log.Info("console tenant switch", "client_id", s.ClientID, "tenant", to)
	backTo(w, r, "/", "ok", "You now act in tenant "+to+".")
}
