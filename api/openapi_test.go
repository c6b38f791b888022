package api_test

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// openAPIRoutes returns "METHOD /path" for every operation of the document.
func openAPIRoutes(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                               `yaml:"openapi"`
		Paths   map[string]map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("%s is OpenAPI %q, want 3.1", path, doc.OpenAPI)
	}
	routes := map[string]bool{}
	for p, ops := range doc.Paths {
		for method, op := range ops {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
			default:
				continue // parameters, summary, ...
			}
			if _, ok := op["responses"]; !ok {
				t.Errorf("%s %s has no responses", method, p)
			}
			routes[strings.ToUpper(method)+" "+p] = true
		}
	}
	return routes
}
