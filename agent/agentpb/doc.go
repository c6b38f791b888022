// Package agentpb is the wire protocol between `sortie agent` and `sortie
// server` (agent.proto), with its generated Go code. `make proto`
// regenerates agent.pb.go and agent_grpc.pb.go; a test checks that the
// committed code matches the .proto. It holds no logic: package agent
// implements both ends.
package agentpb
