// Package e2e holds end-to-end tests of the agent: `sortie server` and
// `sortie agent`, built from ./cmd/sortie, run as separate processes
// against the shared local Kubernetes cluster. It has no code of its own.
//
// It must not be imported, and its tests must not reach into the
// processes they run: they talk to them only as a user would (the CLI, the
// REST API, the cluster).
package e2e
