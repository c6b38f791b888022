// Package kubetest gives tests a real Kubernetes cluster: one local control
// plane (package localkube) per test binary, run by Main from TestMain and
// started by the first test that asks for it (a binary whose tests need no
// cluster starts none), and a fresh namespace per test. Until (and Changes)
// wait for a condition on a namespace's objects by watching them, never on
// a timer. SampleApp and SampleService are the tests' sample application.
//
// It prints the components' logs when a test fails and leaves no process
// behind, even when the test binary panics or times out (the components die
// with it). It must not be imported outside _test.go files.
package kubetest
