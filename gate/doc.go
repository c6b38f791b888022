// Package gate executes the engine's gate commands, the two ways a
// deployment asks the outside world whether to go on: CmdCallWebhook
// (package webhook) and CmdRunAnalysis (package analysis). Router sends
// those kinds to a gate Executor and every other kind to the cluster
// executor, so that webhooks and analysis run the same whichever executor
// serves the target's account.
//
// # What it provides
//
//   - Executor, a runner.Executor for gate commands. A webhook call is
//     rendered with the armory.* variables (callbackUri names the pipeline,
//     target and step: CallbackPath), the file's and the step's context and
//     the tenant's secrets; the masked request is appended to the
//     pipeline's log (event "webhook") before it is sent. Success means the
//     call was answered 2xx; the engine then waits for the callback unless
//     the webhook disables it. An analysis appends every judgment to the log
//     (event "judgment") as it is made; its result is success when it
//     passed, and Inconclusive when no judgment failed but one could not
//     judge (no data, NaN, a provider unreachable): the engine, not this
//     package, decides what that does (the step's inconclusive setting).
//   - Router, the kind-based runner.Executor in front of both.
//
// # What it must not do
//
// Touch a cluster, persist anything but the events it reports, or show a
// secret value.
package gate
