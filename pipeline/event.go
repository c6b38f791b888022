package pipeline

// Event is something that happened to a pipeline: a start, an adapter's
// report, a person's action or only time passing. Every event, Tick
// included, first fires the deadlines that are due.
type Event interface{ event() }

// Start starts a QUEUED pipeline. A redeploy is a Start of a new pipeline
// made from a stored Spec.
type Start struct {
	By Principal
}

// Tick only lets time pass; send it at the wake-up time Transition returned.
type Tick struct{}

// CommandResult is an adapter's report on a command. Results for a command
// that is no longer outstanding (a repeated report, or the report of a step
// that was cancelled meanwhile) are ignored.
type CommandResult struct {
	CommandID string
	Success   bool
	Message   string
	// AchievedWeight is the weight the new version actually carries (pods
	// Ready), reported for CmdSetWeight.
	AchievedWeight int
	// Inconclusive reports, for CmdRunAnalysis, that the analysis could not
	// judge (no data, NaN, a provider unreachable): neither a pass nor a
	// failure, whatever Success says. The step's Analysis.Inconclusive
	// decides what follows.
	Inconclusive bool `json:",omitempty"`
}

// Approve approves a step awaiting approval: an untilApproved pause or a
// manual analysis decision. Step may be empty when exactly one step of the
// target awaits approval, and Target too when exactly one in the pipeline
// does.
type Approve struct {
	Target, Step string
	By           Principal
}

// Skip ends a timed pause now. Target and Step may be empty as for Approve.
type Skip struct {
	Target, Step string
	By           Principal
}

// Rollback rolls a running target back by hand.
type Rollback struct {
	Target string
	By     Principal
	Reason string
}

// Cancel cancels the pipeline: targets not started are CANCELLED, running
// ones rolled back, and the pipeline ends CANCELLED.
type Cancel struct {
	By     Principal
	Reason string
}

// WebhookCallback is a webhook's callback for the CmdCallWebhook command
// CommandID (the callback URI carries it).
type WebhookCallback struct {
	CommandID string
	Success   bool
	Message   string // markdown, shown to users
	By        Principal
}

func (Start) event()           {}
func (Tick) event()            {}
func (CommandResult) event()   {}
func (Approve) event()         {}
func (Skip) event()            {}
func (Rollback) event()        {}
func (Cancel) event()          {}
func (WebhookCallback) event() {}
