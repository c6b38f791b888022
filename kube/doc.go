// Package kube does Sortie's work inside one Kubernetes cluster, on
// client-go: server-side apply of a target's manifests (field manager
// "sortie", namespace forced to the target's, or each object's own for a
// target that names none; CRDs and Namespaces first),
// canary by pod ratio inside the user's Deployment (its earlier
// ReplicaSets held meanwhile, see handover.go), blue/green by Service
// selectors, promotion of the new
// version into the user's own Deployment object (leaving its replica count
// to a HorizontalPodAutoscaler that scales it, see autoscale.go), rollback,
// a previous version kept warm out of traffic for a rollback after success
// (warm.go), and readiness
// watched (never polled) with the reason when pods do not become Ready.
//
// Every operation is idempotent and derives what it needs from the cluster
// and its arguments, so a command repeated after a crash or reconnect does no
// harm. What must survive between commands (the replica count before a
// canary, a Service's selector before a redirect) is written on the objects
// themselves as sortie.dev annotations.
//
// The pods of every version carry Armory's stamp (deploy.armory.io
// annotations and ARMORY_* environment variables, see ReplicaSetName), the
// deployment id being the pipeline that introduced the version, so the same
// manifests again change no pod.
//
// Transient classes an operation's error: one that may pass by itself (the
// API server's timeouts, throttling, 5xx, conflicts, a broken connection),
// after which the caller may run the operation again, or a terminal one.
//
// It must not decide what to do next (that is the engine's job), keep state
// in memory between calls, or log object contents (Secrets may be among the
// manifests).
package kube
