// Package e2e holds end-to-end tests of the agent: `sortie server` and
// `sortie agent`, built from ./cmd/sortie, run as separate processes
// against the shared local Kubernetes cluster. It has no code of its own.
package e2e
