package armory

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sortie-cd/sortie/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// corpusDir is the Armory users' corpus: $SORTIE_ARMORY_EXAMPLES, or
// ../shared/armory-examples beside the repository.
func corpusDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SORTIE_ARMORY_EXAMPLES")
	if dir == "" {
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(filepath.Dir(root), "shared", "armory-examples")
	}
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
		t.Skipf("SKIPPED: the Armory users' corpus is not here (%v); set SORTIE_ARMORY_EXAMPLES or put it at ../shared/armory-examples to run this test", err)
	}
	return dir
}

// skipped are the corpus's files that cannot run, and why: a mistake of
// their own (deployfile's TestArmoryExamples holds the errors), or
// manifests that are in none of the published repositories.
var skipped = map[string]string{
	"borealis-demo/deploy-locust.yml":              `a real mistake: manifests[3] is for target "perf-test", which does not exist (the target is called "perf"); and thirdParty/locust/generatedManifest.yml is not published`,
	"borealis-demo/deploy-locust-w-jenkins.yml":    `a real mistake: manifests[3] is for target "perf-test", which does not exist (the target is called "perf"); and thirdParty/locust/generatedManifest.yml is not published`,
	"borealis-demo/deploy-webhook.yml":             `a real mistake: manifests[1] is for target "prod-eu", which the file does not define, and webhooks Run_Integration_Tests and Run_Security_Scanners are each defined twice`,
	"borealis-demo/configuration/deploy-infra.yml": "its manifests ../reset/potato-facts-3.yml and ../reset/potato-lies-3.yml are in no published repository",
	"borealis-demo/deploy-single.yml":              "its only manifest, manifests/hostname.yml, is in no published repository (the file would deploy nothing)",
	"borealis-demo/reset/deploy1.yml":              "its manifests potato-facts-1.yml and potato-lies-1.yml are in no published repository",
	"borealis-demo/reset/deploy2.yml":              "its manifests potato-facts-2.yml and potato-lies-2.yml are in no published repository",
	"borealis-demo/reset/deploy3.yml":              "its manifests potato-facts-3.yml, potato-lies-3.yml and argo-facts-3.yml are in no published repository",
}

// run is one deployment story of the corpus: its files deployed one after
// the other, each to SUCCEEDED.
type run struct {
	repo  string   // the corpus folder the files' paths are relative to
	files []string // inside repo
	// earlier, when set, turns the manifests into the version that ran
	// before: each file is deployed with them first (the file unchanged),
	// so that its own deployment goes through its strategies instead of
	// being a first deployment (straight to 100 %).
	earlier *strings.Replacer
	// ownNamespaces: the files' manifests make the targets' namespaces
	// (the quick-start). Otherwise the test makes them first, as the
	// operators of the files' clusters had (Armory, like Sortie, deploys
	// into a namespace, it does not make one).
	ownNamespaces bool
	// calls are, by file, the stand-ins its webhooks reach (hosts, or
	// "slack"), each at least once.
	calls map[string][]string
	// services are Services the file's cluster had that no manifest of
	// the corpus makes.
	services []clusterService
	// mistakes are, by file, a mistake of the file that shows only once it
	// runs: that target rolls back with that message, every other one
	// succeeds.
	mistakes map[string]mistake
}

type mistake struct{ target, message string }

// clusterService is a Service selecting the pods of app on appPort.
type clusterService struct{ namespace, name, app string }

// The SMI root Services deploy-w-jenkins.yml names for prod-east are in
// no manifest: potato-facts-external-service.yml says
// "name: potato-facts-external #potato-facts-cluster-svc", the same
// Service under its earlier name, which the demo's cluster still had.
var clusterSvcs = []clusterService{
	{"borealis-prod-east", "potato-facts-cluster-svc", "potato-facts"},
	{"borealis-prod-east", "potato-lies-cluster-svc", "potato-lies"},
}

// relayedBy: Jenkins and the command hook are inside the cluster's
// network, reached through the agent the webhook names; GitHub is
// called from the server.
var relayedBy = map[string]string{
	"api.github.com":                         "",
	"jenkins.jenkins:8080":                   "demo-staging-cluster",
	"cmd-hook.borealis-demo-agent-prod:8081": "demo-prod-west-cluster",
}

func (r run) name() string { return r.repo + "/" + strings.Join(r.files, "+") }

var (
	// The borealis demo's previous release: potatofacts v1 (and the Argo
	// Rollout's image before v5).
	potatoV1 = strings.NewReplacer("armory/potatofacts:v2", "armory/potatofacts:v1", "demoimages/bluegreen:v5", "demoimages/bluegreen:v4")
	sampleV2 = strings.NewReplacer("demoimages/bluegreen:v3", "demoimages/bluegreen:v2")
)

// sequences run in parallel; the runs of one share namespaces (or an
// application) and go one after the other.
var sequences = [][]run{
	{
		{repo: "borealis-demo", files: []string{"deploy-automated-2-env.yml"}, earlier: potatoV1,
			calls: map[string][]string{"deploy-automated-2-env.yml": {"api.github.com"}}},
		{repo: "borealis-demo", files: []string{"deploy-w-jenkins.yml"}, earlier: potatoV1, services: clusterSvcs,
			calls: map[string][]string{"deploy-w-jenkins.yml": {"api.github.com", "jenkins.jenkins:8080"}}},
		// The same application and targets: deploy-w-argo.yml is the demo's
		// next step after deploy.yml, on what deploy.yml left (its
		// exposeServices step comes before any manifest is applied, so the
		// Services must be there).
		{repo: "borealis-demo", files: []string{"deploy.yml", "deploy-w-argo.yml"}, earlier: potatoV1,
			calls: map[string][]string{
				"deploy.yml":        {"api.github.com", "slack"},
				"deploy-w-argo.yml": {"api.github.com", "cmd-hook.borealis-demo-agent-prod:8081", "slack"},
			},
			// prod-operator's strategy, rolling, exposes the internal
			// Services, which prod-operator's manifests (the Argo Rollout
			// and the external Services) do not make: a real mistake, which
			// a first deployment (no strategy) does not show.
			mistakes: map[string]mistake{"deploy-w-argo.yml": {"prod-operator",
				"exposeServices: Service potato-facts-internal does not exist in namespace borealis-argo"}}},
	},
	{
		{repo: "docs-cdaas-sample", files: []string{"deploy.yml"}, earlier: sampleV2},
		{repo: "docs-cdaas-sample", files: []string{"deploy-webhook.yml"}, earlier: sampleV2,
			calls: map[string][]string{"deploy-webhook.yml": {"api.github.com"}}},
		// The quick-start: v1, then v2 through a canary with a preview.
		{repo: "cdaas-examples", files: []string{"hello-armory/first-deployment.yaml", "hello-armory/second-deployment.yaml"}, ownNamespaces: true},
	},
}

// deployFiles finds the kind: kubernetes files of the corpus, as
// deployfile's TestArmoryExamples does.
func deployFiles(t *testing.T, root string) []string {
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
		if regexp.MustCompile(`(?m)^kind: kubernetes\s*$`).Match(data) {
			rel, _ := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestArmoryCorpusEndToEnd deploys every file of the corpus that can run,
// unchanged, with the CLI, through a `sortie server` process and one
// `sortie agent` process per account the files name, on the shared local
// cluster. Each run ends SUCCEEDED (deploy-w-argo.yml but for the one
// target its mistake rolls back, see mistakes); every judgment passed and
// measured the pods of its own version (the query named their
// deploy.armory.io/replica-set-name and Prometheus found their series);
// every webhook reached its stand-in (the in-cluster ones through the
// agent the webhook names) and was called back; every preview link
// answered through the server; the approvals were given through the API.
//
// What stands in for what cannot run here, and is said so where it is
// built:
//   - Prometheus is real; podSeries stands in for kube-state-metrics and
//     the kubelet's cAdvisor, which kwok does not run.
//   - outside stands in for GitHub (repository dispatches calling back),
//     raw.githubusercontent.com (the quick-start's manifests, over HTTPS),
//     Jenkins (the WebhookCallback job calling back) and the command hook
//     of deploy-w-argo.yml; slack for Slack's incoming webhook.
//   - podNetwork stands in for the pods' network, which kwok does not
//     have, so that a preview reaches an application.
//   - No Locust: the two files that run it are skipped (see skipped).
//   - testdata/crds.yaml: the Istio, SMI and Argo Rollouts kinds the
//     files' clusters had installed (no controller acts on them).
func TestArmoryCorpusEndToEnd(t *testing.T) {
	root := corpusDir(t)
	all := deployFiles(t, root)
	planned := map[string]bool{}
	for _, seq := range sequences {
		for _, r := range seq {
			for _, f := range r.files {
				planned[r.repo+"/"+f] = true
			}
		}
	}
	for _, f := range all {
		if why, ok := skipped[f]; ok {
			t.Logf("SKIPPED %s: %s", f, why)
			continue
		}
		if !planned[f] {
			t.Errorf("%s is in the corpus but in no run and not skipped: add it to sequences or skipped", f)
		}
	}
	for f := range planned {
		if !slices.Contains(all, f) {
			t.Errorf("%s is planned but not in the corpus", f)
		}
	}
	if t.Failed() {
		return
	}

	w := newWorld(t, root)
	for i, seq := range sequences {
		t.Run(fmt.Sprintf("sequence%d", i+1), func(t *testing.T) {
			t.Parallel()
			for _, r := range seq {
				if !t.Run(r.name(), func(t *testing.T) { w.run(t, r) }) {
					return
				}
			}
		})
	}
}

// copyRepo copies the corpus folder repo into a new directory, each
// manifest (any YAML file that is no deployment file) through change.
func copyRepo(t *testing.T, root, repo string, change *strings.Replacer) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), repo)
	err := filepath.WalkDir(filepath.Join(root, repo), func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(root, repo), p)
		to := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if change != nil && !regexp.MustCompile(`(?m)^kind: kubernetes\s*$`).Match(b) {
			b = []byte(change.Replace(string(b)))
		}
		return os.WriteFile(to, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// sameFile fails the test unless the copy of a deployment file is the
// corpus's byte for byte.
func sameFile(t *testing.T, corpus, copied string) {
	t.Helper()
	a, err := os.ReadFile(corpus)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(copied)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("%s is not the corpus's file", copied)
	}
}

// cli runs the sortie CLI in dir as the user of the world and returns its
// standard output.
func (w *world) cli(t *testing.T, dir, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(w.bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), w.cliEnv...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("sortie %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

// deployStart runs `sortie deploy start -f file` in dir (the repository's
// root, where Armory's CLI ran) and returns the pipeline's id.
func (w *world) deployStart(t *testing.T, dir, file string) string {
	t.Helper()
	out := w.cli(t, dir, "", "deploy", "start", "-f", file, "--manifest-ca-file", w.out.caFile, "-o", "json")
	var res struct {
		PipelineID string `json:"pipelineId"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.PipelineID == "" {
		t.Fatalf("deploy start: %v: %s", err, out)
	}
	return res.PipelineID
}

// secretValues are the tenant's secrets the corpus's webhooks name.
func secretValues(slackURL string) map[string]string {
	return map[string]string{
		"github_org":                   "armory-io",
		"github_repository":            "borealis-demo",
		"github_repo":                  "docs-cdaas-sample",
		"github_token":                 "ghp_corpusTestTokenNeverShown0001",
		"github_personal_access_token": "ghp_corpusTestTokenNeverShown0002",
		"jenkins_token":                base64.StdEncoding.EncodeToString([]byte("admin:11b1corpus-jenkins-token")),
		"slackwebhookURL":              slackURL + "/services/T0000/B0000/corpusTestSlackSecret",
	}
}
