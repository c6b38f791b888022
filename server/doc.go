// Package server wires Sortie's control plane together — store, auth,
// runner, executor, notifier and the HTTP API — and runs it until its context ends:
// the body of `sortie server` and `sortie dev`. It is the only package that
// knows every adapter; the adapters know only the domain.
//
// It owns the listener: TLS with a certificate reloaded when its files
// change (tls.go), or plaintext on loopback, or beyond loopback only when
// told a TLS proxy is in front. It must never serve plaintext on another
// address by default, nor start with a key file others can read.
//
// It builds the egress policy of the server's own calls (webhooks, metric
// queries): Config.EgressAllow, and never the server itself (its listen
// addresses and its public URL's address).
//
// It must not hold domain logic of its own (rules belong to the engine,
// the runner, auth and api), link test code or development tooling
// (localkube, kubetest), or log a secret; it reads no environment: the
// CLI hands it Options.
package server
