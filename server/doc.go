// Package server wires Sortie's control plane together — store, auth,
// runner, executor and the HTTP API — and runs it until its context ends:
// the body of `sortie server` and `sortie dev`. It is the only package that
// knows every adapter; the adapters know only the domain.
//
// It must not hold domain logic of its own (rules belong to the engine,
// the runner, auth and api), link test code or development tooling
// (localkube, kubetest), or log a secret; it reads no environment: the
// CLI hands it Options.
package server
