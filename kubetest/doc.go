// Package kubetest gives tests a real Kubernetes cluster: one local control
// plane (package localkube) per test binary, run by Main from TestMain and
// started by the first test that asks for it (a binary whose tests need no
// cluster starts none), and a fresh namespace per test. Until (and Changes)
// wait for a condition on a namespace's objects by watching them, never on
// a timer. SampleApp and SampleService are the tests' sample application
// (ReadyByImage counts its Ready pods by image);
// HostIP is where a stand-in listens for the API server's service proxy;
// ApplyFile installs what an operator would have (CRDs, say).
// NewFaultProxy puts a TLS reverse proxy in front of the API server whose
// faults (503, 429, 403, connection resets, an outage of every request) the
// test schedules, for the fault tests of the runner and (through a
// kubeconfig file) of an agent process.
//
// It prints the components' logs when a test fails and leaves no process
// behind, even when the test binary panics or times out (the components die
// with it). It must not be imported outside _test.go files.
package kubetest
