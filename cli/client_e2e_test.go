package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/server"
)

// e2e is one real server (in process, deploying to the shared cluster) and
// the CLI pointed at it through a private config directory.
type e2e struct {
	t       *testing.T
	ctx     context.Context
	server  string
	creds   auth.CredentialsFile
	credsAt string
	dir     string
	ns      string
	// secrets must appear in no command's output (checked on every run).
	mu      sync.Mutex
	secrets []string
}

func newE2E(t *testing.T) *e2e { return newE2EFor(t, "local") }

// newE2EFor is newE2E with the cluster served under account.
func newE2EFor(t *testing.T, account string) *e2e {
	dir := t.TempDir()
	// The CLI reads its environment; point it at this test's files only.
	isolateEnv(t, dir)
	srv := clienttest.Start(t, server.Config{
		DataDir:    filepath.Join(dir, "data"),
		Kubeconfig: kubetest.Cluster(t).Kubeconfig, Account: account,
	})
	e := &e2e{t: t, ctx: context.Background(), server: srv.URL, creds: srv.Credentials, credsAt: srv.CredentialsPath, dir: dir, ns: kubetest.Namespace(t)}
	e.secret(e.creds.ClientSecret)
	return e
}

func (e *e2e) secret(s string) {
	e.mu.Lock()
	e.secrets = append(e.secrets, s)
	e.mu.Unlock()
}

type result struct {
	code        int
	out, errOut string
}

// notifyBuffer is an output buffer whose contents can be waited on.
type notifyBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newNotifyBuffer() *notifyBuffer { return &notifyBuffer{changed: make(chan struct{}, 1)} }

func (n *notifyBuffer) Write(p []byte) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case n.changed <- struct{}{}:
	default:
	}
	return n.b.Write(p)
}

func (n *notifyBuffer) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.b.String()
}

// waitFor waits until the buffer matches re (or the command ended).
func (n *notifyBuffer) waitFor(t *testing.T, re *regexp.Regexp, ended <-chan struct{}) {
	t.Helper()
	timeout := time.After(3 * time.Minute)
	for !re.MatchString(n.String()) {
		select {
		case <-n.changed:
		case <-ended:
			if !re.MatchString(n.String()) {
				t.Fatalf("the command ended before printing %s:\n%s", re, n.String())
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s in:\n%s", re, n.String())
		}
	}
}

// run runs the CLI to its end.
func (e *e2e) run(args ...string) result {
	e.t.Helper()
	return e.runCtx(e.ctx, args...)
}

func (e *e2e) runCtx(ctx context.Context, args ...string) result {
	e.t.Helper()
	return e.runIn(ctx, "", args...)
}

// runIn runs the CLI with stdin as its standard input.
func (e *e2e) runIn(ctx context.Context, stdin string, args ...string) result {
	e.t.Helper()
	var out, errOut bytes.Buffer
	code := Main(ctx, args, IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
	r := result{code: code, out: out.String(), errOut: errOut.String()}
	e.checkNoSecret(args, r.out+r.errOut)
	return r
}

// start runs the CLI in the background, its output in buffers to wait on.
func (e *e2e) start(ctx context.Context, args ...string) *bgRun {
	return e.startOn(ctx, false, args...)
}

// startOn is start with IOStreams.IsTerminal set as given.
func (e *e2e) startOn(ctx context.Context, terminal bool, args ...string) *bgRun {
	b := &bgRun{out: newNotifyBuffer(), errOut: newNotifyBuffer(), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.code = Main(ctx, args, IOStreams{In: strings.NewReader(""), Out: b.out, ErrOut: b.errOut, IsTerminal: terminal})
	}()
	e.t.Cleanup(func() { <-b.done })
	return b
}

type bgRun struct {
	out, errOut *notifyBuffer
	done        chan struct{}
	code        int
}

func (e *e2e) wait(b *bgRun, args ...string) result {
	e.t.Helper()
	select {
	case <-b.done:
	case <-time.After(3 * time.Minute):
		e.t.Fatalf("sortie %s did not end:\n%s", strings.Join(args, " "), b.out.String())
	}
	r := result{code: b.code, out: b.out.String(), errOut: b.errOut.String()}
	e.checkNoSecret(args, r.out+r.errOut)
	return r
}

func (e *e2e) checkNoSecret(args []string, output string) {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.secrets {
		if s != "" && strings.Contains(output, s) {
			e.t.Errorf("sortie %s printed a secret or token:\n%s", strings.Join(args, " "), output)
		}
	}
}

func (e *e2e) must(r result, args ...string) result {
	e.t.Helper()
	if r.code != ExitOK {
		e.t.Fatalf("sortie %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.out, r.errOut)
	}
	return r
}

func (e *e2e) ok(args ...string) result {
	e.t.Helper()
	return e.must(e.run(args...), args...)
}

func (e *e2e) exit(want int, args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.code != want {
		e.t.Fatalf("sortie %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, want, r.out, r.errOut)
	}
	return r
}

func decode[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(r.out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("stdout is not the documented JSON (%v):\n%s", err, r.out)
	}
	return v
}

// writeApp writes a deployment file with its manifests in a directory
// (manifests/: a Deployment and a Service in a subfolder), a canary whose
// second step waits for a release manager's approval.
func (e *e2e) writeApp(app, account string) string {
	e.t.Helper()
	dir := filepath.Join(e.dir, "apps", app+"-"+account)
	files := map[string]string{
		"deploy.yml": fmt.Sprintf(`version: v1
kind: kubernetes
application: %[1]s
context:
  version: v1
targets:
  staging:
    account: %[2]s
    namespace: %[3]s
    strategy: canary
strategies:
  canary:
    canary:
      steps:
        - setWeight: 25
        - pause: {untilApproved: true, requiresRoles: [release-manager]}
        - setWeight: 100
manifests:
  - path: manifests/
`, app, account, e.ns),
		"manifests/app/deployment.yaml": kubetest.SampleApp(app, 4, "web:{{context.version}}"),
		"manifests/service.yaml":        kubetest.SampleService(app, app),
	}
	for name, text := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	return filepath.Join(dir, "deploy.yml")
}

// awaitingApproval matches the line of a step that waits for approval (the
// pipeline's own change comes first, in the same transition).
var awaitingApproval = regexp.MustCompile(`-> AWAITING_APPROVAL.*-> sortie deploy approve`)

func TestCLIEndToEnd(t *testing.T) {
	e := newE2E(t)
	configPath := filepath.Join(e.dir, "config", "sortie", "config.yaml")

	// Login from the server's credentials file; the config file is private
	// and holds a cached token.
	r := e.ok("login", "--credentials-file", e.credsAt)
	if !strings.Contains(r.out, "Logged in to "+e.server) || !strings.Contains(r.out, "organization-admin") {
		t.Errorf("login output:\n%s", r.out)
	}
	st, err := os.Stat(configPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("config file mode %v, want 0600", st.Mode().Perm())
	}
	cfg := readConfig(t, configPath)
	if cfg.Token == "" || cfg.ClientSecret != e.creds.ClientSecret || cfg.TokenExpiry.Before(time.Now()) {
		t.Errorf("config after login: token %t, expiry %v", cfg.Token != "", cfg.TokenExpiry)
	}
	e.secret(cfg.Token)

	// Logout forgets it; login with id and secret flags; a wrong secret is
	// refused without echoing anything secret.
	e.ok("logout")
	if _, err := os.Stat(configPath); !os.IsNotExist(err) {
		t.Errorf("config file after logout: %v", err)
	}
	e.exit(ExitFailure, "deploy", "list")
	wrong := "not-the-secret-" + e.creds.ClientSecret[:4]
	e.secret(wrong)
	if r := e.exit(ExitFailure, "login", "--server", e.server, "--client-id", e.creds.ClientID, "--client-secret", wrong); !strings.Contains(r.errOut, "unknown client id or wrong client secret") {
		t.Errorf("wrong secret: %s", r.errOut)
	}
	e.ok("login", "--server", e.server, "--client-id", e.creds.ClientID, "--client-secret", e.creds.ClientSecret)
	e.secret(readConfig(t, configPath).Token)

	// CI=true: login checks the credential and writes nothing.
	t.Run("CI keeps credentials in memory", func(t *testing.T) {
		ciConfig := filepath.Join(e.dir, "ci", "config.yaml")
		t.Setenv("SORTIE_CONFIG", ciConfig)
		t.Setenv("CI", "true")
		t.Setenv("ARMORY_CLIENT_ID", e.creds.ClientID)
		t.Setenv("ARMORY_CLIENT_SECRET", e.creds.ClientSecret)
		t.Setenv("SORTIE_SERVER", e.server)
		if r := e.ok("login"); !strings.Contains(r.out, "nothing was written") {
			t.Errorf("CI login: %s", r.out)
		}
		e.ok("deploy", "list")
		if _, err := os.Stat(ciConfig); !os.IsNotExist(err) {
			t.Errorf("CI=true wrote %s (%v)", ciConfig, err)
		}
	})

	file := e.writeApp("web", "local")

	// An invalid file is refused locally, with positions, exit 1.
	bad := filepath.Join(e.dir, "bad.yml")
	os.WriteFile(bad, []byte("version: v1\nkind: kubernetes\napplication: web\ntargets:\n  staging:\n    account: local\n    namespace: x\n    strategy: nope\nmanifests:\n  - inline: |\n      kind: ConfigMap\n"), 0o644)
	if r := e.exit(ExitFailure, "deploy", "start", "-f", bad); !regexp.MustCompile(`bad\.yml:8:15: .*nope`).MatchString(r.errOut) {
		t.Errorf("invalid file: stderr lacks file:line:col:\n%s", r.errOut)
	}
	// An account no agent serves: the server answers 422, exit 1.
	if r := e.exit(ExitFailure, "deploy", "start", "-f", e.writeApp("web", "elsewhere")); !strings.Contains(r.errOut, "no agent is connected for account elsewhere") {
		t.Errorf("unknown account: %s", r.errOut)
	}
	e.exit(ExitUsage, "deploy", "start")
	e.exit(ExitUsage, "deploy", "start", "-f", file, "-o", "xml")

	// The first deployment goes straight to 100 %, watched to its end; in
	// GitHub Actions the outputs and a summary are written.
	ghOut, ghSummary := filepath.Join(e.dir, "gh-output"), filepath.Join(e.dir, "gh-summary")
	t.Setenv("GITHUB_OUTPUT", ghOut)
	t.Setenv("GITHUB_STEP_SUMMARY", ghSummary)
	r = e.ok("deploy", "start", "-f", file, "--watch")
	first := regexp.MustCompile(`Deployment (\S+) started`).FindStringSubmatch(r.out)
	if first == nil || !strings.Contains(r.out, "ended SUCCEEDED") {
		t.Fatalf("start --watch output:\n%s", r.out)
	}
	gh, _ := os.ReadFile(ghOut)
	wantGH := fmt.Sprintf("DEPLOYMENT_ID=%s\nLINK=%s/pipelines/%s\nRUN_RESULT=SUCCEEDED\n", first[1], e.server, first[1])
	if string(gh) != wantGH {
		t.Errorf("GITHUB_OUTPUT:\n%s\nwant:\n%s", gh, wantGH)
	}
	if sum, _ := os.ReadFile(ghSummary); !strings.Contains(string(sum), fmt.Sprintf("[%s](%s/pipelines/%s)", first[1], e.server, first[1])) {
		t.Errorf("GITHUB_STEP_SUMMARY:\n%s", sum)
	}
	t.Setenv("GITHUB_OUTPUT", "")
	t.Setenv("GITHUB_STEP_SUMMARY", "")

	// The second goes through the canary; its start is accepted (JSON),
	// and a watcher follows it to the approval gate.
	r = e.ok("deploy", "start", "-f", file, "--add-context", "version=v2", "-o", "json")
	started := decode[startOutput](t, r)
	if started.PipelineID == "" || started.Status != pipeline.StatusRunning || started.Link != e.server+"/pipelines/"+started.PipelineID || started.Application != "web" {
		t.Errorf("start -o json: %+v", started)
	}
	id := started.PipelineID
	watch := e.start(e.ctx, "deploy", "watch", id)
	watch.out.waitFor(t, awaitingApproval, watch.done)
	if !strings.Contains(watch.out.String(), "-> sortie deploy approve "+id+" --target staging --step canary/1 (may approve: role release-manager (or an admin))") {
		t.Errorf("watch does not say who may approve:\n%s", watch.out.String())
	}

	// Meanwhile another start of the application is refused: exit 3.
	if r := e.exit(ExitInProgress, "deploy", "start", "-f", file); !strings.Contains(r.errOut, "in flight") {
		t.Errorf("409: %s", r.errOut)
	}

	// Ctrl-C stops a watcher and leaves the deployment running.
	wctx, stopWatching := context.WithCancel(e.ctx)
	w2 := e.start(wctx, "deploy", "watch", id)
	w2.out.waitFor(t, awaitingApproval, w2.done)
	stopWatching()
	if r := e.wait(w2, "deploy", "watch", id); r.code != ExitOK || !strings.Contains(r.errOut, "goes on") {
		t.Errorf("interrupted watch: exit %d\n%s", r.code, r.errOut)
	}

	// Credentials: a deployer may not approve this gate, a release manager
	// may, both through SORTIE_CLIENT_ID/SECRET (over the config file).
	// The custom role is defined (with the approve grant) before it is
	// given: an undefined one is refused.
	if r := e.exit(ExitFailure, "credentials", "create", "release manager", "--role", "release-manager"); !strings.Contains(r.errOut, `role "release-manager" is not defined in tenant main`) {
		t.Errorf("an undefined custom role: %s", r.errOut)
	}
	orgFile := filepath.Join(e.dir, "roles.yaml")
	os.WriteFile(orgFile, []byte("tenants:\n  - name: main\n    roles:\n      - name: release-manager\n        grants: [read, approve]\n"), 0o644)
	e.ok("config", "apply", "-f", orgFile)
	deployerCred := decode[api.NewCredential](t, e.ok("credentials", "create", "ci deployer", "--role", "deployer", "-o", "json"))
	rmCred := decode[api.NewCredential](t, e.ok("credentials", "create", "release manager", "--role", "release-manager", "-o", "json"))
	e.secret(deployerCred.ClientSecret)
	e.secret(rmCred.ClientSecret)
	list := decode[api.CredentialList](t, e.ok("credentials", "list", "-o", "json"))
	if len(list.Credentials) != 3 {
		t.Errorf("credentials list: %+v", list)
	}
	t.Run("approve needs the role", func(t *testing.T) {
		t.Setenv("SORTIE_CLIENT_ID", deployerCred.ClientID)
		t.Setenv("SORTIE_CLIENT_SECRET", deployerCred.ClientSecret)
		if r := e.exit(ExitFailure, "deploy", "approve", id); !strings.Contains(r.errOut, "release-manager") {
			t.Errorf("approve without the role: %s", r.errOut)
		}
		t.Setenv("SORTIE_CLIENT_ID", rmCred.ClientID)
		t.Setenv("SORTIE_CLIENT_SECRET", rmCred.ClientSecret)
		if r := e.ok("deploy", "approve", id, "--target", "staging"); !strings.Contains(r.out, "Approved deployment "+id+" target staging") {
			t.Errorf("approve: %s", r.out)
		}
	})
	r = e.wait(watch, "deploy", "watch", id)
	t.Logf("sortie deploy watch %s:\n%s", id, r.out)
	if r.code != ExitOK || !strings.Contains(r.out, "approve by release manager") || !strings.Contains(r.out, "Deployment "+id+" ended SUCCEEDED") {
		t.Errorf("watch after the approval: exit %d\n%s\n%s", r.code, r.out, r.errOut)
	}
	// The config file was not touched by the environment's credentials.
	if got := readConfig(t, configPath); got.ClientID != e.creds.ClientID {
		t.Errorf("the config file changed to client %s", got.ClientID)
	}
	if agents := decode[api.AgentList](t, e.ok("agents", "list", "-o", "json")); agents.Agents == nil {
		t.Errorf("agents list -o json: %+v", agents)
	}
	e.ok("credentials", "delete", deployerCred.ClientID)
	list = decode[api.CredentialList](t, e.ok("credentials", "list", "-o", "json"))
	for _, c := range list.Credentials {
		if c.ClientID == deployerCred.ClientID {
			t.Errorf("deleted credential still listed")
		}
	}

	// Secrets: the value comes from stdin and is never shown again.
	value := "s3cr3t-webhook-token-value"
	e.secret(value)
	if r := e.runIn(e.ctx, value+"\n", "secrets", "set", "webhook-token"); r.code != ExitOK || !strings.Contains(r.out, "Secret webhook-token set") {
		t.Errorf("secrets set: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	e.exit(ExitUsage, "secrets", "set", "empty")
	secrets := decode[api.SecretList](t, e.ok("secrets", "list", "-o", "json"))
	if len(secrets.Secrets) != 1 || secrets.Secrets[0].Name != "webhook-token" || secrets.Secrets[0].AllowedHosts != nil {
		t.Errorf("secrets list: %+v", secrets)
	}
	// Restricted to hosts: kept with the secret, shown by list.
	if r := e.runIn(e.ctx, value+"\n", "secrets", "set", "webhook-token", "--allowed-host", "hooks.example.com,*.example.org"); r.code != ExitOK || !strings.Contains(r.out, "sent only to hooks.example.com, *.example.org") {
		t.Errorf("secrets set --allowed-host: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	if r := e.ok("secrets", "list"); !strings.Contains(r.out, "hooks.example.com,*.example.org") {
		t.Errorf("secrets list does not show the allowed hosts:\n%s", r.out)
	}
	// A new value keeps them; --any-host lifts them.
	if r := e.runIn(e.ctx, value+"\n", "secrets", "set", "webhook-token"); r.code != ExitOK || !strings.Contains(r.out, "sent only to hooks.example.com, *.example.org") {
		t.Errorf("secrets set, a new value: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	if r := e.runIn(e.ctx, value+"\n", "secrets", "set", "webhook-token", "--any-host"); r.code != ExitOK || strings.Contains(r.out, "sent only") {
		t.Errorf("secrets set --any-host: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	e.exit(ExitUsage, "secrets", "set", "webhook-token", "--any-host", "--allowed-host", "x.example.com")
	if r := e.runIn(e.ctx, value+"\n", "secrets", "set", "webhook-token", "--allowed-host", "https://hooks.example.com/x"); r.code != ExitUsage || !strings.Contains(r.errOut, "not a URL") {
		t.Errorf("secrets set --allowed-host URL: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	e.ok("secrets", "delete", "webhook-token")

	// Organization configuration as YAML, applied twice.
	org := filepath.Join(e.dir, "org.yaml")
	os.WriteFile(org, []byte("tenants:\n  - name: main\n    roles:\n      - name: release-manager\n        grants: [read, approve]\n      - name: auditor\n        grants: [read]\n  - name: payments\n"), 0o644)
	if r := e.ok("config", "apply", "-f", org); !strings.Contains(r.out, "tenant payments created") {
		t.Errorf("config apply:\n%s", r.out)
	}
	if r := e.ok("config", "apply", "-f", org); r.out != "No changes.\n" {
		t.Errorf("config apply again:\n%s", r.out)
	}
	var got api.Config
	if err := yaml.Unmarshal([]byte(e.ok("config", "get").out), &got); err != nil || len(got.Tenants) != 2 {
		t.Errorf("config get: %+v %v", got, err)
	}
	os.WriteFile(org, []byte("tenants:\n  - name: main\n    rolez: []\n"), 0o644)
	e.exit(ExitFailure, "config", "apply", "-f", org)

	// Status, list and logs, as JSON and YAML.
	view := decode[api.PipelineView](t, e.ok("deploy", "status", id, "-o", "json"))
	if view.Status != pipeline.StatusSucceeded || len(view.Targets) != 1 || view.Targets[0].AchievedWeight != 100 || view.Targets[0].Namespace != e.ns {
		t.Errorf("status -o json: %+v", view)
	}
	if r := e.ok("deploy", "status", id); !regexp.MustCompile(`canary/1 +approval +SUCCEEDED +approved by release manager\n`).MatchString(r.out) || !strings.Contains(r.out, "approve by release manager on staging canary/1") {
		t.Errorf("status text:\n%s", r.out)
	}
	var fromYAML map[string]any
	if err := yaml.Unmarshal([]byte(e.ok("deploy", "status", id, "-o", "yaml").out), &fromYAML); err != nil || fromYAML["id"] != id {
		t.Errorf("status -o yaml: %v %v", err, fromYAML["id"])
	}
	pl := decode[api.PipelineList](t, e.ok("deploy", "list", "--application", "web", "--status", "succeeded", "-o", "json"))
	if len(pl.Pipelines) != 2 || pl.Pipelines[0].ID != id {
		t.Errorf("list -o json: %+v", pl)
	}
	if r := e.ok("deploy", "list"); !strings.Contains(r.out, id) || !strings.Contains(r.out, "staging SUCCEEDED") {
		t.Errorf("list text:\n%s", r.out)
	}
	logs := decode[api.EventList](t, e.ok("deploy", "logs", id, "-o", "json"))
	if len(logs.Events) < 5 || logs.Events[0].Pipeline != id {
		t.Errorf("logs -o json: %d events", len(logs.Events))
	}
	if r := e.ok("deploy", "logs", id, "-f"); !strings.Contains(r.out, "pipeline                     AWAITING_APPROVAL -> RUNNING") || !strings.Contains(r.out, "-> SUCCEEDED") {
		t.Errorf("logs -f of an ended deployment:\n%s", r.out)
	}
	if r := e.exit(ExitFailure, "deploy", "status", "nope"); !strings.Contains(r.errOut, "no deployment nope in your tenant") {
		t.Errorf("unknown id: %s", r.errOut)
	}
	// An action on an ended deployment is a plain failure, not exit 3.
	e.exit(ExitFailure, "deploy", "skip", id)

	// Rollback: start v3 watched, roll it back at the gate; the watch
	// ends with exit 1.
	run := e.start(e.ctx, "deploy", "start", "-f", file, "--add-context", "version=v3", "-w")
	run.out.waitFor(t, awaitingApproval, run.done)
	v3 := regexp.MustCompile(`Deployment (\S+) started`).FindStringSubmatch(run.out.String())[1]
	// On a terminal, watch redraws a compact view in place.
	term := e.startOn(e.ctx, true, "deploy", "watch", v3)
	term.out.waitFor(t, regexp.MustCompile(`staging +AWAITING_APPROVAL +canary/1 approval +25% \(achieved 25%\) +approval by role release-manager \(or an admin\): sortie deploy approve `+v3), term.done)
	e.ok("deploy", "rollback", v3, "--target", "staging", "--reason", "error rate")
	if r := e.wait(term, "deploy", "watch", v3); r.code != ExitFailure || !strings.Contains(r.out, "\x1b[") || !regexp.MustCompile(`staging +ROLLED_BACK`).MatchString(r.out) {
		t.Errorf("terminal watch: exit %d\n%q", r.code, r.out)
	}
	if r := e.wait(run, "deploy", "start", "-w"); r.code != ExitFailure || !strings.Contains(r.errOut, "deployment "+v3+" ended FAILED") {
		t.Errorf("rolled back start -w: exit %d\n%s\n%s", r.code, r.out, r.errOut)
	}
	view = decode[api.PipelineView](t, e.ok("deploy", "status", v3, "-o", "json"))
	if view.Targets[0].Status != pipeline.StatusRolledBack {
		t.Errorf("after rollback: target %s", view.Targets[0].Status)
	}

	// Cancel: a redeploy of v2 waits at the gate and is cancelled.
	redeployed := decode[startOutput](t, e.ok("deploy", "start", "-i", id, "-o", "json"))
	watch = e.start(e.ctx, "deploy", "watch", redeployed.PipelineID, "-o", "json")
	watch.errOut.waitFor(t, awaitingApproval, watch.done)
	e.ok("deploy", "cancel", redeployed.PipelineID, "--reason", "not today")
	r = e.wait(watch, "deploy", "watch", "-o", "json")
	if final := decode[api.PipelineView](t, r); r.code != ExitFailure || final.Status != pipeline.StatusCancelled {
		t.Errorf("cancelled watch: exit %d, status %s", r.code, final.Status)
	}
}

func readConfig(t *testing.T, path string) configFile {
	t.Helper()
	c, err := loadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
