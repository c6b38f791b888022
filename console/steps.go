package console

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/pipeline"
)

// The roles the REST API asks for; the console asks the same so that a
// button it shows enabled is one the API would let through.
var (
	deployRoles = []string{pipeline.RoleDeployer, pipeline.RoleTenantAdmin, pipeline.RoleOrganizationAdmin}
	adminRoles  = []string{pipeline.RoleTenantAdmin, pipeline.RoleOrganizationAdmin}
	systemRoles = []string{pipeline.RoleViewer, pipeline.RoleDeployer, pipeline.RoleTenantAdmin, pipeline.RoleOrganizationAdmin, pipeline.RoleAgent}
)

// specStep returns the spec item behind a step laid out from a list, or
// nil for the strategy's own phases.
func specStep(st *pipeline.State, target string, s *pipeline.StepState) *pipeline.Step {
	return st.Spec.StepOf(target, *s)
}

// stepTitle names a step as a person reads it: "set weight 25%", "pause
// 1m0s", "approval (release-manager)".
func stepTitle(st *pipeline.State, target string, s *pipeline.StepState) string {
	sp := specStep(st, target, s)
	switch s.Kind {
	case pipeline.KindSetWeight:
		if sp != nil && sp.SetWeight != nil {
			return "set weight " + strconv.Itoa(sp.SetWeight.Weight) + "%"
		}
		return "set weight"
	case pipeline.KindPause:
		if sp != nil && sp.Pause != nil {
			return "pause " + sp.Pause.Duration.Std().String()
		}
		return "pause"
	case pipeline.KindApproval:
		if sp != nil && sp.Pause != nil && len(sp.Pause.RequiresRoles) > 0 {
			return "approval (" + strings.Join(sp.Pause.RequiresRoles, " or ") + ")"
		}
		return "approval"
	case pipeline.KindAnalysis:
		return "analysis"
	case pipeline.KindRunWebhook:
		if sp != nil && sp.RunWebhook != nil {
			return "webhook " + sp.RunWebhook.Name
		}
		return "webhook"
	case pipeline.KindExposeServices:
		return "expose services"
	case pipeline.KindDeployPreview:
		return "deploy preview"
	case pipeline.KindRedirectActive:
		return "redirect active service"
	case pipeline.KindFinalize:
		return "promote to 100%"
	case pipeline.KindRollback:
		return "roll back"
	}
	return string(s.Kind)
}

// Action is a button of the console: enabled, or disabled with the reason.
type Action struct {
	Name   string // approve, reject, skip, rollback, cancel
	Label  string
	Target string
	Step   string
	// Reason, when not empty, is why the button is disabled.
	Reason string
	Danger bool
	// AskReason adds a required reason field to the form.
	AskReason bool
}

// Allowed reports whether the button is enabled.
func (a Action) Allowed() bool { return a.Reason == "" }

func mayDeploy(p auth.Principal) string {
	if p.HasAnyRole(deployRoles...) {
		return ""
	}
	return "your roles (" + roleList(p.Roles) + ") may not act on deployments; a deployer or an admin may"
}

func roleList(roles []string) string {
	if len(roles) == 0 {
		return "none"
	}
	return strings.Join(roles, ", ")
}

// approveAction is the approve button of a step awaiting approval: the API
// lets through the approve grant (deploy roles, and custom roles defined
// with it: the button is offered to any custom role and the API decides),
// and the engine checks an approval gate's requiresRoles (admins always
// pass).
func approveAction(st *pipeline.State, p auth.Principal, target string, s *pipeline.StepState) Action {
	a := Action{Name: "approve", Label: "Approve", Target: target, Step: s.ID}
	custom := slices.ContainsFunc(p.Roles, func(r string) bool { return !slices.Contains(systemRoles, r) })
	if !p.HasAnyRole(deployRoles...) && !custom {
		a.Reason = "your roles (" + roleList(p.Roles) + ") may not approve"
		if s.Kind == pipeline.KindApproval {
			if sp := specStep(st, target, s); sp != nil && sp.Pause != nil && len(sp.Pause.RequiresRoles) > 0 {
				a.Reason += "; this gate requires " + strings.Join(sp.Pause.RequiresRoles, " or ") + " (or an admin)"
			}
		}
		return a
	}
	if s.Kind != pipeline.KindApproval {
		if !p.HasAnyRole(deployRoles...) {
			a.Reason = "deciding on an analysis needs a deployer or an admin"
		}
		return a
	}
	sp := specStep(st, target, s)
	if sp == nil || sp.Pause == nil || len(sp.Pause.RequiresRoles) == 0 || p.HasAnyRole(adminRoles...) ||
		slices.Contains(sp.Pause.Approvers, p.Engine().Name) {
		return a
	}
	if !p.HasAnyRole(sp.Pause.RequiresRoles...) {
		a.Reason = "this gate requires " + strings.Join(sp.Pause.RequiresRoles, " or ") + " (or an admin); your roles: " + roleList(p.Roles)
	}
	return a
}

// stepActions are the buttons of one step.
func stepActions(st *pipeline.State, p auth.Principal, target string, s *pipeline.StepState) []Action {
	if st.Status.Terminal() {
		return nil
	}
	switch s.Status {
	case pipeline.StatusAwaitingApproval:
		approve := approveAction(st, p, target, s)
		if s.Kind != pipeline.KindApproval {
			return []Action{approve}
		}
		// Who may approve may reject, with a reason; the target rolls back.
		reject := Action{Name: "reject", Label: "Reject", Target: target, Step: s.ID, Reason: approve.Reason, Danger: true, AskReason: true}
		return []Action{approve, reject}
	case pipeline.StatusPaused:
		return []Action{{Name: "skip", Label: "Skip pause", Target: target, Step: s.ID, Reason: mayDeploy(p)}}
	}
	return nil
}

// rollbackAction is a target's roll-back button, with why it cannot be
// pressed when it cannot.
func rollbackAction(st *pipeline.State, p auth.Principal, t *pipeline.TargetState) Action {
	a := Action{Name: "rollback", Label: "Roll back " + t.Name, Target: t.Name, Danger: true}
	fin := t.Step(pipeline.GroupFinalize)
	switch {
	case t.Status == pipeline.StatusQueued:
		a.Reason = "the target has not started"
	case t.Status == pipeline.StatusSucceeded:
		// After its success a rollback is a new pipeline putting the
		// version before it back (POST …/restore), with a reason.
		return Action{Name: "restore", Label: "Roll back " + t.Name + " to the version before", Target: t.Name, Danger: true, AskReason: true, Reason: mayDeploy(p)}
	case t.Status.Terminal():
		a.Reason = "the target has ended (" + string(t.Status) + ")"
	case t.Rollback != nil:
		a.Reason = "the target is already rolling back"
	case fin != nil && fin.Status == pipeline.StatusSucceeded:
		a.Reason = "the new version is already promoted; redeploy an earlier pipeline instead"
	case st.Status.Terminal():
		a.Reason = "the pipeline has ended"
	default:
		a.Reason = mayDeploy(p)
	}
	return a
}

// restoreToAction is the pipeline's "roll back to this version" button
// (rollback --to): it puts back what its SUCCEEDED targets deployed.
func restoreToAction(st *pipeline.State, p auth.Principal) Action {
	a := Action{Name: "restore-to", Label: "Roll back to this version", Danger: true, AskReason: true}
	switch {
	case !slices.ContainsFunc(st.Targets, func(t pipeline.TargetState) bool { return t.Status == pipeline.StatusSucceeded }):
		a.Reason = "no target of this pipeline succeeded: there is no version of it to go back to"
	default:
		a.Reason = mayDeploy(p)
	}
	return a
}

func cancelAction(st *pipeline.State, p auth.Principal) Action {
	a := Action{Name: "cancel", Label: "Cancel pipeline", Danger: true}
	switch {
	case st.Status.Terminal():
		a.Reason = "the pipeline has ended (" + string(st.Status) + ")"
	case st.Cancelling:
		a.Reason = "the pipeline is already cancelling"
	default:
		a.Reason = mayDeploy(p)
	}
	return a
}

// podCounts reads "N new and M old pods ready" from the executor's step
// messages (the latest one that says so).
var podsRe = regexp.MustCompile(`(\d+) new and (\d+) old pods ready`)

func podCounts(t *pipeline.TargetState) (newPods, oldPods int, ok bool) {
	for i := len(t.Steps) - 1; i >= 0; i-- {
		if m := podsRe.FindStringSubmatch(t.Steps[i].Message); m != nil {
			n, _ := strconv.Atoi(m[1])
			o, _ := strconv.Atoi(m[2])
			return n, o, true
		}
	}
	return 0, 0, false
}

// currentStep is the index of the step a target is on: the first active
// one, or -1.
func currentStep(t *pipeline.TargetState) int {
	for i, s := range t.Steps {
		if s.Status.Active() {
			return i
		}
	}
	return -1
}

// deadlineLabel says what a step's deadline means.
func deadlineLabel(s *pipeline.StepState) string {
	switch s.Kind {
	case pipeline.KindPause:
		return "pause ends at"
	case pipeline.KindApproval:
		return "approval expires at"
	case pipeline.KindRunWebhook:
		return "callback due by"
	}
	return "times out at"
}
