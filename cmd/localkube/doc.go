// Command localkube runs Sortie's local Kubernetes control plane for people
// and scripts (make cluster-up / cluster-down / demo). It is development
// tooling, not part of the sortie binary.
//
//	localkube build           build (or find cached) control-plane binaries
//	localkube helm            build (or find cached) the pinned helm; prints its path
//	localkube up [--dir D]    start a cluster in the background; prints KUBECONFIG=<path>
//	localkube down [--dir D]  stop it
//	localkube run [--dir D]   run a cluster in the foreground until interrupted
//
// It must not be imported, nor be linked into the sortie binary.
package main
