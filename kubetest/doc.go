// Package kubetest gives tests a real Kubernetes cluster: one local control
// plane (package localkube) per test binary, started by Main from TestMain,
// and a fresh namespace per test. Until (and Changes) wait for a condition
// on a namespace's objects by watching them, never on a timer.
//
// It prints the components' logs when a test fails and leaves no process
// behind, even when the test binary panics or times out (the components die
// with it). It must not be imported outside _test.go
// files.
package kubetest
