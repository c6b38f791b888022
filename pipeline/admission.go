package pipeline

import (
	"cmp"
	"slices"
	"time"
)

// Ref is what admission needs to know of a pipeline of the same application
// and tenant; the store lists them.
type Ref struct {
	ID        string    `json:"id"`
	Status    Status    `json:"status"`
	CreatedAt time.Time `json:"createdAt"`
}

// Verdict is what to do with a new pipeline.
type Verdict string

// Verdicts.
const (
	// VerdictStart: nothing is in flight; start it now.
	VerdictStart Verdict = "start"
	// VerdictQueue: keep it QUEUED; PickNext starts it later.
	VerdictQueue Verdict = "queue"
)

// Admission is Admit's decision.
type Admission struct {
	Verdict Verdict
	// Replace lists queued pipelines the new one replaces; send each a
	// Cancel, which ends it CANCELLED with its reason.
	Replace []string
}

// Admit decides whether a new pipeline of spec may start, given the other
// pipelines of the same application and tenant. With one in flight (any
// pipeline not ended, queued ones included) it refuses with CodeConflict
// unless the spec says enqueueOne; then the new pipeline is queued and
// replaces any pipeline already queued.
func Admit(spec Spec, others []Ref) (Admission, error) {
	var inFlight, queued []string
	for _, o := range others {
		switch {
		case o.Status == StatusQueued:
			queued = append(queued, o.ID)
			inFlight = append(inFlight, o.ID)
		case !o.Status.Terminal():
			inFlight = append(inFlight, o.ID)
		}
	}
	if len(inFlight) == 0 {
		return Admission{Verdict: VerdictStart}, nil
	}
	if spec.IfInProgress != InProgressEnqueueOne {
		return Admission{}, errorf(CodeConflict, "application %s already has a deployment in progress (pipeline %s); wait for it, cancel it, or set ifDeploymentInProgress: enqueueOne",
			spec.Application, inFlight[0])
	}
	return Admission{Verdict: VerdictQueue, Replace: queued}, nil
}

// PickNext returns the queued pipeline to start now that others (the
// pipelines of one application and tenant) changed, and the older queued
// ones that it replaces and that must be cancelled; start is empty while a
// pipeline is still in flight or nothing is queued.
func PickNext(others []Ref) (start string, replace []string) {
	var queued []Ref
	for _, o := range others {
		switch {
		case o.Status == StatusQueued:
			queued = append(queued, o)
		case !o.Status.Terminal():
			return "", nil
		}
	}
	if len(queued) == 0 {
		return "", nil
	}
	slices.SortStableFunc(queued, func(a, b Ref) int { return cmp.Compare(a.CreatedAt.UnixNano(), b.CreatedAt.UnixNano()) })
	for _, q := range queued[:len(queued)-1] {
		replace = append(replace, q.ID)
	}
	return queued[len(queued)-1].ID, replace
}
