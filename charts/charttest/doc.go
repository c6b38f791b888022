// Package charttest runs the pinned helm (tools/helm, built by
// localkube.EnsureHelm) on the repository's charts, and turns the
// Deployment a chart renders into the process its pod would run: kwok pods
// run no containers, so tests run the real sortie binary with exactly the
// rendered arguments and environment. It must not be imported outside
// tests.
package charttest
