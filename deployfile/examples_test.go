package deployfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDesignExamplesValidate(t *testing.T) {
	dir := examplesDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples in %s (%v)", dir, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			res := Load(f, Options{WorkDir: dir})
			if res.File == nil || len(res.Errors) > 0 {
				t.Fatalf("want valid, got:\n%v", res.Errors)
			}
			if len(res.File.Targets) == 0 || len(res.File.Strategies) == 0 {
				t.Errorf("parsed no targets or strategies: %+v", res.File)
			}
		})
	}
}

// armoryOutcome is what validating a real Armory file gives: the errors
// as "line:col code" in order (none: the file is valid).
type armoryOutcome []string

// Every kind: kubernetes file of armory-examples and its outcome. Each
// rejection is a real mistake in the file, checked by hand:
var armoryOutcomes = map[string]armoryOutcome{
	"borealis-demo/configuration/deploy-infra.yml": nil,
	"borealis-demo/deploy-automated-2-env.yml":     nil,
	// manifests[3] is for target "perf-test", which does not exist (the
	// target is called "perf").
	"borealis-demo/deploy-locust-w-jenkins.yml": {"100:15 " + CodeUnknownRef},
	"borealis-demo/deploy-locust.yml":           {"100:15 " + CodeUnknownRef},
	"borealis-demo/deploy-single.yml":           nil,
	"borealis-demo/deploy-w-argo.yml":           nil,
	"borealis-demo/deploy-w-jenkins.yml":        nil,
	// manifests[1] is for target "prod-eu", which this file does not define;
	// webhooks Run_Integration_Tests and Run_Security_Scanners are defined
	// twice, so which one runs is ambiguous.
	"borealis-demo/deploy-webhook.yml": {"42:16 " + CodeUnknownRef, "228:5 " + CodeDuplicate, "246:5 " + CodeDuplicate},
	"borealis-demo/deploy.yml":         nil,
	"borealis-demo/reset/deploy1.yml":  nil,
	"borealis-demo/reset/deploy2.yml":  nil,
	"borealis-demo/reset/deploy3.yml":  nil,

	"cdaas-examples/hello-armory/first-deployment.yaml":  nil,
	"cdaas-examples/hello-armory/second-deployment.yaml": nil,
	"docs-cdaas-sample/deploy-webhook.yml":               nil,
	"docs-cdaas-sample/deploy.yml":                       nil,
}

// Manifest paths that exist nowhere in the published repositories: a
// warning by default, an error with RequireManifests.
var armoryMissingManifests = map[string][]string{
	"borealis-demo/configuration/deploy-infra.yml": {"../reset/potato-facts-3.yml", "../reset/potato-lies-3.yml"},
	"borealis-demo/deploy-locust-w-jenkins.yml":    {"thirdParty/locust/generatedManifest.yml"},
	"borealis-demo/deploy-locust.yml":              {"thirdParty/locust/generatedManifest.yml"},
	"borealis-demo/deploy-single.yml":              {"manifests/hostname.yml"},
	"borealis-demo/reset/deploy1.yml":              {"potato-facts-1.yml", "potato-lies-1.yml"},
	"borealis-demo/reset/deploy2.yml":              {"potato-facts-2.yml", "potato-lies-2.yml"},
	"borealis-demo/reset/deploy3.yml":              {"potato-facts-3.yml", "potato-lies-3.yml", "argo-facts-3.yml"},
}

// armoryDeployFiles finds the kind: kubernetes files under armory-examples.
func armoryDeployFiles(t testing.TB, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		if ext := filepath.Ext(p); ext != ".yml" && ext != ".yaml" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			if strings.TrimSpace(line) == "kind: kubernetes" && !strings.HasPrefix(line, " ") {
				rel, _ := filepath.Rel(root, p)
				files = append(files, filepath.ToSlash(rel))
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestArmoryExamples(t *testing.T) {
	root := armoryDir(t)
	files := armoryDeployFiles(t, root)
	var listed []string
	for f := range armoryOutcomes {
		listed = append(listed, f)
	}
	slices.Sort(listed)
	if diff := cmp.Diff(listed, files); diff != "" {
		t.Fatalf("kind: kubernetes files differ from the table (-table +found):\n%s", diff)
	}
	for _, rel := range files {
		t.Run(rel, func(t *testing.T) {
			// Armory's CLI ran from the repository's root folder.
			repo := filepath.Join(root, strings.Split(rel, "/")[0])
			path := filepath.Join(root, filepath.FromSlash(rel))
			res := Load(path, Options{WorkDir: repo})
			if res.File == nil {
				t.Fatalf("did not parse: %v", res.Errors)
			}
			var got armoryOutcome
			for _, e := range res.Errors {
				got = append(got, fmt.Sprintf("%d:%d %s", e.Line, e.Col, e.Code))
			}
			if diff := cmp.Diff(armoryOutcomes[rel], got); diff != "" {
				t.Errorf("outcome (-want +got):\n%s\nerrors:\n%v", diff, res.Errors)
			}
			var missing []string
			for _, w := range res.Warnings {
				if w.Code == CodeManifestMissing {
					missing = append(missing, strings.Split(w.Message, "\"")[1])
				}
			}
			if diff := cmp.Diff(armoryMissingManifests[rel], missing); diff != "" {
				t.Errorf("missing manifests (-want +got):\n%s", diff)
			}
			strict := Load(path, Options{WorkDir: repo, RequireManifests: true})
			if n := len(strict.Errors) - len(res.Errors); n != len(missing) {
				t.Errorf("with RequireManifests: %d more errors, want %d", n, len(missing))
			}
		})
	}
}

// The borealis-demo files name manifests relative to the repository root,
// which Armory's CLI resolved from the working directory. A copy of
// deploy.yml kept outside the repository, run from the repository root,
// finds every manifest there, with a warning that says how to write it.
func TestArmoryCwdFallback(t *testing.T) {
	repo := filepath.Join(armoryDir(t), "borealis-demo")
	data, err := os.ReadFile(filepath.Join(repo, "deploy.yml"))
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := filepath.Join(t.TempDir(), "deploy.yml")
	if err := os.WriteFile(elsewhere, data, 0o644); err != nil {
		t.Fatal(err)
	}
	res := Load(elsewhere, Options{WorkDir: repo})
	if len(res.Errors) > 0 {
		t.Fatal(res.Errors)
	}
	var lines []int
	for _, w := range res.Warnings {
		if w.Code == CodeManifestCwd {
			lines = append(lines, w.Line)
			if !strings.Contains(w.Message, "relative to the working directory "+repo) || !strings.Contains(w.Message, "write it as") {
				t.Errorf("warning does not explain itself: %s", w.Message)
			}
		}
	}
	if diff := cmp.Diff([]int{102, 103, 109, 115, 116}, lines); diff != "" {
		t.Errorf("working-directory warnings on lines (-want +got):\n%s", diff)
	}
	objs := 0
	for _, m := range res.File.Manifests {
		for _, f := range m.Files {
			objs += len(f.Objects)
		}
	}
	if objs < 5 {
		t.Errorf("read %d objects through the working directory, want the manifests' objects", objs)
	}

	// From another working directory the same paths are not found.
	res = Load(elsewhere, Options{WorkDir: t.TempDir()})
	missing := 0
	for _, w := range res.Warnings {
		if w.Code == CodeManifestMissing {
			missing++
		}
	}
	if missing != 5 {
		t.Errorf("want 5 not-found warnings, got %v", res.Warnings)
	}

	// A leading / that is no absolute path is read relative to the file.
	res = Load(filepath.Join(repo, "deploy-automated-2-env.yml"), Options{WorkDir: t.TempDir()})
	if len(res.Errors) > 0 {
		t.Fatal(res.Errors)
	}
	var slash int
	for _, w := range res.Warnings {
		if w.Code == CodeManifestCwd && strings.Contains(w.Message, "starts with /") {
			slash++
		}
	}
	if slash != 2 {
		t.Errorf("want 2 warnings about a leading /, got %v", res.Warnings)
	}
}
