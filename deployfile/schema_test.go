package deployfile

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// The schema in docs/ is generated from the model; regenerate it with
// `go generate ./deployfile` when this fails.
func TestSchemaUpToDate(t *testing.T) {
	want, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("..", "docs", "deployfile.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("docs/deployfile.schema.json is out of date: run go generate ./deployfile")
	}
}

func TestSchemaCoversModel(t *testing.T) {
	b, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Required    []string                   `json:"required"`
		Properties  map[string]json.RawMessage `json:"properties"`
		Definitions map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "kind", "application", "targets", "manifests", "strategies", "analysis", "webhooks", "trafficManagement", "deploymentConfig", "context", "description"} {
		if _, ok := s.Properties[k]; !ok {
			t.Errorf("top-level key %q missing from the schema", k)
		}
	}
	for def, keys := range map[string][]string{
		"Pause":     {"duration", "unit", "units", "untilApproved", "requiresRoles", "approvalExpiration"},
		"BlueGreen": {"activeService", "previewService", "redirectTrafficAfter", "shutDownOldVersionAfter", "shutdownOldVersionAfter"},
		"Step":      {"setWeight", "pause", "analysis", "runWebhook", "exposeServices"},
		"Istio":     {"virtualService", "destinationRule"},
	} {
		for _, k := range keys {
			if _, ok := s.Definitions[def].Properties[k]; !ok {
				t.Errorf("%s.%s missing from the schema", def, k)
			}
		}
	}
}
