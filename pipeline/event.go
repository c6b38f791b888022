package pipeline

// Event is something that happened to a pipeline: a start, an adapter's
// report, a person's action or only time passing. Every event, Tick
// included, first fires the deadlines that are due.
type Event interface{ event() }

// Start starts a QUEUED pipeline. A redeploy is a Start of a new pipeline
// made from a stored Spec.
type Start struct {
	By Principal
	// Freezes are the freezes in force that hold targets of this pipeline
	// (the caller knows them; the engine keeps them in State.Freezes).
	Freezes []Freeze
	// BreakGlass starts the pipeline outside its windows and through the
	// freezes in force; it needs Reason and a principal holding
	// organization-admin, tenant-admin or break-glass.
	BreakGlass bool
	Reason     string
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
	// Transient reports that a failure may pass by itself: the cluster's
	// API server timed out, throttled (429), failed (5xx) or answered a
	// conflict, or the connection to it broke. The runner runs such a
	// command again, with backoff, until the step's deadline; the engine
	// sees only the last result. A terminal failure (forbidden, invalid,
	// not found, a deadline that passed) fails at once.
	Transient bool `json:",omitempty"`
}

// Approve approves a step awaiting approval: an untilApproved pause or a
// manual analysis decision. Step may be empty when exactly one step of the
// target awaits approval, and Target too when exactly one in the pipeline
// does.
type Approve struct {
	Target, Step string
	By           Principal
}

// Reject refuses a step awaiting approval, with a reason, and rolls its
// target back. Who may approve the step may reject it (its starter too,
// under notByStarter). Target and Step may be empty as for Approve.
type Reject struct {
	Target, Step string
	By           Principal
	Reason       string
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

// SetFreeze holds the pipeline's targets that Freeze applies to, or
// replaces the freeze of the same scope.
type SetFreeze struct {
	Freeze Freeze
	By     Principal
}

// SetWindows replaces the deploy windows admins set that apply to the
// pipeline (every window of Spec.Windows but the deployment file's) with
// Windows, when an admin adds, changes or deletes one: a target not started
// yet waits for the new set (or, for a window of mode refuse now closed, is
// cancelled) at its start, as if the pipeline had been created with it.
type SetWindows struct {
	Windows []Window
	By      Principal
}

// LiftFreeze ends the freeze of Scope; held targets go on.
type LiftFreeze struct {
	Scope string
	By    Principal
}

func (Start) event()           {}
func (SetFreeze) event()       {}
func (LiftFreeze) event()      {}
func (SetWindows) event()      {}
func (Tick) event()            {}
func (CommandResult) event()   {}
func (Approve) event()         {}
func (Skip) event()            {}
func (Reject) event()          {}
func (Rollback) event()        {}
func (Cancel) event()          {}
func (WebhookCallback) event() {}
