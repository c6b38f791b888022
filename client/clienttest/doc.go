// Package clienttest starts a real Sortie server in process for tests of
// API clients (package client, the CLI's end-to-end tests). It must not be
// imported outside tests.
package clienttest
