package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/sortie-cd/sortie/auth"
)

// authority is what a caller holds, for the subset rule every route that
// makes, changes or removes a principal (credential or user) or a role
// applies: the caller may act only on principals whose grants are a subset
// of its own, and may assign only roles whose grants are a subset of its
// own (auth.Covers). Without it a tenant admin could reset an organization
// admin's password and log in as them.
type authority struct {
	p      Principal
	grants []auth.Grant
	// custom are the custom roles of the caller's tenant (the token's), by
	// name: the only roles besides the system ones a principal may hold.
	custom map[string][]auth.Grant
}

// customRoles returns tenant's custom roles and their grants; none without
// a store.
func (s *server) customRoles(ctx context.Context, tenant string) (map[string][]auth.Grant, error) {
	custom := map[string][]auth.Grant{}
	if s.store == nil {
		return custom, nil
	}
	roles, err := s.store.ListRoles(ctx, tenant)
	if err != nil {
		return nil, err
	}
	for _, r := range roles {
		gs := []auth.Grant{}
		for _, g := range r.Grants {
			gs = append(gs, auth.Grant(g))
		}
		custom[r.Name] = gs
	}
	return custom, nil
}

func (s *server) authority(ctx context.Context, p Principal) (authority, error) {
	custom, err := s.customRoles(ctx, p.Tenant)
	if err != nil {
		return authority{}, err
	}
	return authority{p: p, grants: auth.GrantsOf(p.Roles, custom), custom: custom}, nil
}

// assign refuses roles that are malformed (400), not defined in the tenant
// (400, naming the role: a misspelt role would otherwise be kept and give
// nothing, or, before, let its holder approve), or that give a grant the
// caller lacks (403).
func (a authority) assign(roles []string) error {
	if len(roles) == 0 {
		return errorf(http.StatusBadRequest, CodeInvalid, "roles is empty: give at least one role (viewer, deployer, tenant-admin, organization-admin, agent, or a custom role)")
	}
	for _, role := range roles {
		if !roleName.MatchString(role) {
			return errorf(http.StatusBadRequest, CodeInvalid, fmt.Sprintf("role %q is not a valid role name (lower-case letters, digits, '.', '_', '-')", role))
		}
		if _, ok := a.custom[role]; !ok && !auth.IsSystemRole(role) {
			return errorf(http.StatusBadRequest, CodeInvalid, fmt.Sprintf("role %q is not defined in tenant %s: use a system role (%s) or one of the tenant's custom roles (%s; an organization admin defines them with 'sortie config apply')",
				role, a.p.Tenant, strings.Join(systemRoleNames(), ", "), a.customNames()))
		}
		if g, ok := auth.Covers(a.grants, auth.GrantsOf([]string{role}, a.custom)); !ok {
			return errorf(http.StatusForbidden, CodeForbidden, fmt.Sprintf("you may not give role %s: it gives grant %s, which your roles (%s) do not; a principal assigns only roles whose grants it holds", role, g, rolesText(a.p.Roles)))
		}
	}
	return nil
}

// actOn refuses (403) to touch principal what (e.g. `user "alice"`) whose
// roles give a grant the caller lacks.
func (a authority) actOn(what string, roles []string) error {
	if g, ok := auth.Covers(a.grants, auth.GrantsOf(roles, a.custom)); !ok {
		return errorf(http.StatusForbidden, CodeForbidden, fmt.Sprintf("you may not change or remove %s: its roles (%s) give grant %s, which your roles (%s) do not; only a principal holding every grant of another may change it", what, rolesText(roles), g, rolesText(a.p.Roles)))
	}
	return nil
}

// covers refuses (403) a custom role definition giving a grant the caller
// lacks: whoever defines a role could otherwise give it to others, or
// raise a role it holds.
func (a authority) covers(role string, grants []string) error {
	want := make([]auth.Grant, 0, len(grants))
	for _, g := range grants {
		want = append(want, auth.Grant(g))
	}
	if g, ok := auth.Covers(a.grants, want); !ok {
		return errorf(http.StatusForbidden, CodeForbidden, fmt.Sprintf("you may not define role %s with grant %s, which your roles (%s) do not give", role, g, rolesText(a.p.Roles)))
	}
	return nil
}

func (a authority) customNames() string {
	if len(a.custom) == 0 {
		return "it has none"
	}
	names := make([]string, 0, len(a.custom))
	for n := range a.custom {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func systemRoleNames() []string {
	names := make([]string, 0, len(auth.SystemRoles))
	for n := range auth.SystemRoles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func rolesText(roles []string) string {
	if len(roles) == 0 {
		return "none"
	}
	return strings.Join(roles, ", ")
}
