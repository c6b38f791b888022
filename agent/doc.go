// Package agent is both ends of the connection between `sortie server` and
// the `sortie agent` in each cluster: the protocol (package agentpb) is one
// long-lived bidirectional gRPC stream per agent, which the agent opens.
//
// The server half, Hub, accepts the streams, keeps the connected agents by
// tenant and identifier, and is the runner's Executor for their accounts: a
// command goes to the agent named by its account and Execute waits for the
// result, waiting for the agent to come back and sending the command again
// if it went away; when the runner gives up on a command (rollback, end of
// the pipeline, deadline) the agent is told to cancel it. The agent half,
// Agent, keeps the stream open (jittered exponential backoff), runs each
// command id once through its executor (package kubeexec in `sortie
// agent`), attaches a repeated id to its running execution, and keeps
// finished results a while so that a repeat is answered, not run twice.
// When its Run ends, it cancels its commands and relayed calls and returns
// only once they have returned: no goroutine of it outlives Run.
// The executor's Job.Report crosses the stream too: each report travels as
// a Report message and reaches the Job.Report of the command's Execute on
// the server, so agent-run targets get the same events (kubeexec's
// "applied") as in-process ones.
//
// Decisions:
//
//   - One agent per identifier and tenant. A second agent process with the
//     same identifier is refused (gRPC AlreadyExists, naming the first one's
//     address) while the first one's stream lives and heartbeats; it keeps
//     retrying with backoff and gets in once the first is gone. The same
//     process reconnecting (its Hello carries a per-process instance id)
//     replaces its own stale stream at once. Refusal, not take-over, so two
//     agents never drive one account's cluster at the same time; the
//     install manifest uses the Recreate strategy for that reason.
//   - The Hub is served on the API's own listener: gRPC requests (HTTP/2,
//     content-type application/grpc) go to it through grpc-go's ServeHTTP,
//     everything else to the API. Plaintext uses cleartext HTTP/2 with prior
//     knowledge (net/http's UnencryptedHTTP2), which the agent allows only to
//     a loopback server; in production TLS is terminated in front of the
//     server by a proxy that speaks HTTP/2 to it, and the agent verifies the
//     certificate with the system's roots or --ca-file.
//   - The agent authenticates with a client credential's bearer token
//     (role agent, or an admin role); its tenant is the token's. A stream
//     lives by its token (auth's Service.Stream): a minute before it
//     expires (halfway for a shorter-lived one) the hub sends RenewToken,
//     the agent answers with a new token of its credential (Token), and
//     the stream goes on with no interruption; a token of another
//     credential ends it. The hub ends the stream with Unauthenticated when
//     its token expires unrenewed or its credential is revoked (deleted,
//     its roles changed); the agent then reconnects, if its credential
//     still gets a token with the agent role.
//   - HTTP(S) proxies: grpc's default dialer and the token request's
//     transport both honour HTTPS_PROXY and NO_PROXY.
//   - HTTP relay: Hub.Relay returns an http.Client-like RelayClient for one
//     agent; each call travels as a RelayRequest on the agent's stream and
//     the agent makes it from inside its network (with the header
//     X-Sortie-Relayed-By: <agent id>) and answers with a RelayResponse.
//     Request bodies over 1 MiB are refused by the hub, response bodies
//     over 10 MiB fail the call on the agent, and every call ends at its
//     context's deadline (one minute without one, five at most). A relayed
//     call is not retried by the protocol: a call to an agent that is not
//     connected, or that goes away mid-call, fails at once, and the caller
//     (webhook retryCount, analysis's retries within its window) decides.
//     The agent connects only where its egress policy allows (package
//     egress: no loopback, link-local or cloud metadata address unless
//     Options.RelayAllow, --relay-allow, allows it), and checks the call's
//     scope on every hop: a call carrying a secret follows no redirect to
//     another host, and one holding host-restricted secrets goes only to
//     their hosts (the hub refuses the first hop before sending).
//     The agent logs only the method and host of a relayed call: paths,
//     queries and headers may carry secrets. A relayed body travels as one
//     message of the stream, so it must cross within three heartbeat
//     intervals (30 s by default: 10 MiB needs about 350 KB/s).
//   - Heartbeats both ways every interval (the server's, told in Welcome);
//     three intervals of silence end the stream on either side.
//   - Reports: the agent sends a command's reports, then its result, on
//     the same stream; the hub queues what arrives for the command in that
//     order and Execute appends the reports (job.Report) before it returns
//     the result, so the log has them before the result's transition. The
//     stream's reading only queues: a slow store never delays heartbeats.
//     A report is refused (by the agent before sending, by the hub on
//     receipt) over 256 KiB of data, when the data is not JSON, or for a
//     type the server writes itself (action, command, status, webhook,
//     judgment); the hub ignores reports for a command it does not wait
//     for (unknown, finished, another agent's), and drops reports beyond
//     4 MiB queued for one command. Reports are not kept: one made while
//     disconnected is lost, and a repeat answered from a kept result
//     sends none.
//   - Traces: the hub sends, in each Command, the traceparent of the
//     context's span (the runner's command span); an agent with
//     Options.Tracer runs the command in a child span of it, so its work is
//     in the pipeline's trace.
//
// Invariants: agents dial out (the server never connects to a cluster);
// only the agent holds cluster credentials; only the server persists. The
// package must not import package kube or client-go: the agent's executor
// is passed in.
package agent
