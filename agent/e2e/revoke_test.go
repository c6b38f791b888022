package e2e

import (
	"net/http"
	"regexp"
	"testing"

	"github.com/sortie-cd/sortie/api"
)

// TestDeletedCredentialCutsTheAgentProcess reproduces issue 16 item 5 with
// `sortie server` and `sortie agent` as processes: the agent's stream was
// checked once, so deleting its credential left it connected, receiving
// the account's commands. Now the server cuts it at once (the token was
// revoked) and the agent cannot come back (no token for a deleted
// credential); the server lists no agent.
func TestDeletedCredentialCutsTheAgentProcess(t *testing.T) {
	s := newSortie(t)
	s.startAgent()
	s.call("DELETE", "/api/v1/credentials/"+s.agentID, nil, http.StatusNoContent, nil)
	s.agent.WaitLine(regexp.MustCompile(`msg="not connected to the server; retrying".*the access token was revoked`))
	s.agent.WaitLine(regexp.MustCompile(`msg="not connected to the server; retrying".*get a token`))
	var list api.AgentList
	s.call("GET", "/api/v1/agents", nil, http.StatusOK, &list)
	if len(list.Agents) != 0 {
		t.Errorf("agents after the deletion: %+v, want none", list.Agents)
	}
}
