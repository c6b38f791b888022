package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// action.yml is a drop-in for armory/cli-deploy-action: its inputs and
// outputs by Armory's names, and every input reaching the entry point the
// action.txtar script runs.
func TestActionDropIn(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var a struct {
		Inputs  map[string]struct{ Required bool } `yaml:"inputs"`
		Outputs map[string]any                     `yaml:"outputs"`
		Runs    struct {
			Using string `yaml:"using"`
			Steps []struct {
				ID  string            `yaml:"id"`
				Env map[string]string `yaml:"env"`
				Run string            `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"runs"`
	}
	if err := yaml.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	// armory/cli-deploy-action's inputs (action.yaml, docs gh-action.md), plus server.
	for _, in := range []string{"clientId", "clientSecret", "path-to-file", "applicationName", "addContext", "waitForDeployment", "withScmFile", "server"} {
		if _, ok := a.Inputs[in]; !ok {
			t.Errorf("input %s missing", in)
		}
	}
	for _, out := range []string{"DEPLOYMENT_ID", "LINK", "RUN_RESULT"} {
		if _, ok := a.Outputs[out]; !ok {
			t.Errorf("output %s missing", out)
		}
	}
	entry, err := os.ReadFile(filepath.Join("..", "action", "entrypoint.sh"))
	if err != nil {
		t.Fatal(err)
	}
	var start map[string]string
	for _, s := range a.Runs.Steps {
		if s.ID == "start" {
			start = s.Env
			if !strings.Contains(s.Run, "action/entrypoint.sh") {
				t.Errorf("the start step runs %q, not the entry point", s.Run)
			}
		}
		if strings.Contains(s.Run, "go install") {
			t.Errorf("a step needs the Go toolchain: %q", s.Run)
		}
	}
	used := regexp.MustCompile(`\$\{(INPUT_[A-Z_]+)`).FindAllStringSubmatch(string(entry), -1)
	for _, m := range used {
		if _, ok := start[m[1]]; !ok {
			t.Errorf("entrypoint.sh reads %s, which action.yml does not set", m[1])
		}
	}
	for in := range a.Inputs {
		if slices.Contains([]string{"version", "binary"}, in) {
			continue
		}
		wired := false
		for _, v := range start {
			if strings.Contains(v, "inputs."+in+" ") {
				wired = true
			}
		}
		if !wired {
			t.Errorf("input %s reaches no variable of the start step", in)
		}
	}
}
