// Command sortie is the one binary of Sortie: the server, the agent and the
// command-line verbs. It only builds the root command and exits with its
// code.
//
// It must not hold logic of its own (package cli does), and it must not
// link test code or the development tooling (localkube, kubetest).
package main
