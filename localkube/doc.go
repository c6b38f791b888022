// Package localkube builds and runs a real, local Kubernetes control plane for
// Sortie's tests and demo: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok (which simulates the kubelet, so pods "run" without
// containers while everything else — API server, controllers, scheduler,
// ReplicaSets, Services — is the real thing).
//
// The binaries are built from the Go module proxy through the separate tools
// module in tools/kube, once, into a cache directory keyed by that module's
// content; concurrent callers (several test packages at once) serialise on a
// file lock. Clusters listen on free loopback ports only and keep all their
// state in one directory.
//
// This package is development tooling. The product (server, agent) must never
// import it: production clusters are reached through kubeconfig or in-cluster
// configuration.
package localkube
