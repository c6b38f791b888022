// Package progress is the vocabulary of what executors append to a
// pipeline's event log besides the runner's own transitions: the objects a
// command wrote to a cluster, the webhook calls as sent, and each judgment
// of an analysis. Executors (kubeexec, gate) write these events; readers
// (the console, the CLI, the agent's report relay) decode them.
//
// It must not import anything outside the standard library, so that a
// reader of the log links neither the Kubernetes client nor an executor.
package progress
