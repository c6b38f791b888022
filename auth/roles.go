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
	// GrantApprove: reach the approve route. Which approvals the principal
	// may give is the engine's call (requiresRoles).
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

// Has reports whether roles give g. System roles give what SystemRoles
// says; a custom role gives what custom (its stored definition, by name)
// says, and approve in any case: a custom role exists to be required by
// approvals (requiresRoles), defined in the tenant's configuration or not.
func Has(roles []string, custom map[string][]Grant, g Grant) bool {
	for _, r := range roles {
		if gs, ok := SystemRoles[r]; ok {
			if slices.Contains(gs, g) {
				return true
			}
			continue
		}
		if g == GrantApprove || slices.Contains(custom[r], g) {
			return true
		}
	}
	return false
}
