// Command bench measures Sortie against baselines taken in the same run, and
// prints each figure next to its baseline with their ratio:
//
//   - rollout: start-to-completion wall time of a 3-step canary (setWeight
//     25, 50, 100 of a 4-replica Deployment, a new image each time) through
//     `sortie server` and `sortie agent` as separate processes (started over
//     HTTP, followed on the event stream), and through the runner, the
//     SQLite store and the in-process executor, beside `kubectl apply -f` +
//     `kubectl rollout status` of the same image change on the same local
//     Kubernetes cluster; every run is checked in the cluster;
//   - rollback: time from the rollback request (POST
//     /api/v1/pipelines/{id}/rollback, the canary waiting for an approval at
//     50 %) until a pod watch sees the old version fully Ready again and no
//     new pod left, beside `kubectl rollout undo` watched the same way;
//   - memory: the resident memory (VmRSS, VmHWM) of a fresh `sortie agent`
//     idle after connecting, and during and after a deployment of 50
//     Deployments in one target (the agent watches workloads only while a
//     command runs on them), with kubectl's time for the same change of the
//     50 Deployments for scale;
//   - engine: transitions per second of the runner with the SQLite store and
//     an executor that answers every command at once (the engine and store
//     path, not Kubernetes), beside the store's own save rate and the pure
//     engine's rate.
//
// Run it with `make bench` or `go run ./bench` from the repository root
// (-only picks parts); the cluster parts build the local cluster's binaries
// the first time (several minutes) and ./cmd/sortie every time. It is a
// measuring tool: it must not be imported, and it asserts nothing beyond
// checking that what it timed really happened.
package main
