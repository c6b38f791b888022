// Package runner drives pipelines durably: it feeds the pure engine
// (package pipeline) its events — starts, command results, actions, timer
// ticks — one pipeline at a time, saves every resulting state with its
// events before starting the side effects it asks for, executes the commands
// through an Executor, arms one timer per pipeline at the engine's wake-up
// time, and on start-up resumes every pipeline that had not ended: timers at
// their original deadlines, unanswered commands sent again (commands are
// idempotent).
//
// It must not talk to Kubernetes, HTTP clients or the console itself: those
// are behind the Executor interface and the subscribers. It never sleeps to
// wait; timers fire at persisted deadlines.
package runner
