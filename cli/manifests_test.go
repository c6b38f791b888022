package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sortie-cd/sortie/deployfile"
	"github.com/sortie-cd/sortie/runner"
)

// The manifests deploy start sends must be found by the server's
// runner.Load exactly where the deployment file says, whichever way the CLI
// found them: in the file's folder, in a directory entry, through the
// working-directory fallback, or under a leading "/".
func TestStartRequestLoadsOnTheServer(t *testing.T) {
	root := t.TempDir()
	write := func(rel, text string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cm := func(name string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n"
	}
	write("deploy/app.yml", `version: v1
kind: kubernetes
application: web
targets:
  dev:
    account: local
    namespace: web
    strategy: straight
strategies:
  straight:
    canary:
      steps:
        - setWeight: 100
manifests:
  - path: beside.yaml
  - path: dir/
  - path: from-cwd/cm.yaml
  - path: /rooted.yaml
  - path: ../shared/common.yaml
`)
	write("deploy/beside.yaml", cm("beside"))
	write("deploy/dir/a.yaml", cm("a"))
	write("deploy/dir/sub/b.yml", cm("b"))
	write("deploy/dir/notes.txt", "not a manifest")
	write("from-cwd/cm.yaml", cm("cwd")) // only relative to the working directory
	write("deploy/rooted.yaml", cm("rooted"))
	write("shared/common.yaml", cm("common"))
	t.Chdir(root)

	var errOut bytes.Buffer
	req, app, err := buildStartRequest(IOStreams{Out: &bytes.Buffer{}, ErrOut: &errOut}, filepath.Join("deploy", "app.yml"), deployfile.Options{RequireManifests: true})
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if app != "web" || req.FileName != "deploy/app.yml" {
		t.Errorf("application %q, file name %q", app, req.FileName)
	}
	var keys []string
	for k := range req.Manifests {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"../shared/common.yaml", "beside.yaml", "dir/a.yaml", "dir/sub/b.yml", "from-cwd/cm.yaml", "rooted.yaml"}
	if !slices.Equal(keys, want) {
		t.Errorf("manifest keys %q, want %q", keys, want)
	}
	if !strings.Contains(errOut.String(), "working directory") {
		t.Errorf("no warning for the working-directory fallback:\n%s", errOut.String())
	}

	f, _, err := runner.Load(runner.StartRequest(req))
	if err != nil {
		t.Fatalf("the server refuses what the CLI sends: %v", err)
	}
	var names []string
	for _, m := range f.Manifests {
		for _, mf := range m.Files {
			for _, o := range mf.Objects {
				names = append(names, o.Name)
			}
		}
	}
	slices.Sort(names)
	if w := []string{"a", "b", "beside", "common", "cwd", "rooted"}; !slices.Equal(names, w) {
		t.Errorf("objects the server read: %q, want %q", names, w)
	}
}

func TestSubmittedName(t *testing.T) {
	for in, want := range map[string]string{
		"deploy.yml":          "deploy.yml",
		"./a/../b/deploy.yml": "b/deploy.yml",
		"../up/deploy.yml":    "deploy.yml",
		"/abs/deploy.yml":     "deploy.yml",
	} {
		if got := submittedName(filepath.FromSlash(in)); got != want {
			t.Errorf("submittedName(%q) = %q, want %q", in, got, want)
		}
	}
}
