// Package agentpb is the wire protocol between `sortie agent` and `sortie
// server` (agent.proto), with its generated Go code. `make proto`
// regenerates agent.pb.go and agent_grpc.pb.go; a test checks that the
// committed code matches the .proto. It holds no logic: package agent
// implements both ends.
//
// It must not hold logic or import anything of Sortie: it is the contract
// both ends compile against, nothing more.
package agentpb
