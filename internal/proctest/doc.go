// Package proctest runs `sortie`, built once per test binary from
// ./cmd/sortie, as child processes of a test: each dies with the test
// process (Pdeathsig), is stopped when its test ends, and keeps its log so
// a test can wait for a line of it and print it on failure; StartServer
// also reads the server's address and bootstrap admin credential. It is what the
// end-to-end packages (agent/e2e, e2e/armory) share.
//
// It must not be imported outside tests, and it knows nothing of the
// processes it runs beyond their command line and their log.
package proctest
