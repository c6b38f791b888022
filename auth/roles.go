package auth

import (
	"slices"

	"github.com/sortie-cd/sortie/pipeline"
)

// Grant is a permission a role gives. Package api maps each route to the
// grant it needs.
type Grant string

const (
	// GrantRead: see the tenant's pipelines, events, agents and providers.
	GrantRead Grant = "read"
	// GrantDeploy: start, skip, roll back, cancel and redeploy pipelines,
	// and answer webhook callbacks.
	GrantDeploy Grant = "deploy"
	// GrantApprove: reach the approve route; nothing else lets a principal
	// approve. Which approvals it may give is then the engine's call
	// (requiresRoles: a holder of a required role, or an admin).
	GrantApprove Grant = "approve"
	// GrantAdmin: manage the tenant's credentials, metric providers and
	// secrets, and read its audit log.
	GrantAdmin Grant = "admin"
	// GrantOrganization: manage tenants and roles, rotate the master key,
	// and get a token for any tenant.
	GrantOrganization Grant = "organization"
	// GrantAgent: connect as an agent.
	GrantAgent Grant = "agent"
)

// SystemRoles is the one table of the system roles and their grants.
var SystemRoles = map[string][]Grant{
	pipeline.RoleOrganizationAdmin: {GrantRead, GrantDeploy, GrantApprove, GrantAdmin, GrantOrganization},
	pipeline.RoleTenantAdmin:       {GrantRead, GrantDeploy, GrantApprove, GrantAdmin},
	pipeline.RoleDeployer:          {GrantRead, GrantDeploy, GrantApprove},
	pipeline.RoleViewer:            {GrantRead},
	pipeline.RoleAgent:             {GrantAgent},
}

// CustomGrants are the grants a custom role may give: never organization
// or agent, which only system roles carry.
var CustomGrants = []Grant{GrantRead, GrantDeploy, GrantApprove, GrantAdmin}

// IsSystemRole reports whether role is one of SystemRoles.
func IsSystemRole(role string) bool {
	_, ok := SystemRoles[role]
	return ok
}

// GrantsOf returns the grants roles give, each once: a system role what
// SystemRoles says, a custom role what custom (its stored definition, by
// name, in the principal's tenant) says. A role that is neither gives
// nothing: a misspelt or deleted role name is no permission.
func GrantsOf(roles []string, custom map[string][]Grant) []Grant {
	var out []Grant
	for _, r := range roles {
		gs, ok := SystemRoles[r]
		if !ok {
			gs = custom[r]
		}
		for _, g := range gs {
			if !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	return out
}

// Has reports whether roles give g (see GrantsOf).
func Has(roles []string, custom map[string][]Grant, g Grant) bool {
	return slices.Contains(GrantsOf(roles, custom), g)
}

// Covers reports whether a principal holding the grants have may act on a
// principal holding want, or assign a role giving want: the subset rule,
// which keeps anyone from making, changing or becoming a principal with
// more than it holds. GrantAgent counts as held by whoever holds
// GrantAdmin: admins install their tenant's agents, and an agent's grant
// lets it do nothing an admin cannot. missing is the first grant of want
// that have lacks.
func Covers(have, want []Grant) (missing Grant, ok bool) {
	for _, g := range want {
		if slices.Contains(have, g) || (g == GrantAgent && slices.Contains(have, GrantAdmin)) {
			continue
		}
		return g, false
	}
	return "", true
}
