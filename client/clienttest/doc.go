// Package clienttest starts a real Sortie server in process for tests of
// API clients (package client, the CLI's end-to-end tests), and waits for a
// pipeline on its event stream (WaitPipeline, WaitEnd) for any test that
// drives a server through the API, describing it with Dump when a wait
// fails. It must not be imported outside tests.
package clienttest
