package notify

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// Event kinds a subscription may choose.
const (
	EventStarted              = "started"
	EventWaitingForApproval   = "waiting_for_approval"
	EventAnalysisInconclusive = "analysis_inconclusive"
	EventSucceeded            = "succeeded"
	EventFailed               = "failed"
	EventRolledBack           = "rolled_back"
	EventFreeze               = "freeze"
	// EventTest is the sample `sortie notifications test` sends.
	EventTest = "test"
)

// Events lists the kinds a subscription may choose, in the order docs
// show them.
var Events = []string{EventStarted, EventWaitingForApproval, EventAnalysisInconclusive, EventSucceeded, EventFailed, EventRolledBack, EventFreeze}

// Link actions.
const (
	ActionApprove  = "approve"
	ActionRollback = "rollback"
)

// Message is what a sink is told, as the outbox keeps it. It holds no
// secret: the links in it are worth only what their reader's roles are.
type Message struct {
	// ID is unique per tenant and message: the outbox key.
	ID          string    `json:"id"`
	Event       string    `json:"event"`
	Tenant      string    `json:"tenant"`
	Application string    `json:"application,omitempty"`
	Pipeline    string    `json:"pipeline,omitempty"`
	Target      string    `json:"target,omitempty"`
	Step        string    `json:"step,omitempty"`
	Status      string    `json:"status,omitempty"`
	Text        string    `json:"text"`
	At          time.Time `json:"at"`
	// URL is the pipeline's console page.
	URL string `json:"url,omitempty"`
	// ApproveURL and RollbackURL are signed, single-use action links, on
	// messages about a pipeline waiting for a person.
	ApproveURL  string `json:"approveUrl,omitempty"`
	RollbackURL string `json:"rollbackUrl,omitempty"`
}

// occurrence is one notifiable thing an event says.
type occurrence struct {
	kind, target, step, status, message string
	waiting                             bool // a person may approve or roll back
}

// classify reads what an event of the pipeline's log says, in the
// subscriptions' vocabulary; most events say nothing notifiable.
func classify(ev store.Event) []occurrence {
	switch ev.Type {
	case "status":
		var c pipeline.Change
		if json.Unmarshal(ev.Data, &c) != nil {
			return nil
		}
		o := occurrence{target: c.Target, step: c.Step, status: string(c.To), message: c.Message}
		switch {
		case c.Target == "" && c.To == pipeline.StatusRunning && (c.From == "" || c.From == pipeline.StatusQueued):
			o.kind = EventStarted
		case c.Target == "" && c.To == pipeline.StatusSucceeded:
			o.kind = EventSucceeded
		case c.Target == "" && c.To == pipeline.StatusFailed:
			o.kind = EventFailed
		case c.Target != "" && c.Step == "" && c.To == pipeline.StatusRolledBack:
			o.kind = EventRolledBack
		case c.Step != "" && strings.HasPrefix(c.Message, "analysis inconclusive"):
			o.kind, o.waiting = EventAnalysisInconclusive, c.To == pipeline.StatusAwaitingApproval
		case c.Step != "" && c.To == pipeline.StatusAwaitingApproval:
			o.kind, o.waiting = EventWaitingForApproval, true
		default:
			return nil
		}
		return []occurrence{o}
	case "action":
		var r pipeline.Record
		if json.Unmarshal(ev.Data, &r) != nil || r.Action != "freeze" {
			return nil
		}
		return []occurrence{{kind: EventFreeze, message: r.Message}}
	}
	return nil
}

// matches reports whether sub wants o of a pipeline of application whose
// targets are targets. A pipeline-wide occurrence matches a subscription to
// one target when the pipeline deploys to it.
func matches(sub store.Subscription, o occurrence, application string, targets []string) bool {
	if !slices.Contains(sub.Events, o.kind) {
		return false
	}
	if sub.Application != "" && sub.Application != application {
		return false
	}
	if sub.Target == "" {
		return true
	}
	if o.target != "" {
		return o.target == sub.Target
	}
	return slices.Contains(targets, sub.Target)
}

// text is the message's one line for people.
func (o occurrence) text(application, pipelineID string) string {
	what := map[string]string{
		EventStarted:              "started",
		EventWaitingForApproval:   "is waiting for approval",
		EventAnalysisInconclusive: "has an inconclusive analysis",
		EventSucceeded:            "succeeded",
		EventFailed:               "failed",
		EventRolledBack:           "was rolled back",
		EventFreeze:               "is held by a freeze",
	}[o.kind]
	s := fmt.Sprintf("%s: deployment %s %s", application, pipelineID, what)
	if o.target != "" {
		s = fmt.Sprintf("%s: deployment %s to %s %s", application, pipelineID, o.target, what)
	}
	if o.step != "" {
		s += " at step " + o.step
	}
	if o.message != "" {
		s += " (" + o.message + ")"
	}
	return s
}

// ValidEvent reports whether kind is one a subscription may choose.
func ValidEvent(kind string) bool { return slices.Contains(Events, kind) }
