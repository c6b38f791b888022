package deployfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// head is the start of a valid file; cases append to it. It is 10 lines
// long, so the first appended line is line 11.
const head = `version: v1
kind: kubernetes
application: app
targets:
  dev:
    account: dev-cluster
    namespace: app
    strategy: s1
manifests:
  - inline: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
`

const s1 = `strategies:
  s1:
    canary:
      steps:
        - setWeight: 100
`

// want is "line:col code: message fragment".
type want struct {
	line, col int
	code      string
	msg       string
}

func (w want) String() string { return fmt.Sprintf("%d:%d %s: ...%s...", w.line, w.col, w.code, w.msg) }

func TestProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want []want
	}{
		{"valid", head + s1, nil},
		{"deploy windows", strings.Replace(head, "    strategy: s1\n", `    strategy: s1
    constraints:
      deployWindows:
        - {name: office, days: [mon, tue], start: "09:00", end: "17:00", timeZone: Europe/Paris}
        - {name: bad, days: [monday], dates: [24/12], start: "9:00", timeZone: Mars/Olympus}
        - {name: loose, mode: wait}
        - {name: office}
`, 1) + s1, []want{
			{12, 11, CodeInvalidValue, `deploy window "bad" of target "dev": date "24/12" is not YYYY-MM-DD`},
			{12, 11, CodeInvalidValue, `day "monday" is not one of mon, tue, wed, thu, fri, sat, sun; did you mean "mon"?`},
			{12, 11, CodeMissingKey, `give both start and end, or neither`},
			{12, 11, CodeInvalidValue, `time "9:00" is not HH:MM`},
			{12, 11, CodeInvalidValue, `time zone "Mars/Olympus" is unknown`},
			{13, 31, CodeInvalidValue, `deployWindows[2].mode must be queue or refuse, not "wait"`},
			{14, 11, CodeDuplicate, `deploy window of target "dev" "office" is defined twice (first on line 11)`},
		}},
		{"unknown key with suggestion", head + `strategies:
  s1:
    canary:
      steps:
        - pause:
            untilAproved: true
`, []want{
			{16, 13, CodeUnknownKey, `unknown key "untilAproved" in strategies.s1.canary.steps[0].pause; did you mean "untilApproved"?`},
		}},
		{"unknown top-level key", head + s1 + "webhook: []\n", []want{
			{16, 1, CodeUnknownKey, `unknown key "webhook" in the top level; did you mean "webhooks"?`},
		}},
		{"wrong type", head + s1 + `trafficManagement:
  - targets: dev
    smi:
      - rootServiceName: app
`, []want{
			{17, 14, CodeWrongType, `trafficManagement[0].targets must be a list, not "dev"`},
		}},
		{"preview TTL out of range", head + `strategies:
  s1:
    canary:
      steps:
        - exposeServices:
            services: [web]
            ttl: {duration: 25, unit: hours}
`, []want{
			{17, 13, CodeInvalidValue, `exposeServices.ttl is 25h0m0s; a preview URL lives from 1 minute to 24 hours`},
		}},
		{"wrong scalar type", strings.Replace(head, "account: dev-cluster", "account: [a, b]", 1) + s1, []want{
			{6, 14, CodeWrongType, `targets.dev.account must be a string, not a list`},
		}},
		{"bool", head + `strategies:
  s1:
    canary:
      steps:
        - pause:
            untilApproved: yes
`, []want{
			{16, 28, CodeWrongType, `untilApproved must be true or false, not "yes"`},
		}},
		{"missing required keys", `version: v1
kind: kubernetes
targets:
  dev:
    namespace: app
manifests: []
`, []want{
			{1, 1, CodeMissingKey, `the top level is missing the required key "application"`},
			{4, 3, CodeMissingKey, `targets.dev is missing the required key "account"`},
			{4, 3, CodeMissingKey, `targets.dev is missing the required key "strategy"`},
		}},
		{"dangling strategy", strings.Replace(head, "strategy: s1", "strategy: s2", 1) + s1, []want{
			{8, 15, CodeUnknownRef, `strategy "s2" is not defined; did you mean "s1"?`},
			{12, 3, CodeUnused, ``},
		}},
		{"dangling references", `version: v1
kind: kubernetes
application: app
targets:
  dev:
    account: c
    strategy: s1
    constraints:
      dependsOn: [staging]
      afterDeployment:
        - runWebhook:
            name: smoke-test
manifests:
  - inline: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
    targets: [dve]
strategies:
  s1:
    canary:
      steps:
        - setWeight: 50
        - analysis:
            interval: 1
            units: MINUTES
            numberOfJudgmentRuns: 1
            queries: [error-rate]
analysis:
  queries:
    - name: error-ratio
      queryTemplate: x
webhooks:
  - name: smoke-tests
    method: POST
    uriTemplate: https://x
trafficManagement:
  - targets: [prod]
    smi:
      - rootServiceName: app
`, []want{
			{9, 19, CodeUnknownRef, `dependsOn target "staging" is not defined (targets defined: "dev")`},
			{12, 19, CodeUnknownRef, `webhook "smoke-test" is not defined; did you mean "smoke-tests"?`},
			{15, 15, CodeUnknownRef, `manifests[0] target "dve" is not defined; did you mean "dev"?`},
			{25, 23, CodeUnknownRef, `analysis query "error-rate" is not defined; did you mean "error-ratio"?`},
			{35, 15, CodeUnknownRef, `trafficManagement[0] target "prod" is not defined`},
			{28, 7, CodeUnused, `query "error-ratio" is never used`},
			{31, 5, CodeUnused, `webhook "smoke-tests" is never run`},
		}},
		{"no metric provider", head + `strategies:
  s1:
    canary:
      steps:
        - analysis:
            interval: 1
            units: minutes
            numberOfJudgmentRuns: 1
            queries: [q]
analysis:
  queries:
    - name: q
      queryTemplate: up
`, []want{
			{19, 23, CodeMissingKey, `query "q" has no metric provider`},
		}},
		{"cycle", `version: v1
kind: kubernetes
application: app
targets:
  a:
    account: c
    strategy: s1
    constraints: {dependsOn: [c]}
  b:
    account: c
    strategy: s1
    constraints: {dependsOn: [a]}
  c:
    account: c
    strategy: s1
    constraints: {dependsOn: [b]}
  d:
    account: c
    strategy: s1
    constraints: {dependsOn: [d]}
manifests: []
` + s1, []want{
			{12, 31, CodeCycle, `dependency cycle: "a" depends on "c" depends on "b" depends on "a"`},
			{20, 31, CodeCycle, `target "d" depends on itself`},
		}},
		{"weights", head + `strategies:
  s1:
    canary:
      steps:
        - setWeight: {weight: 50}
        - setWeight: 120
        - setWeight: 20
        - setWeight:
            weight: -1
`, []want{
			{16, 22, CodeWeightRange, `strategies.s1.canary.steps[1].setWeight is 120; a weight is a percentage from 0 to 100`},
			{17, 11, CodeWeightOrder, `setWeight 20 is lower than the setWeight 50 before it (line 15)`},
			{19, 21, CodeWeightRange, `is -1`},
		}},
		{"pause with duration and untilApproved", head + `strategies:
  s1:
    canary:
      steps:
        - pause:
            duration: 5
            unit: Minutes
            untilApproved: true
`, []want{
			{18, 13, CodePauseConflict, `has both duration and untilApproved`},
		}},
		{"approval policy out of range or on a timed pause", head + `strategies:
  s1:
    canary:
      steps:
        - pause:
            untilApproved: true
            approvals: 11
        - pause:
            duration: 5
            unit: minutes
            notByStarter: true
`, []want{
			{17, 24, CodeInvalidValue, `approvals must be 1 to 10`},
			{21, 13, CodeInvalidValue, `notByStarter applies only to a pause with untilApproved: true`},
		}},
		{"preview equals active", strings.Replace(head, "strategy: s1", "strategy: bg", 1) + `strategies:
  bg:
    blueGreen:
      activeService: web
      previewService: web
      redirectTrafficAfter:
        - setWeight: 50
`, []want{
			{15, 23, CodeSameService, `previewService is the same Service as activeService ("web")`},
			{17, 11, CodeInvalidValue, `cannot hold a setWeight step`},
		}},
		{"blue/green without activeService", strings.Replace(head, "strategy: s1", "strategy: bg", 1) + `strategies:
  bg:
    blueGreen:
      shutdownOldVersionAfter:
        - pause: {duration: 1, units: hours}
`, []want{
			{8, 15, CodeMissingKey, `has no activeService`},
		}},
		{"two spellings", head + `strategies:
  s1:
    canary:
      steps:
        - pause: {duration: 1, unit: hours, units: hours}
`, []want{
			{15, 45, CodeDuplicate, `unit and units are two spellings of the same key`},
		}},
		{"bad unit", head + `strategies:
  s1:
    canary:
      steps:
        - pause: {duration: 1, unit: minuts}
`, []want{
			{15, 38, CodeInvalidValue, `must be seconds, minutes or hours (any case), not "minuts"; did you mean "minutes"?`},
		}},
		{"step with two kinds", head + `strategies:
  s1:
    canary:
      steps:
        - setWeight: 10
          pause: {untilApproved: true}
`, []want{
			{16, 11, CodeInvalidValue, `has both setWeight and pause`},
		}},
		{"duplicate key", head + s1 + "application: other\n", []want{
			{16, 1, CodeDuplicate, `application appears twice in the top level (first on line 3)`},
		}},
		{"enum", head + s1 + `deploymentConfig:
  ifDeploymentInProgress:
    strategy: enqueue
`, []want{
			{18, 15, CodeInvalidValue, `must be reject or enqueueOne, not "enqueue"; did you mean "enqueueOne"?`},
		}},
		{"inline manifest not a Kubernetes object", `version: v1
kind: kubernetes
application: app
targets:
  dev: {account: c, strategy: s1}
manifests:
  - inline: |
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: ok
      ---
      apiVersion: v1
      metadata:
        name: nokind
` + s1, []want{
			{13, 7, CodeManifest, `not a Kubernetes object: it has no kind`},
		}},
		{"templates", head + `context:
  team: payments
strategies:
  s1:
    canary:
      steps:
        - setWeight: 100
  s2:
    canary:
      steps:
        - runWebhook: {name: hook}
webhooks:
  - name: hook
    method: post
    uriTemplate: "https://x/{{ armory.applicationNam }}/{{context.team}}/{{ context.env }}"
    headers:
      - key: Authorization
        value: "Bearer {{secrets.tok}} {{ nope }}"
`, []want{
			{25, 29, CodeTemplate, `{{armory.applicationNam}} is not a variable Sortie provides; did you mean "applicationName"?`},
			{25, 74, CodeTemplate, `uses {{context.env}}, but context key "env" is not defined`},
			{28, 40, CodeTemplate, `{{nope}} is not a variable`},
			{18, 3, CodeUnused, `strategy "s2" is not used`},
		}},
		{"template in a block", head + s1 + `analysis:
  defaultMetricProviderName: prom
  queries:
    - name: q
      queryTemplate: >-
        sum(rate(x{version="{{armory.replicaSetName}}"}[{{ armory.promQLStepInterval }}]))
`, []want{
			{20, 22, CodeTemplate, `query "q": {{armory.promQLStepInterval}} is not a variable Sortie provides; did you mean "promQlStepInterval"?`},
			{19, 7, CodeUnused, `query "q" is never used`},
		}},
		{"retryCount out of bounds", head + s1 + `webhooks:
  - name: many
    method: POST
    uriTemplate: https://x
    retryCount: 1000000
  - name: negative
    method: POST
    uriTemplate: https://x
    retryCount: -1
`, []want{
			{20, 17, CodeInvalidValue, `webhook "many": retryCount is 1000000; it must be from 0 to 10`},
			{24, 17, CodeInvalidValue, `webhook "negative": retryCount is -1; it must be from 0 to 10`},
			{17, 5, CodeUnused, `webhook "many" is never run`},
			{21, 5, CodeUnused, `webhook "negative" is never run`},
		}},
		{"empty list item", head + s1 + "webhooks:\n  -\n", []want{
			{17, 4, CodeMissingKey, `webhooks[0] is an empty list item`},
		}},
		{"not YAML", "version: v1\nkind: [\n", []want{
			{2, 1, CodeSyntax, `not valid YAML`},
		}},
		{"empty", "", []want{{0, 0, CodeMissingKey, `the file is empty`}}},
		{"not a map", "- a\n- b\n", []want{{1, 1, CodeWrongType, `a deployment file is a map of keys`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Parse("deploy.yml", []byte(tc.yaml))
			var got []want
			for _, p := range append(res.Errors, res.Warnings...) {
				got = append(got, want{p.Line, p.Col, p.Code, p.Message})
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tc.want), res.Errors.Error()+"\n"+res.Warnings.Error())
			}
			for i, w := range tc.want {
				g := got[i]
				if g.line != w.line || g.col != w.col || g.code != w.code || !strings.Contains(g.msg, w.msg) {
					t.Errorf("problem %d:\n got %d:%d %s: %s\nwant %v", i, g.line, g.col, g.code, g.msg, w)
				}
			}
		})
	}
}

func TestProblemsFormat(t *testing.T) {
	res := Parse("dir/deploy.yml", []byte(head+strings.Replace(s1, "setWeight: 100", "setWeight: 101", 1)))
	want := `dir/deploy.yml:15:22: strategies.s1.canary.steps[0].setWeight is 101; a weight is a percentage from 0 to 100`
	if got := res.Err().Error(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestManifestFileProblems(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("k8s/a/web.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n")
	write("k8s/b/svc.yml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n---\n# a comment only\n---\napiVersion: v1\nkind: ConfigMap\n")
	write("k8s/notes.txt", "not read")
	write("bad.yaml", "apiVersion: v1\nkind: [\n")
	write("deploy.yml", head+`  - path: k8s
  - path: bad.yaml
  - path: k8s/b/svc.yml
    targets: [dev]
`+s1)
	res := Load(filepath.Join(dir, "deploy.yml"), Options{WorkDir: dir})
	var got []string
	for _, p := range res.Errors {
		rel, _ := filepath.Rel(dir, p.File)
		got = append(got, fmt.Sprintf("%s:%d:%d %s", filepath.ToSlash(rel), p.Line, p.Col, p.Code))
	}
	want := []string{
		"bad.yaml:2:1 " + CodeManifest,
		"k8s/b/svc.yml:8:1 " + CodeManifest,
		"k8s/b/svc.yml:8:1 " + CodeManifest,
	}
	if diff := cmp.Diff(want[:2], dedupe(got)); diff != "" {
		t.Errorf("(-want +got):\n%s\n%v", diff, res.Errors)
	}
	m := res.File.Manifests[1]
	if len(m.Files) != 2 || len(m.Files[0].Objects) != 1 || *m.Files[0].Objects[0].Replicas != 3 || m.Files[0].Objects[0].Pos.Line != 1 {
		t.Fatalf("directory entry read wrong: %+v", m.Files)
	}
	if o := m.Files[1].Objects; len(o) != 1 || o[0].Kind != "Service" || o[0].Replicas != nil {
		t.Errorf("svc.yml objects: %+v", o)
	}
}

func dedupe(xs []string) []string {
	var out []string
	for _, x := range xs {
		if len(out) == 0 || out[len(out)-1] != x {
			out = append(out, x)
		}
	}
	return out
}

func TestModel(t *testing.T) {
	res := Parse("d.yml", []byte(`version: v1
kind: kubernetes
application: app
targets:
  prod-eu (blue-green):
    account: c
    strategy: bg
  canary target:
    account: c
    strategy: c1
manifests:
  - inline: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
    targets: ["prod-eu (blue-green)"]
strategies:
  bg:
    blueGreen:
      activeService: a
      shutdownOldVersionAfter:
        - pause: {duration: 2, UNIT: x}
        - pause: {duration: 90, units: SECONDS}
  c1:
    canary:
      steps:
        - setWeight: 10
        - setWeight: {weight: 20}
        - pause:
            untilApproved: true
            requiresRoles: [Release Manager]
            approvalExpiration: {duration: 4, unit: Hours}
`))
	if len(res.Errors) != 1 || res.Errors[0].Code != CodeUnknownKey || !strings.Contains(res.Errors[0].Message, `unknown key "UNIT"; did you mean "unit"?`) && !strings.Contains(res.Errors[0].Message, `did you mean "unit"?`) {
		t.Fatalf("want one unknown-key error for UNIT, got %v", res.Errors)
	}
	f := res.File
	if f.Targets[0].Name != "prod-eu (blue-green)" || f.Targets[1].Name != "canary target" {
		t.Errorf("target names: %q, %q", f.Targets[0].Name, f.Targets[1].Name)
	}
	bg := f.Strategies.Get("bg").BlueGreen
	if len(bg.ShutDownOldVersionAfter) != 2 || bg.ShutDownOldVersionAfter[1].Pause.Wait.Seconds() != 90 || bg.ShutDownOldVersionAfter[1].Pause.Unit != "SECONDS" {
		t.Errorf("shutdownOldVersionAfter: %+v", bg.ShutDownOldVersionAfter[1].Pause)
	}
	steps := f.Strategies.Get("c1").Canary.Steps
	if steps[0].SetWeight.Weight != 10 || steps[1].SetWeight.Weight != 20 {
		t.Errorf("weights: %d %d", steps[0].SetWeight.Weight, steps[1].SetWeight.Weight)
	}
	p := steps[2].Pause
	if !p.UntilApproved || p.RequiresRoles[0] != "Release Manager" || p.ApprovalExpiration.Value.Hours() != 4 || p.ApprovalExpiration.Pos.Line != 29 {
		t.Errorf("pause: %+v", p)
	}
	if got := f.Manifests[0].Targets[0]; got.Name != "prod-eu (blue-green)" || got.Pos != (Pos{"d.yml", 13, 15}) {
		t.Errorf("manifest target ref: %+v", got)
	}
}

// Armory's schema defaulted version and kind, so files without them ran there.
func TestVersionAndKindDefault(t *testing.T) {
	text := strings.TrimPrefix(head, "version: v1\nkind: kubernetes\n") + s1
	res := Parse("deploy.yml", []byte(text))
	if err := res.Err(); err != nil {
		t.Fatalf("a file without version and kind was refused: %v", err)
	}
	if res.File.Version != "v1" || res.File.Kind != "kubernetes" {
		t.Fatalf("version, kind = %q, %q; want v1, kubernetes", res.File.Version, res.File.Kind)
	}
	res = Parse("deploy.yml", []byte(strings.Replace(head, "version: v1", "version: v2", 1)+s1))
	if res.Err() == nil {
		t.Fatal("version: v2 was accepted")
	}
}

// Armory's CLI merged --add-context before validating: a key given only
// there counts as defined.
func TestAddedContextCountsAsDefined(t *testing.T) {
	text := head + s1 + `webhooks:
  - name: w
    method: POST
    uriTemplate: http://127.0.0.1:{{context.port}}/hook
    disableCallback: true
`
	text = strings.Replace(text, "        - setWeight: 100\n", "        - setWeight: 100\n        - runWebhook: {name: w}\n", 1)
	dir := t.TempDir()
	path := filepath.Join(dir, "deploy.yml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := Load(path, Options{}); res.Err() == nil || !strings.Contains(res.Err().Error(), `context key "port" is not defined`) {
		t.Fatalf("without the added key: %v; want the undefined context key", res.Err())
	}
	res := Load(path, Options{Context: map[string]string{"port": "8080"}})
	if err := res.Err(); err != nil {
		t.Fatalf("with --add-context port=8080: %v", err)
	}
	if got := res.File.Context["port"]; got != "8080" {
		t.Fatalf("context port = %q, want 8080", got)
	}
}
