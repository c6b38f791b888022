package pipeline

// Change is one status change between two states of a pipeline: of the
// pipeline itself (Target empty), of a target (Step empty) or of a step.
// The API streams them as events and the metrics count them.
type Change struct {
	Target  string `json:"target,omitempty"`
	Step    string `json:"step,omitempty"`
	From    Status `json:"from,omitempty"`
	To      Status `json:"to"`
	Message string `json:"message,omitempty"`
}

// Changes lists the status changes from prev to next, two states of the
// same pipeline: the pipeline first, then targets and their steps in
// layout order.
func Changes(prev, next State) []Change {
	var out []Change
	if prev.Status != next.Status {
		out = append(out, Change{From: prev.Status, To: next.Status, Message: next.Message})
	}
	for i := range next.Targets {
		nt := &next.Targets[i]
		pt := prev.Target(nt.Name)
		if pt == nil {
			pt = &TargetState{}
		}
		if pt.Status != nt.Status {
			out = append(out, Change{Target: nt.Name, From: pt.Status, To: nt.Status, Message: nt.Message})
		}
		steps := nt.Steps
		if nt.Rollback != nil {
			steps = append(steps[:len(steps):len(steps)], *nt.Rollback)
		}
		for _, ns := range steps {
			var from Status
			if ps := pt.Step(ns.ID); ps != nil {
				from = ps.Status
			}
			if from != ns.Status {
				out = append(out, Change{Target: nt.Name, Step: ns.ID, From: from, To: ns.Status, Message: ns.Message})
			}
		}
	}
	return out
}
