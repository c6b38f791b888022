// Package charts holds the tests of the Helm charts beside it, run with a
// helm built from the Go module proxy (tools/helm, pinned; cached like the
// cluster binaries) against the shared local cluster.
//
// It must not be imported: it holds only tests.
package charts
