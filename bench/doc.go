// Command bench measures Sortie against baselines taken in the same run, and
// prints each figure next to its baseline with their ratio:
//
//   - rollout: start-to-completion wall time of a 3-step canary (setWeight
//     25, 50, 100 of a 4-replica Deployment, a new image each time) through
//     `sortie server` and `sortie agent` as separate processes (started over
//     HTTP, followed on the event stream), and through the runner, the
//     SQLite store and the in-process executor, beside `kubectl apply -f` +
//     `kubectl rollout status` of the same image change on the same local
//     Kubernetes cluster; every run is checked in the cluster. It runs
//     twice: on a quiet cluster (each rollout starts once every
//     Deployment's and ReplicaSet's status has caught up and no pod is
//     being deleted, then -rollout-idle, 2 s, later: the controller
//     manager's client-side limit, which the API does not show, is whole
//     again after 1.5 s), then back to back (each rollout starts as soon
//     as the statuses have caught up, the controller manager still paying
//     for the previous rollout's requests), and prints issue 17's goal
//     (server + agent at most 0.6× kubectl) for each. With
//     SORTIE_BENCH_TIMELINE=1 it also prints, for each server + agent run,
//     every change of a pod, ReplicaSet or Deployment the cluster showed,
//     with the steps' starts and ends, in milliseconds from the start. What
//     limits both sides is the controller manager's client-side limit (20
//     requests a second per controller by default): the ReplicaSet
//     controller's pod creations wait their turn behind its status updates
//     and events;
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
//     engine's rate;
//   - scale (issue 15): -scale-pipelines deployments (1,000 by default,
//     SORTIE_BENCH_SCALE_PIPELINES=10000 for the upper end), spread
//     over the accounts of -scale-agents agents (100), ALL IN FLIGHT AT
//     ONCE, through one `sortie server` on SQLite, then one on PostgreSQL,
//     then -scale-replicas (3) `sortie server` replicas sharing one
//     PostgreSQL database (Debian's binaries, started by internal/pgserver,
//     fsync on; the replicas share the master key and the bootstrap admin).
//     Each deployment is a first deployment of its own application with one
//     gate before its one command: half wait for an approval, half for a
//     timed pause long enough that every pipeline is started before the
//     first one ends (-scale-pause; by default N/25 s, at least 5 s). Every
//     pipeline is started and at its gate first (-scale-concurrency, 32,
//     calls at a time); then the approvals are given while the timer half
//     waits; then each pipeline's end is checked. It measures cause →
//     command, from just before the approve call (or from the pause's
//     deadline, as the pipeline states it) to the moment the agent's
//     executor gets the command, p50 and p99; starts, approvals and
//     completed pipelines per second; each server process's peak RSS
//     (VmHWM) and CPU time in the timed phase (/proc/PID/stat), and on
//     PostgreSQL the database's CPU too. Calls are spread over the replicas
//     as a round-robin balancer would (start on one, approve on the next),
//     and so are the agents' streams, so commands cross replicas through
//     the database. It prints the three sides, the ratios of the replicas
//     to one PostgreSQL server and to SQLite, and the goals (p99
//     and RSS on SQLite, the replicas' approvals per second against one
//     server's, the takeover) with whether each was met. Last, on the
//     replicas, the takeover: -scale-takeover (30) deployments waiting for
//     an approval on the last replica, which is killed with SIGKILL; from
//     the kill to a surviving replica's claim of each (its lease's owner in
//     the database), against the lease TTL (-scale-lease-ttl, the server's
//     15 s by default); each is then approved on a survivor and must end
//     SUCCEEDED.
//
// The scale part's agents are SIMULATED: 100 `sortie agent` processes with
// 100 clusters do not fit on a 2-core machine, so each is package agent's
// real Agent (its own credential, made through the API, and its own gRPC
// stream, the real protocol) in the benchmark's process, whose executor
// answers every command at once with success and touches no cluster. The
// scale part measures the control plane, not Kubernetes. What limits its
// figures: every process (servers, PostgreSQL, the 100 agents and the
// benchmark's own API calls and event streams, one per call in progress)
// shares one machine, here 2 cores, so CPU contention, not the design,
// sets the throughput, and replicas compete for the same cores instead of
// adding any; the pause's whole seconds are the timer's granularity in the
// deployment file.
//
// Run it with `make bench` or `go run ./bench` from the repository root
// (-only picks parts; `make bench-scale` runs the scale part alone, which
// needs no cluster); the cluster parts build the local cluster's binaries
// the first time (several minutes), and ./cmd/sortie is built once every
// run. It is a measuring tool: it must not be imported, and it asserts
// nothing beyond checking that what it timed really happened
// (TestScaleSmall runs the scale part with a dozen pipelines so that it
// does not rot).
package main
