// Package runner drives pipelines durably: it feeds the pure engine
// (package pipeline) its events — starts, command results, actions, timer
// ticks — one pipeline at a time, saves every resulting state with its
// events before starting the side effects it asks for, executes the commands
// through an Executor, arms one timer per pipeline at the engine's wake-up
// time, and on start-up resumes every pipeline that had not ended: timers at
// their original deadlines, unanswered commands sent again (commands are
// idempotent). A command that fails transiently (CommandResult.Transient)
// runs again with backoff while its step's deadline allows, each retry a
// progress.EventRetry event in the pipeline's log. Close stops the timers and waits for the workers and for a
// timer's callback that already runs: nothing of the runner outlives it.
//
// With Options.Replica it is one of several replicas sharing the store
// (lease.go): it drives only the pipelines whose lease it holds, renews
// them every LeaseTTL/3 on its clock, claims its fair share of expired ones
// and resumes them as after a restart, takes over the lease of a pipeline
// an action reaches it for, and lets go, writing nothing, of one whose
// lease or save the store fenced (store.ErrFenced).
//
// It also keeps the tenants' deploy windows and freezes (controls.go): a
// new pipeline gets the windows that apply to it in its spec and the
// freezes in force with its Start; a start a freeze or a refuse-mode
// window refuses is refused before anything is stored; a freeze set or
// lifted, and a window put or deleted, is sent to the pipelines in flight it
// applies to (a queued one gets them when its turn comes).
//
// And it removes the previous versions kept warm (warm.go): a target's
// warmUntil is stored (store.Warm) before the success that sets it, a timer
// is armed at it (again on start-up), and then CmdDropWarm goes straight to
// the Executor; the row is deleted once that succeeded.
// idempotent). Subscribe and SubscribeAll (every tenant's: the notifier's
// wake-up) deliver saved events live.
//
// With Options.Tracer it traces (trace.go): one trace per pipeline, its
// traceparent stored in the pipeline's source, a root span from creation to
// the terminal state, spans per target, step, gate and command whose ids
// survive a restart; without one it records nothing and costs nothing.
//
// It must not talk to Kubernetes, HTTP clients or the console itself: those
// are behind the Executor interface and the subscribers. It never sleeps to
// wait; timers fire at persisted deadlines.
package runner
