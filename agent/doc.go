// Package agent is both ends of the connection between `sortie server` and
// the `sortie agent` in each cluster: the protocol (package agentpb) is one
// long-lived bidirectional gRPC stream per agent, which the agent opens.
//
// The server half, Hub, accepts the streams, keeps the connected agents by
// tenant and identifier, and is the runner's Executor for their accounts: a
// command goes to the agent named by its account and Execute waits for the
// result, waiting for the agent to come back and sending the command again
// if it went away. The agent half, Agent, keeps the stream open (jittered
// exponential backoff), runs each command id once through its executor
// (package kubeexec in `sortie agent`), and keeps results a while so that a
// repeated command is answered, not run twice.
//
// Invariants: agents dial out (the server never connects to a cluster);
// only the agent holds cluster credentials; only the server persists. A
// second agent with the same identifier in a tenant is refused while the
// first one's stream lives. The package must not import package kube or
// client-go: the agent's executor is passed in.
package agent
