// Package kubeexec executes the engine's cluster commands in process, on
// client-go (package kube): the executor of `sortie dev` and of the tests,
// and the code the agent runs on the far side of its connection. It takes
// each target's manifests, already rendered, from the job's plan (package
// plan), decodes them, then maps each command to one kube operation. When
// the runner gives a job a Report, each command that wrote objects reports
// an "applied" event (progress.EventApplied) naming them by kind, namespace
// and name, so the console can show what a target touched. A failure says
// whether it is transient (kube.Transient: a timeout, throttling, a 5xx, a
// conflict, a broken connection), which the runner retries within the
// step's deadline, or terminal.
//
// Webhook and analysis commands are not cluster work: gate.Router sends them
// to the gate executor, so they never reach this one (if they do, they fail
// as unknown commands, never a silent pass).
//
// It must not parse the deployment file (the plan is resolved once, when
// the deployment starts), make HTTP calls, or keep anything between
// commands: a command repeated after a restart sees exactly what the first
// run saw.
package kubeexec
