// Package server wires Sortie's control plane together — store, auth,
// runner, executor and the HTTP API — and runs it until its context ends:
// the body of `sortie server` and `sortie dev`. It is the only package that
// knows every adapter; the adapters know only the domain.
package server
