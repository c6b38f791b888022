package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// fakeAgents stands for the agent hub, which has its own tests over real
// gRPC (package agent).
type fakeAgents map[string][]api.AgentView

func (f fakeAgents) ListAgents(tenant string) []api.AgentView { return f[tenant] }

func TestListAgents(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	prod := api.AgentView{ID: "prod", Version: "v1.2.3", ClusterVersion: "v1.37.2", ConnectedAt: at, LastHeartbeat: at.Add(time.Minute), RemoteAddress: "10.0.0.7:40312"}
	h := newHarness(t, func(o *api.Options) {
		o.Agents = fakeAgents{store.DefaultTenant: {prod}, otherTenant: {{ID: "theirs"}}}
	})
	for role, want := range map[string]int{
		pipeline.RoleViewer:            http.StatusOK,
		pipeline.RoleDeployer:          http.StatusOK,
		pipeline.RoleTenantAdmin:       http.StatusOK,
		pipeline.RoleOrganizationAdmin: http.StatusOK,
		pipeline.RoleAgent:             http.StatusForbidden,
	} {
		tok, _ := h.token(store.DefaultTenant, role)
		resp := h.do("GET", "/api/v1/agents", tok, nil)
		if resp.status != want {
			t.Errorf("%s: %d %s, want %d", role, resp.status, resp.body, want)
			continue
		}
		if want != http.StatusOK {
			continue
		}
		var list api.AgentList
		if err := json.Unmarshal(resp.body, &list); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(api.AgentList{Agents: []api.AgentView{prod}}, list); diff != "" {
			t.Errorf("%s: agents (-want +got):\n%s", role, diff)
		}
	}
}

func TestListAgentsWithoutHubIsEmpty(t *testing.T) {
	h := newHarness(t)
	tok, _ := h.token(store.DefaultTenant, pipeline.RoleViewer)
	resp := h.do("GET", "/api/v1/agents", tok, nil)
	if resp.status != http.StatusOK || string(resp.body) != "{\"agents\":[]}\n" {
		t.Errorf("%d %q", resp.status, resp.body)
	}
}
