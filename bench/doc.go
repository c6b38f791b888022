// Command bench measures Sortie against baselines taken in the same run, and
// prints each figure next to its baseline with their ratio:
//
//   - rollout: start-to-completion wall time of a 3-step canary (setWeight
//     25, 50, 100 of a 4-replica Deployment, a new image each time) through
//     the runner, the SQLite store and the in-process executor on a local
//     Kubernetes cluster, beside `kubectl apply -f` + `kubectl rollout
//     status` of the same image change on the same cluster;
//   - engine: transitions per second of the runner with the SQLite store and
//     an executor that answers every command at once (the engine and store
//     path, not Kubernetes), beside the store's own save rate and the pure
//     engine's rate.
//
// Run it with `make bench` or `go run ./bench` from the repository root; the
// rollout part builds the local cluster's binaries the first time (several
// minutes). It is a measuring tool: it must not be imported, and it asserts
// nothing.
package main
