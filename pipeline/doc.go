// Package pipeline is Sortie's deployment engine: the vocabulary of a
// deployment (Spec, State, statuses, events, commands) and the pure state
// machine that moves a pipeline from one State to the next.
//
// # What it provides
//
//   - New lays out a QUEUED pipeline from a Spec: every target that the
//     target filters let through, with its steps in stages.
//   - Transition(state, event, now) returns the next state, the commands
//     adapters must execute and the time to wake the engine with a Tick.
//     Deadlines due at now fire first, whatever the event. An action refused
//     in the current state returns an *Error whose Code the API maps to an
//     HTTP status (ErrorCode).
//   - Changes lists the status changes between two states, for the event
//     stream and the metrics.
//   - Admit and PickNext decide, from the other pipelines of an application
//     and tenant, whether a new pipeline starts, is queued (enqueueOne) or is
//     refused, and which queued pipeline starts when the one in flight ends.
//
// # Events and commands
//
// Events: Start, Tick, CommandResult, WebhookCallback, SetFreeze, LiftFreeze,
// SetWindows,
// and the actions Approve, Reject, Skip, Rollback and Cancel, each carrying
// its Principal. A redeploy is a Start of a new pipeline made with New from a
// stored Spec.
//
// # Windows and freezes
//
// A target starts only while every deploy Window of Spec.Windows that
// applies to it is open; otherwise it stays QUEUED, held until the window
// opens (the wake-up time), or, for a window of mode refuse, Start is refused
// naming it. SetWindows replaces the windows admins set (the file's stay)
// when an admin changes them: a target not started yet meets the new set at
// its start; a running target is not stopped by a window (a freeze does
// that). A Freeze keeps targets from starting and holds running ones
// before their next step that changes the cluster; rollbacks are never held.
// A break-glass Start (a reason and a role) goes through both. Time zones
// come from Go's time-zone database (embedded in the binary by the
// timetzdata build tag), the one thing the engine reads that is not passed
// in; it is fixed data, not state.
//
// Commands (see CommandKind): setWeight, deployPreview, redirectActive,
// finalize, rollback, callWebhook, runAnalysis, exposeServices. Each deploying
// command applies the target's manifests first. A command's ID is
// pipeline/target/step, so a command repeated after a restart (State.
// Outstanding lists those not yet answered) is harmless, and its result is
// ignored once the step has ended. Commands of one target are to be executed
// in emission order; rollback supersedes the earlier ones.
//
// # State machines
//
// Pipeline: QUEUED → RUNNING ⇄ (PAUSED | AWAITING_APPROVAL) → SUCCEEDED |
// FAILED | CANCELLED. It is AWAITING_APPROVAL while any target is, PAUSED
// while every running target is, and ends SUCCEEDED iff every target
// succeeded, CANCELLED if it was cancelled, FAILED otherwise.
//
// Target: QUEUED → RUNNING ⇄ (PAUSED | AWAITING_APPROVAL) → SUCCEEDED |
// ROLLED_BACK | FAILED | CANCELLED, and QUEUED → CANCELLED when a
// dependency fails or the pipeline is cancelled. A target starts once every
// dependency (among those that run) SUCCEEDED; its stages are
// beforeDeployment (in parallel), its strategy, finalize, afterDeployment
// (in parallel). A failure before finalize succeeded rolls the target back
// (RUNNING with a rollback step, then ROLLED_BACK, or FAILED when the
// rollback fails); a failure after it (afterDeployment) ends the target
// FAILED without a rollback. Either way its dependants, transitively, end
// CANCELLED. STATES.md has the whole table.
//
// Step: QUEUED → RUNNING | PAUSED (timed pause) | AWAITING_APPROVAL
// (approval, manual analysis decision, inconclusive analysis) → SUCCEEDED |
// FAILED | CANCELLED. An inconclusive analysis result waits for a person
// unless its step says rollback or proceed; rollBackMode does not apply.
//
// # What it must not do
//
// No I/O, no clock (time comes in as an argument), no goroutines, no
// randomness, no logging, and no imports outside the standard library: in
// particular never the deployment-file parser, the store, Kubernetes or HTTP
// packages. Adapters depend on this package, not the reverse. A Transition
// never modifies the State passed in; returned States share the read-only
// Spec and command payloads.
package pipeline
