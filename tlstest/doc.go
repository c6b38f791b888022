// Package tlstest makes a certificate authority for tests and issues server
// certificates from it, written to PEM files the way an operator would give
// them to `sortie server` (--tls-cert-file, --tls-key-file) and to clients
// (--ca-file). It must not be imported outside tests.
package tlstest
