package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sortie-cd/sortie/deployfile"
)

// run runs sortie with args and returns its exit code and output.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(context.Background(), args, IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	return code, out.String(), errOut.String()
}

// repoRoot is the repository root, the parent of cli/.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("the repository root is not the parent of cli/: %v", err)
	}
	return dir
}

// armoryDir is the corpus of files written by real users of Armory
// CD-as-a-Service: $SORTIE_ARMORY_EXAMPLES, or ../shared/armory-examples
// beside the repository. When it is absent the test is skipped, loudly.
func armoryDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SORTIE_ARMORY_EXAMPLES")
	if dir == "" {
		dir = filepath.Join(filepath.Dir(repoRoot(t)), "shared", "armory-examples")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("SKIPPED: the Armory users' corpus is not here (%v); set SORTIE_ARMORY_EXAMPLES or put it at ../shared/armory-examples to run this test", err)
	}
	return dir
}

func TestValidateValid(t *testing.T) {
	t.Chdir(filepath.Join(repoRoot(t), "examples"))
	code, out, errOut := run(t, "validate", "-f", "environments.yml")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	want := `environments.yml is valid: application "ledger", 3 targets, 2 strategies, 2 manifest entries (1 object read), 2 webhooks, 0 analysis queries` + "\n"
	if out != want {
		t.Errorf("stdout:\n got %q\nwant %q", out, want)
	}
	if !strings.Contains(errOut, `environments.yml:49:5: warning: manifests[0].path "manifests/ledger/" does not exist`) {
		t.Errorf("stderr lacks the missing-manifest warning:\n%s", errOut)
	}
	if code, _, errOut := run(t, "validate", "--require-manifests", "-f", "environments.yml"); code != ExitFailure || !strings.Contains(errOut, "1 error found") {
		t.Errorf("--require-manifests: exit %d\n%s", code, errOut)
	}
}

func TestValidateInvalid(t *testing.T) {
	t.Chdir(filepath.Join(armoryDir(t), "borealis-demo"))
	code, out, errOut := run(t, "validate", "-f", "deploy-webhook.yml")
	if code != ExitFailure || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	for _, s := range []string{
		"deploy-webhook.yml:42:16: manifests[1] target \"prod-eu\" is not defined (targets defined: \"dev\", \"staging\")\n",
		"deploy-webhook.yml:228:5: webhook \"Run_Integration_Tests\" is defined twice (first on line 191); names must be unique\n",
		"deploy-webhook.yml:246:5: webhook \"Run_Security_Scanners\" is defined twice (first on line 210)",
		"3 errors found; the file is not valid\n",
	} {
		if !strings.Contains(errOut, s) {
			t.Errorf("stderr lacks %q:\n%s", s, errOut)
		}
	}
	if strings.Contains(errOut, "error: ") {
		t.Errorf("a failed validation is not reported as a crash:\n%s", errOut)
	}

	code, out, _ = run(t, "validate", "-f", "deploy-webhook.yml", "-o", "json")
	if code != ExitFailure {
		t.Fatalf("-o json: exit %d", code)
	}
	var got struct {
		Valid  bool `json:"valid"`
		Errors []struct {
			File    string `json:"file"`
			Line    int    `json:"line"`
			Column  int    `json:"column"`
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
		Warnings []json.RawMessage `json:"warnings"`
		Secrets  []string          `json:"secrets"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got.Valid || len(got.Errors) != 3 || got.Errors[0].Line != 42 || got.Errors[0].Column != 16 || got.Errors[0].Code != deployfile.CodeUnknownRef || got.Errors[0].File != "deploy-webhook.yml" {
		t.Errorf("json errors: %+v", got)
	}
	if len(got.Warnings) == 0 || len(got.Secrets) != 1 || got.Secrets[0] != "github_token" {
		t.Errorf("json warnings %d, secrets %v", len(got.Warnings), got.Secrets)
	}
}

func TestValidateJSONValid(t *testing.T) {
	t.Chdir(filepath.Join(armoryDir(t), "borealis-demo"))
	code, out, _ := run(t, "validate", "-f", "deploy.yml", "-o", "json")
	var got struct {
		Valid  bool              `json:"valid"`
		Errors []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != ExitOK || !got.Valid || got.Errors == nil || len(got.Errors) != 0 {
		t.Errorf("exit %d, %+v, %v\n%s", code, got, err, out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"validate"},
		{"validate", "-f", "x.yml", "-o", "xml"},
		{"validate", "-f", "x.yml", "extra"},
		{"deploy"},
		{"deploy", "plan"},
		{"deploy", "plan", "-f", "x.yml", "-o", "table"},
		{"template"},
		{"template", "kubernetes"},
		{"template", "kubernetes", "rolling"},
		{"template", "kubernetes", "canary", "--features", "manul"},
	} {
		code, _, errOut := run(t, args...)
		if code != ExitUsage || !strings.Contains(errOut, "Run 'sortie --help' for usage.") {
			t.Errorf("%v: exit %d, want %d\n%s", args, code, ExitUsage, errOut)
		}
	}
	_, _, errOut := run(t, "template", "kubernetes", "canary", "--features", "manul")
	if !strings.Contains(errOut, `did you mean "manual"?`) {
		t.Errorf("no suggestion for a misspelt feature:\n%s", errOut)
	}
	code, _, errOut := run(t, "validate", "-f", "does-not-exist.yml")
	if code != ExitFailure || !strings.Contains(errOut, "does-not-exist.yml: cannot read the deployment file") {
		t.Errorf("missing file: exit %d\n%s", code, errOut)
	}
}

func TestDeployPlan(t *testing.T) {
	t.Chdir(filepath.Join(armoryDir(t), "borealis-demo"))
	code, out, errOut := run(t, "deploy", "plan", "-f", "deploy.yml")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	for _, s := range []string{
		`Plan for "potato-facts": 7 targets in 3 waves.`,
		"goes straight to 100%",
		"Wave 1 (starts at once):\n  dev: account demo-dev-cluster, namespace borealis-dev\n",
		"Wave 2 (each target starts when the targets it depends on succeeded):\n  infosec:",
		"  prod-west (canary-pod): account demo-prod-west-cluster, namespace borealis-prod\n    after: infosec, staging\n",
		"      - wait for approval by Organization Admin\n",
		"      2. set weight 25%: potato-facts 1 new + 3 old of 4; potato-lies 1 new + 3 old of 4\n",
		"traffic split by an SMI TrafficSplit",
		"traffic split by an Istio VirtualService",
		`point active Service "potato-facts-external" at the new version`,
	} {
		if !strings.Contains(out, s) {
			t.Errorf("plan lacks %q:\n%s", s, out)
		}
	}

	code, out, _ = run(t, "deploy", "plan", "-f", "deploy.yml", "-o", "json")
	var plan deployfile.Plan
	if err := json.Unmarshal([]byte(out), &plan); err != nil || code != ExitOK {
		t.Fatalf("json: exit %d, %v", code, err)
	}
	if len(plan.Waves) != 3 || len(plan.Waves[2].Targets) != 4 || plan.Waves[2].Targets[0].Name != "prod-apac (canary-istio)" {
		t.Errorf("json plan waves: %+v", plan.Waves)
	}

	code, out, _ = run(t, "deploy", "plan", "-f", "deploy.yml", "-o", "yaml")
	var y deployfile.Plan
	if err := yaml.Unmarshal([]byte(out), &y); err != nil || code != ExitOK || len(y.Waves) != 3 || y.Application != "potato-facts" {
		t.Fatalf("yaml: exit %d, %v, %+v", code, err, y.Waves)
	}

	code, out, errOut = run(t, "deploy", "plan", "-f", "deploy-locust.yml")
	if code != ExitFailure || out != "" || !strings.Contains(errOut, `deploy-locust.yml:100:15: manifests[3] target "perf-test" is not defined; did you mean "perf"?`) {
		t.Errorf("invalid file: exit %d, stdout %q\n%s", code, out, errOut)
	}
}

func TestTemplateValidates(t *testing.T) {
	for _, strategy := range []string{"canary", "bluegreen"} {
		for _, features := range templateFeatureSets() {
			args := []string{"template", "kubernetes", strategy}
			if len(features) > 0 {
				args = append(args, "--features", strings.Join(features, ","))
			}
			code, out, errOut := run(t, args...)
			if code != ExitOK {
				t.Fatalf("%v: exit %d\n%s", args, code, errOut)
			}
			res := deployfile.Parse("template.yml", []byte(out))
			if len(res.Errors) > 0 || len(res.Warnings) > 0 {
				t.Errorf("%v does not validate as printed:\n%v\n%v\n%s", args, res.Errors, res.Warnings, out)
				continue
			}
			f := res.File
			has := func(feature string) bool { return strings.Contains(strings.Join(features, ","), feature) }
			if has("automated") != (f.Analysis != nil) || has("webhook") != (len(f.Webhooks) > 0) || has("traffic") != (len(f.TrafficManagement) > 0) {
				t.Errorf("%v: features not reflected", args)
			}
			if has("manual") != strings.Contains(out, "untilApproved: true") {
				t.Errorf("%v: manual approval not reflected", args)
			}
			if (strategy == "bluegreen") != (f.Strategies.Get("blue-green") != nil) {
				t.Errorf("%v: wrong strategy", args)
			}
			if !strings.HasPrefix(out, "# yaml-language-server: $schema=") {
				t.Errorf("%v: no schema comment", args)
			}
		}
	}
}

func TestTemplateOut(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "app")
	code, out, errOut := run(t, "template", "kubernetes", "bluegreen", "--features", "manual,traffic", "--out", dir)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	if !strings.Contains(out, "deploy.yml") {
		t.Errorf("stdout: %s", out)
	}
	deploy, err := os.ReadFile(filepath.Join(dir, "deploy.yml"))
	if err != nil || !bytes.Contains(deploy, []byte("- path: manifests/hello-web.yaml")) {
		t.Fatalf("deploy.yml: %v\n%s", err, deploy)
	}
	t.Chdir(t.TempDir()) // paths resolve from the file's folder, not here
	code, out, errOut = run(t, "validate", "--require-manifests", "-f", filepath.Join(dir, "deploy.yml"))
	if code != ExitOK || errOut != "" || !strings.Contains(out, "(3 objects read)") {
		t.Errorf("validate: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = run(t, "template", "kubernetes", "bluegreen", "--out", dir)
	if code != ExitFailure || !strings.Contains(errOut, "already exists") {
		t.Errorf("overwrite: exit %d\n%s", code, errOut)
	}
}
