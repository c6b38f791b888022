package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/egress"
	"github.com/sortie-cd/sortie/store"
)

// SecurityStore is what the tenant, role, credential-role and audit routes
// need; store.Store has it.
type SecurityStore interface {
	CreateTenant(ctx context.Context, name string) error
	ListTenants(ctx context.Context) ([]string, error)
	PutRole(ctx context.Context, r store.Role) error
	ListRoles(ctx context.Context, tenant string) ([]store.Role, error)
	DeleteRole(ctx context.Context, tenant, name string) error
	SetCredentialRoles(ctx context.Context, tenant, clientID string, roles []string) error
	AppendAudit(ctx context.Context, e store.AuditEntry) error
	ListAudit(ctx context.Context, tenant string, f store.AuditFilter) ([]store.AuditEntry, error)
}

// Secrets keeps the tenants' secrets, write-only: nothing here returns a
// value. Package secrets has it.
type Secrets interface {
	// Put stores a secret with the hosts it may be sent to: an empty list
	// means any host, nil the hosts it had.
	Put(ctx context.Context, tenant, name, value string, allowedHosts []string) (store.Secret, error)
	List(ctx context.Context, tenant string) ([]store.Secret, error)
	Delete(ctx context.Context, tenant, name string) error
	// RotateMasterKey makes a new master key, re-wraps every data key
	// with it and returns its id.
	RotateMasterKey(ctx context.Context) (string, error)
}

// maxSecretBytes bounds a secret's value, maxAllowedHosts its list of
// allowed hosts.
const (
	maxSecretBytes  = 32 << 10
	maxAllowedHosts = 64
)

var (
	secretName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	pathParam  = regexp.MustCompile(`\{([a-z]+)\}`)
)

// ActionDenied is the audit action of a request refused with 403; its
// first object is the route ("PUT /api/v1/users/{username}/password"),
// then, when the handler refused, the path's ids.
const ActionDenied = "denied"

// record appends the audit entry of an answered request: the principal,
// its address, the route's action, the path's ids and the id of what it
// created (from Location).
func (s *server) record(r *http.Request, p Principal, rt route, location string) {
	objects := pathIDs(r, rt)
	if location != "" {
		if id := location[strings.LastIndex(location, "/")+1:]; !slices.Contains(objects, id) {
			objects = append(objects, id)
		}
	}
	s.appendAudit(r, p, rt.audit, objects)
}

// pathIDs are the values of r's path parameters, in rt's order.
func pathIDs(r *http.Request, rt route) []string {
	var ids []string
	for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
		v := r.PathValue(m[1])
		if u, err := url.PathUnescape(v); err == nil {
			v = u // a scope's space
		}
		ids = append(ids, v)
	}
	return ids
}

// appendAudit appends an entry of p's. A failure is logged: the action
// happened (or was refused) whatever the log says.
func (s *server) appendAudit(r *http.Request, p Principal, action string, objects []string) {
	if s.store == nil {
		return
	}
	e := store.AuditEntry{Tenant: p.Tenant, Actor: p.Name, ClientID: p.ClientID, Remote: remoteHost(r), Action: action, Objects: objects}
	if err := s.store.AppendAudit(context.WithoutCancel(r.Context()), e); err != nil {
		s.log.Error("audit entry not recorded", "action", action, "client_id", p.ClientID, "err", err)
	}
}

func remoteHost(r *http.Request) string {
	if i := strings.LastIndexByte(r.RemoteAddr, ':'); i > 0 {
		return strings.Trim(r.RemoteAddr[:i], "[]")
	}
	return r.RemoteAddr
}

func (s *server) needStore(w http.ResponseWriter, r *http.Request) bool {
	if s.store == nil {
		s.writeError(w, r, errorf(http.StatusNotImplemented, CodeInternal, "this server keeps no tenants, roles or audit log"))
	}
	return s.store != nil
}

func (s *server) needSecrets(w http.ResponseWriter, r *http.Request) bool {
	if s.secrets == nil {
		s.writeError(w, r, errorf(http.StatusNotImplemented, CodeInternal, "this server keeps no secrets"))
	}
	return s.secrets != nil
}

// SetRolesRequest is the body of PUT /api/v1/credentials/{id}/roles.
type SetRolesRequest struct {
	Roles []string `json:"roles"`
}

func (s *server) setCredentialRoles(w http.ResponseWriter, r *http.Request, p Principal) {
	if !s.needStore(w, r) {
		return
	}
	var req SetRolesRequest
	if err := decodeJSON(w, r, maxBodyBytes, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	a, err := s.mayTouchCredential(r.Context(), p, r.PathValue("id"))
	if err == nil {
		err = a.assign(req.Roles)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.store.SetCredentialRoles(r.Context(), p.Tenant, r.PathValue("id"), req.Roles); err != nil {
		s.writeError(w, r, err)
		return
	}
	// Its tokens carry the old roles: they, and its streams, end here.
	if err := s.auth.Revoke(r.Context(), p.Tenant, r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, req)
}

// SecretView is a secret as the API shows it: its name, the hosts it may
// be sent to and when it was last written, never its value.
type SecretView struct {
	Name         string    `json:"name"`
	AllowedHosts []string  `json:"allowedHosts,omitempty"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

// SecretList is the body of GET /api/v1/secrets.
type SecretList struct {
	Secrets []SecretView `json:"secrets"`
}

// PutSecretRequest is the body of PUT /api/v1/secrets/{name}.
type PutSecretRequest struct {
	Value string `json:"value"`
	// AllowedHosts, when not empty, are the only hosts a request carrying
	// the secret may connect to (egress.MatchHost patterns). AnyHost lifts
	// the restriction. With neither, the secret keeps the hosts it had.
	AllowedHosts []string `json:"allowedHosts,omitempty"`
	AnyHost      bool     `json:"anyHost,omitempty"`
}

func (s *server) listSecrets(w http.ResponseWriter, r *http.Request, p Principal) {
	if !s.needSecrets(w, r) {
		return
	}
	list, err := s.secrets.List(r.Context(), p.Tenant)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := SecretList{Secrets: make([]SecretView, 0, len(list))}
	for _, sec := range list {
		out.Secrets = append(out.Secrets, SecretView{Name: sec.Name, AllowedHosts: sec.AllowedHosts, UpdatedAt: sec.UpdatedAt})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) putSecret(w http.ResponseWriter, r *http.Request, p Principal) {
	if !s.needSecrets(w, r) {
		return
	}
	name := r.PathValue("name")
	if !secretName.MatchString(name) {
		s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "secret name "+strconv.Quote(name)+" is not valid: letters, digits, '.', '_', '-', up to 128"))
		return
	}
	var req PutSecretRequest
	if err := decodeJSON(w, r, maxSecretBytes+1024, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	switch {
	case req.Value == "":
		s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, `value is empty: send {"value": "..."}`))
		return
	case len(req.Value) > maxSecretBytes:
		s.writeError(w, r, errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("the value is over %d bytes", maxSecretBytes)))
		return
	case len(req.AllowedHosts) > maxAllowedHosts:
		s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, fmt.Sprintf("allowedHosts has %d hosts, at most %d", len(req.AllowedHosts), maxAllowedHosts)))
		return
	case req.AnyHost && len(req.AllowedHosts) > 0:
		s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "give allowedHosts or anyHost, not both"))
		return
	}
	hosts := req.AllowedHosts // nil: keep the secret's
	if req.AnyHost {
		hosts = []string{}
	}
	for _, h := range req.AllowedHosts {
		if err := egress.ValidateHost(h); err != nil {
			s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, err.Error()))
			return
		}
	}
	sec, err := s.secrets.Put(r.Context(), p.Tenant, name, req.Value, hosts)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, SecretView{Name: sec.Name, AllowedHosts: sec.AllowedHosts, UpdatedAt: sec.UpdatedAt})
}

func (s *server) deleteSecret(w http.ResponseWriter, r *http.Request, p Principal) {
	if !s.needSecrets(w, r) {
		return
	}
	if err := s.secrets.Delete(r.Context(), p.Tenant, r.PathValue("name")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// MasterKeyRotation is the body of POST /api/v1/master-key/rotate.
type MasterKeyRotation struct {
	MasterKeyID string `json:"masterKeyId"`
}

func (s *server) rotateMasterKey(w http.ResponseWriter, r *http.Request, _ Principal) {
	if !s.needSecrets(w, r) {
		return
	}
	id, err := s.secrets.RotateMasterKey(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, MasterKeyRotation{MasterKeyID: id})
}

// AuditList is the body of GET /api/v1/audit: newest first.
type AuditList struct {
	Entries []store.AuditEntry `json:"entries"`
}

func (s *server) listAudit(w http.ResponseWriter, r *http.Request, p Principal) {
	if !s.needStore(w, r) {
		return
	}
	q := r.URL.Query()
	var f store.AuditFilter
	for key := range q {
		switch key {
		case "actor", "action", "since", "until", "limit":
		default:
			s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "unknown query parameter "+strconv.Quote(key)+"; use actor, action, since, until or limit"))
			return
		}
	}
	f.Actor, f.Action = q.Get("actor"), q.Get("action")
	for key, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(key); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, key+" "+strconv.Quote(v)+" is not an RFC 3339 time"))
				return
			}
			*dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, fmt.Sprintf("limit %q: want 1 to %d", v, maxListLimit)))
			return
		}
		f.Limit = n
	}
	list, err := s.store.ListAudit(r.Context(), p.Tenant, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := AuditList{Entries: list}
	if out.Entries == nil {
		out.Entries = []store.AuditEntry{}
	}
	for i := range out.Entries {
		if out.Entries[i].Objects == nil {
			out.Entries[i].Objects = []string{}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// TenantList is the body of GET /api/v1/tenants.
type TenantList struct {
	Tenants []string `json:"tenants"`
}

// CreateTenantRequest is the body of POST /api/v1/tenants.
type CreateTenantRequest struct {
	Name string `json:"name"`
}

func (s *server) listTenants(w http.ResponseWriter, r *http.Request, _ Principal) {
	if !s.needStore(w, r) {
		return
	}
	ts, err := s.store.ListTenants(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, TenantList{Tenants: append([]string{}, ts...)})
}

func (s *server) createTenant(w http.ResponseWriter, r *http.Request, _ Principal) {
	if !s.needStore(w, r) {
		return
	}
	var req CreateTenantRequest
	if err := decodeJSON(w, r, maxBodyBytes, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !roleName.MatchString(req.Name) {
		s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "tenant name "+strconv.Quote(req.Name)+" is not valid (lower-case letters, digits, '.', '_', '-')"))
		return
	}
	if err := s.store.CreateTenant(r.Context(), req.Name); err != nil {
		if errors.Is(err, store.ErrConflict) {
			err = errorf(http.StatusConflict, CodeConflict, "tenant "+req.Name+" exists")
		}
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", Prefix+"/tenants/"+req.Name)
	writeJSON(w, http.StatusCreated, req)
}

// Config is the organization's configuration as `sortie config apply`
// sends it and `sortie config get` shows it: tenants and their custom
// roles.
type Config struct {
	Tenants []TenantConfig `json:"tenants" yaml:"tenants"`
	// AllowAutoDelete removes the custom roles of a listed tenant that the
	// document does not list; without it they are kept. Tenants are never
	// removed.
	AllowAutoDelete bool `json:"allowAutoDelete,omitempty" yaml:"allowAutoDelete,omitempty"`
}

// TenantConfig is one tenant and its custom roles.
type TenantConfig struct {
	Name  string       `json:"name" yaml:"name"`
	Roles []RoleConfig `json:"roles,omitempty" yaml:"roles,omitempty"`
}

// RoleConfig is a custom role and its grants (auth.CustomGrants).
type RoleConfig struct {
	Name   string   `json:"name" yaml:"name"`
	Grants []string `json:"grants" yaml:"grants"`
}

// ConfigChanges is the body of PUT /api/v1/config: what applying changed,
// one line each ("tenant acme created", "role main/qa deleted", ...).
type ConfigChanges struct {
	Changes []string `json:"changes"`
}

func (s *server) getConfig(w http.ResponseWriter, r *http.Request, _ Principal) {
	if !s.needStore(w, r) {
		return
	}
	ts, err := s.store.ListTenants(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := Config{Tenants: []TenantConfig{}}
	for _, t := range ts {
		roles, err := s.store.ListRoles(r.Context(), t)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		tc := TenantConfig{Name: t}
		for _, role := range roles {
			tc.Roles = append(tc.Roles, RoleConfig{Name: role.Name, Grants: append([]string{}, role.Grants...)})
		}
		out.Tenants = append(out.Tenants, tc)
	}
	writeJSON(w, http.StatusOK, out)
}

func checkConfig(c Config) error {
	bad := func(format string, args ...any) error {
		return errorf(http.StatusBadRequest, CodeInvalid, fmt.Sprintf(format, args...))
	}
	seen := map[string]bool{}
	for i, t := range c.Tenants {
		if !roleName.MatchString(t.Name) {
			return bad("tenants[%d]: name %q is not valid (lower-case letters, digits, '.', '_', '-')", i, t.Name)
		}
		if seen[t.Name] {
			return bad("tenants[%d]: tenant %s is listed twice", i, t.Name)
		}
		seen[t.Name] = true
		roles := map[string]bool{}
		for j, role := range t.Roles {
			where := fmt.Sprintf("tenants[%d].roles[%d]", i, j)
			switch {
			case !roleName.MatchString(role.Name):
				return bad("%s: name %q is not valid", where, role.Name)
			case auth.IsSystemRole(role.Name):
				return bad("%s: %s is a system role; its grants are fixed", where, role.Name)
			case roles[role.Name]:
				return bad("%s: role %s is listed twice", where, role.Name)
			}
			roles[role.Name] = true
			for _, g := range role.Grants {
				if !slices.Contains(auth.CustomGrants, auth.Grant(g)) {
					return bad("%s: grant %q is not one a custom role may give; use read, deploy, approve or admin", where, g)
				}
			}
		}
	}
	return nil
}

func (s *server) applyConfig(w http.ResponseWriter, r *http.Request, p Principal) {
	if !s.needStore(w, r) {
		return
	}
	var c Config
	if err := decodeJSON(w, r, maxBodyBytes, &c, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := checkConfig(c); err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	// The subset rule holds here too, whatever the route's grant: a role
	// defined with a grant the caller lacks would give it to whoever holds
	// the role. Armory's RBAC file arrives here converted, so it is held
	// to the same rule.
	a, err := s.authority(ctx, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, t := range c.Tenants {
		for _, role := range t.Roles {
			if err := a.covers(t.Name+"/"+role.Name, role.Grants); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		// So does changing or deleting a role: its holders have grants
		// the caller must hold too.
		stored, err := s.store.ListRoles(ctx, t.Name)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		for _, sr := range stored {
			kept := slices.ContainsFunc(t.Roles, func(rc RoleConfig) bool { return rc.Name == sr.Name && slices.Equal(rc.Grants, sr.Grants) })
			listed := slices.ContainsFunc(t.Roles, func(rc RoleConfig) bool { return rc.Name == sr.Name })
			if kept || (!listed && !c.AllowAutoDelete) {
				continue
			}
			if err := a.covers(t.Name+"/"+sr.Name, sr.Grants); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
	}
	existing, err := s.store.ListTenants(ctx)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := ConfigChanges{Changes: []string{}}
	for _, t := range c.Tenants {
		if !slices.Contains(existing, t.Name) {
			if err := s.store.CreateTenant(ctx, t.Name); err != nil && !errors.Is(err, store.ErrConflict) {
				s.writeError(w, r, err)
				return
			}
			out.Changes = append(out.Changes, "tenant "+t.Name+" created")
		}
		stored, err := s.store.ListRoles(ctx, t.Name)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		for _, role := range t.Roles {
			i := slices.IndexFunc(stored, func(sr store.Role) bool { return sr.Name == role.Name })
			if i >= 0 && slices.Equal(stored[i].Grants, role.Grants) {
				continue
			}
			if err := s.store.PutRole(ctx, store.Role{Tenant: t.Name, Name: role.Name, Grants: role.Grants}); err != nil {
				s.writeError(w, r, err)
				return
			}
			verb := "created"
			if i >= 0 {
				verb = "updated"
				// Streams were checked against the old grants.
				s.auth.EndStreams(t.Name, role.Name)
			}
			out.Changes = append(out.Changes, "role "+t.Name+"/"+role.Name+" "+verb)
		}
		for _, sr := range stored {
			if slices.ContainsFunc(t.Roles, func(rc RoleConfig) bool { return rc.Name == sr.Name }) {
				continue
			}
			if !c.AllowAutoDelete {
				out.Changes = append(out.Changes, "role "+t.Name+"/"+sr.Name+" kept: not in the file, and allowAutoDelete is false")
				continue
			}
			if err := s.store.DeleteRole(ctx, t.Name, sr.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
				s.writeError(w, r, err)
				return
			}
			s.auth.EndStreams(t.Name, sr.Name)
			out.Changes = append(out.Changes, "role "+t.Name+"/"+sr.Name+" deleted")
		}
	}
	writeJSON(w, http.StatusOK, out)
}
