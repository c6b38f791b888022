package pipeline

import "slices"

// Status is the state of a pipeline, a target or a step, as pipeline/STATES.md lists
// them. The same vocabulary serves all three so that the console and the API
// render one set of badges.
type Status string

// Statuses. ROLLED_BACK is only ever held by a target.
const (
	StatusQueued           Status = "QUEUED"
	StatusRunning          Status = "RUNNING"
	StatusPaused           Status = "PAUSED"
	StatusAwaitingApproval Status = "AWAITING_APPROVAL"
	StatusSucceeded        Status = "SUCCEEDED"
	StatusFailed           Status = "FAILED"
	StatusCancelled        Status = "CANCELLED"
	StatusRolledBack       Status = "ROLLED_BACK"
)

// Terminal reports whether nothing more will happen to the holder of s.
func (s Status) Terminal() bool {
	switch s {
	case StatusSucceeded, StatusFailed, StatusCancelled, StatusRolledBack:
		return true
	}
	return false
}

// Active reports whether s is a started, unfinished status.
func (s Status) Active() bool {
	switch s {
	case StatusRunning, StatusPaused, StatusAwaitingApproval:
		return true
	}
	return false
}

// System roles. Custom roles are any other string; the engine only compares
// them for equality when checking a pause's requiresRoles.
const (
	RoleOrganizationAdmin = "organization-admin"
	RoleTenantAdmin       = "tenant-admin"
	RoleDeployer          = "deployer"
	RoleViewer            = "viewer"
	RoleAgent             = "agent"
)

// Principal is who performs an action: a user or a machine credential. The
// API authenticates it; the engine only records it and checks its roles
// against an approval's requiresRoles.
type Principal struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles,omitempty"`
}

// mayApprove reports whether p may approve a pause that requires one of
// the roles required or one of the names approvers (anyone when both are
// empty). Organization and tenant admins may always approve.
func (p Principal) mayApprove(required, approvers []string) bool {
	if len(required) == 0 && len(approvers) == 0 || slices.Contains(approvers, p.Name) {
		return true
	}
	for _, r := range p.Roles {
		if r == RoleOrganizationAdmin || r == RoleTenantAdmin || slices.Contains(required, r) {
			return true
		}
	}
	return false
}
