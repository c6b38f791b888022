package api_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/sqlite"
)

const callbackPath = "/api/v1/pipelines/p1/webhooks/prod/canary/1/callback"

func TestWebhookCallbackRoute(t *testing.T) {
	h := newHarness(t)
	h.runner.add(samplePipeline(store.DefaultTenant, "p1", time.Now()))
	deployer, _ := h.token(store.DefaultTenant, pipeline.RoleDeployer)
	resp := h.do("POST", callbackPath, deployer, map[string]any{"success": false, "mdMessage": "smoke tests **failed**"})
	if resp.status != http.StatusOK {
		t.Fatalf("callback: %d %s", resp.status, resp.body)
	}
	ev, ok := h.runner.acted[0].(pipeline.WebhookCallback)
	if !ok || ev.CommandID != "p1/prod/canary/1" || ev.Success || ev.Message != "smoke tests **failed**" || ev.By.Name == "" {
		t.Errorf("event %#v", h.runner.acted[0])
	}

	for name, tc := range map[string]struct {
		token  string
		body   any
		status int
	}{
		"no success":   {deployer, map[string]any{"mdMessage": "?"}, http.StatusBadRequest},
		"unknown key":  {deployer, map[string]any{"success": true, "message": "x"}, http.StatusBadRequest},
		"a viewer":     {first(h.token(store.DefaultTenant, pipeline.RoleViewer)), map[string]any{"success": true}, http.StatusForbidden},
		"other tenant": {first(h.token(otherTenant, pipeline.RoleDeployer)), map[string]any{"success": true}, http.StatusNotFound},
	} {
		if resp := h.do("POST", callbackPath, tc.token, tc.body); resp.status != tc.status {
			t.Errorf("%s: %d %s, want %d", name, resp.status, resp.body, tc.status)
		}
	}
	// The engine's refusal of an ended step reaches the caller as a 409.
	h.runner.err = &pipeline.Error{Code: pipeline.CodeConflict, Message: "webhook step canary/1 of target prod has ended (it is FAILED); the callback comes too late"}
	if resp := h.do("POST", callbackPath, deployer, map[string]any{"success": true}); resp.status != http.StatusConflict || !strings.Contains(string(resp.body), "comes too late") {
		t.Errorf("late callback: %d %s", resp.status, resp.body)
	}
}

func first[A, B any](a A, _ B) A { return a }

func TestProviderRoutes(t *testing.T) {
	ps, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "providers.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Close() })
	if err := ps.CreateTenant(t.Context(), otherTenant); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(o *api.Options) { o.Providers = ps })
	admin, _ := h.token(store.DefaultTenant, pipeline.RoleTenantAdmin)
	viewer, _ := h.token(store.DefaultTenant, pipeline.RoleViewer)
	deployer, _ := h.token(store.DefaultTenant, pipeline.RoleDeployer)
	other, _ := h.token(otherTenant, pipeline.RoleTenantAdmin)
	prom := map[string]any{"name": "prom", "type": "prometheus", "url": "http://prometheus:9090", "auth": map[string]any{"type": "bearer", "tokenSecret": "prom-token"}}

	if resp := h.do("POST", "/api/v1/providers", deployer, prom); resp.status != http.StatusForbidden {
		t.Errorf("deployer adds: %d", resp.status)
	}
	if resp := h.do("POST", "/api/v1/providers", admin, prom); resp.status != http.StatusCreated || resp.header.Get("Location") != "/api/v1/providers/prom" {
		t.Fatalf("admin adds: %d %s", resp.status, resp.body)
	}
	if resp := h.do("POST", "/api/v1/providers", admin, prom); resp.status != http.StatusConflict {
		t.Errorf("add twice: %d", resp.status)
	}
	if resp := h.do("POST", "/api/v1/providers", admin, map[string]any{"name": "dd", "type": "datadog"}); resp.status != http.StatusBadRequest || !strings.Contains(string(resp.body), "apiKeySecret") {
		t.Errorf("invalid provider: %d %s", resp.status, resp.body)
	}
	resp := h.do("GET", "/api/v1/providers", viewer, nil)
	var list api.ProviderList
	if err := json.Unmarshal(resp.body, &list); err != nil || resp.status != http.StatusOK {
		t.Fatalf("list: %d %s", resp.status, resp.body)
	}
	if len(list.Providers) != 1 || list.Providers[0].Name != "prom" || list.Providers[0].Auth.TokenSecret != "prom-token" || list.Providers[0].CreatedAt.IsZero() {
		t.Errorf("list %+v", list)
	}
	if resp := h.do("GET", "/api/v1/providers", other, nil); !strings.Contains(string(resp.body), `"providers":[]`) {
		t.Errorf("other tenant sees %s", resp.body)
	}
	if resp := h.do("DELETE", "/api/v1/providers/prom", other, nil); resp.status != http.StatusNotFound {
		t.Errorf("other tenant deletes: %d", resp.status)
	}
	if resp := h.do("DELETE", "/api/v1/providers/prom", viewer, nil); resp.status != http.StatusForbidden {
		t.Errorf("viewer deletes: %d", resp.status)
	}
	if resp := h.do("DELETE", "/api/v1/providers/prom", admin, nil); resp.status != http.StatusNoContent {
		t.Errorf("admin deletes: %d %s", resp.status, resp.body)
	}
	if resp := h.do("DELETE", "/api/v1/providers/prom", admin, nil); resp.status != http.StatusNotFound {
		t.Errorf("delete twice: %d", resp.status)
	}
}
