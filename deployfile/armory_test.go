package deployfile

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// Keys of Armory's deployment-file schema (its pipeline request:
// armory-io/armory-cli's CUE schema) that files written for Armory carry.

const analysisStrategy = `strategies:
  s1:
    canary:
      steps:
        - analysis:
            queries: [q]
            numberOfJudgmentRuns: 3
            abortOnFailedJudgment: %s
            interval: 1
            units: minutes
analysis:
  defaultMetricProviderName: prom
  queries:
    - name: q
      queryTemplate: up
      upperLimit: 1
`

func TestAbortOnFailedJudgment(t *testing.T) {
	for _, v := range []string{"true", "false"} {
		res := Parse("deploy.yml", []byte(head+strings.Replace(analysisStrategy, "%s", v, 1)))
		if err := res.Err(); err != nil {
			t.Fatalf("abortOnFailedJudgment: %s refused: %v", v, err)
		}
		a := res.File.Strategies.Get("s1").Canary.Steps[0].Analysis
		if a.AbortOnFailedJudgment != (v == "true") {
			t.Errorf("abortOnFailedJudgment: %s read as %v", v, a.AbortOnFailedJudgment)
		}
		// The step's JSON is what the analysis executor receives.
		b, _ := json.Marshal(a)
		if strings.Contains(string(b), `"abortOnFailedJudgment":true`) != (v == "true") {
			t.Errorf("abortOnFailedJudgment: %s sent as %s", v, b)
		}
	}
	res := Parse("deploy.yml", []byte(head+strings.Replace(analysisStrategy, "%s", "yes please", 1)))
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), "deploy.yml:18:36: ") || !strings.Contains(err.Error(), `abortOnFailedJudgment must be true or false, not "yes please"`) {
		t.Errorf("a non-boolean abortOnFailedJudgment: %v", err)
	}
}

// Armory took the application from deploy start -n when the file had none.
func TestApplicationFromTheCommandLine(t *testing.T) {
	text := strings.Replace(head, "application: app\n", "", 1) + s1
	res := Parse("deploy.yml", []byte(text))
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), `deploy.yml:1:1: the top level is missing the required key "application" (or give it with deploy start -n NAME)`) {
		t.Fatalf("no application and no -n: %v", err)
	}
	r := &report{}
	f := parse("deploy.yml", []byte(text), r, Options{Application: "from-cli"})
	if errs, _ := r.finish(); len(errs) > 0 || f.Application != "from-cli" {
		t.Fatalf("with -n from-cli: application %q, %v", f.Application, errs)
	}
	// -n overrides the file's, as before.
	r = &report{}
	if f := parse("deploy.yml", []byte(head+s1), r, Options{Application: "other"}); f.Application != "other" {
		t.Errorf("-n other over application: app gave %q", f.Application)
	}
	// A misspelt key is reported as such, not also as a missing one.
	res = Parse("deploy.yml", []byte(strings.Replace(head, "application:", "aplication:", 1)+s1))
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Message, `did you mean "application"?`) {
		t.Errorf("misspelt application: %v", res.Errors)
	}
}

const twoTargets = `version: v1
kind: kubernetes
application: app
targets:
  staging:
    account: c
    namespace: s
    strategy: s1
  prod:
    account: c
    namespace: p
    strategy: s1
    constraints:
      dependsOn: [staging]
manifests:
  - inline: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
` + s1

// targetFilters is a list of {includeTarget: NAME}, at least one, each a
// target of the file (Armory's schema), and only those run.
func TestTargetFilters(t *testing.T) {
	res := Parse("deploy.yml", []byte(twoTargets+"targetFilters:\n  - includeTarget: prod\n  - includeTarget: prod\n"))
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if got := res.File.IncludedTargets(); len(got) != 1 || got[0] != "prod" {
		t.Errorf("IncludedTargets = %q, want [prod]", got)
	}
	// prod depends on staging, which is skipped: prod runs in the first wave.
	plan := NewPlan(res.File)
	if len(plan.Waves) != 1 || len(plan.Waves[0].Targets) != 1 || plan.Waves[0].Targets[0].Name != "prod" || !strings.Contains(strings.Join(plan.Notes, "\n"), `targetFilters: only "prod" run; "staging" skipped`) {
		t.Errorf("plan with targetFilters [prod]: %+v", plan)
	}
	if got := Parse("deploy.yml", []byte(twoTargets)).File.IncludedTargets(); got != nil {
		t.Errorf("without targetFilters: %q, want nil (every target)", got)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"targetFilters:\n  - includeTarget: prdo\n", `deploy.yml:23:20: targetFilters[0].includeTarget "prdo" is not defined; did you mean "prod"?`},
		{"targetFilters:\n  - includeTarget: qa\n", `deploy.yml:23:20: targetFilters[0].includeTarget "qa" is not defined (targets defined: "staging", "prod")`},
		{"targetFilters: []\n", `deploy.yml:22:1: targetFilters is empty`},
		{"targetFilters:\n  - target: prod\n", `unknown key "target" in targetFilters[0]`},
		{"targetFilters: [prod]\n", `targetFilters[0] must be a map of keys to values, not "prod"`},
	} {
		if err := Parse("deploy.yml", []byte(twoTargets+tc.yaml)).Err(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// contextOverrides (what Armory's request carried from --add-context)
// override context and every step's context; --add-context overrides
// them in turn; a key set only there counts as defined.
func TestContextOverrides(t *testing.T) {
	text := head + `context:
  tier: from-context
  color: from-context
contextOverrides:
  color: from-overrides
  port: "8080"
  ticket: from-overrides
strategies:
  s1:
    canary:
      steps:
        - runWebhook:
            name: w
            context: {color: from-step, tier: from-step, ticket: from-step}
        - setWeight: 100
webhooks:
  - name: w
    method: POST
    uriTemplate: http://127.0.0.1:{{context.port}}/{{context.color}}/{{context.tier}}/{{context.ticket}}
    disableCallback: true
`
	res := Parse("deploy.yml", []byte(text))
	if err := res.Err(); err != nil {
		t.Fatalf("context key port defined only in contextOverrides: %v", err)
	}
	f := res.File
	if c := f.Context; c["color"] != "from-overrides" || c["port"] != "8080" || c["tier"] != "from-context" {
		t.Errorf("context = %v", c)
	}
	if c := f.Strategies.Get("s1").Canary.Steps[0].RunWebhook.Context; c["color"] != "from-overrides" || c["tier"] != "from-step" || c["ticket"] != "from-overrides" {
		t.Errorf("the step's context = %v; want color and ticket overridden, tier kept", c)
	}
	r := &report{}
	f = parse("deploy.yml", []byte(text), r, Options{Context: map[string]string{"ticket": "from-cli", "extra": "x"}})
	if errs, _ := r.finish(); len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := f.Strategies.Get("s1").Canary.Steps[0].RunWebhook.Context["ticket"]; got != "from-cli" || f.Context["ticket"] != "from-cli" || f.Context["extra"] != "x" {
		t.Errorf("--add-context ticket=from-cli: step %q, context %v", got, f.Context)
	}
	if err := Parse("deploy.yml", []byte(head+s1+"contextOverrides: [a]\n")).Err(); err == nil || !strings.Contains(err.Error(), "contextOverrides must be a map of names to values") {
		t.Errorf("a list as contextOverrides: %v", err)
	}
}

// Manifests named by URL are read only through Options.Fetch; their
// objects are positioned in the URL's text.
func TestURLManifests(t *testing.T) {
	const u = "https://manifests.example.com/app.yaml"
	text := strings.Replace(head, `  - inline: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"`, "  - path: "+u, 1) + s1
	dir := t.TempDir()
	path := filepath.Join(dir, "deploy.yml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	// Offline (validate): a warning, nothing fetched.
	res := Load(path, Options{RequireManifests: true})
	if res.Err() != nil || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0].Message, "URLs are not read offline") {
		t.Fatalf("offline: %v, warnings %v", res.Err(), res.Warnings)
	}
	fetch := func(text string, err error) func(string) (string, error) {
		return func(got string) (string, error) {
			if got != u {
				t.Errorf("fetched %q, want %q", got, u)
			}
			return text, err
		}
	}
	res = Load(path, Options{RequireManifests: true, Fetch: fetch("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fetched}\n", nil)})
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if fs := res.File.Manifests[0].Files; len(fs) != 1 || fs[0].Path != u || fs[0].Objects[0].Name != "fetched" || fs[0].Objects[0].Pos != (Pos{u, 1, 1}) {
		t.Errorf("fetched manifest: %+v", fs)
	}
	res = Load(path, Options{Fetch: fetch("", errors.New("the server answered 404 Not Found"))})
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), path+`:10:5: manifests[0].path "`+u+`" cannot be fetched: the server answered 404 Not Found`) {
		t.Errorf("a failed fetch: %v", err)
	}
	res = Load(path, Options{Fetch: fetch("apiVersion: v1\nkind: ConfigMap\n", nil)})
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), u+":1:1: this manifest document is not a Kubernetes object: it has no metadata.name") {
		t.Errorf("a fetched manifest that is not an object: %v", err)
	}
	// What a client submitted must carry the URL's text.
	fsys := fstest.MapFS{"deploy.yml": &fstest.MapFile{Data: []byte(text)}}
	if err := LoadFS(fsys, "deploy.yml", Options{RequireManifests: true}).Err(); err == nil || !strings.Contains(err.Error(), "whose text was not submitted") {
		t.Errorf("submitted without the URL's text: %v", err)
	}
}
