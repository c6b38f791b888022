package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/egress"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/server"
)

// chromiumPath is Debian's chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// updateScreenshots, when set in the environment, makes the browser tests
// write docs/screenshots/*.png (off in CI, so a run leaves the tree clean).
const updateScreenshots = "SORTIE_UPDATE_SCREENSHOTS"

// sortie is a real server (server.Run in process) whose in-process executor
// deploys to the shared local cluster.
type sortie struct {
	t                *testing.T
	url              string
	adminID, adminSK string
	ns               string
}

func startServer(t *testing.T) *sortie { t.Helper(); return startServerWith(t, nil) }

// startServerWith is startServer with the configuration changed by edit
// (nil: none); a TLS certificate makes its URL https.
func startServerWith(t *testing.T, edit func(*server.Config)) *sortie {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	dir := t.TempDir()
	cfg := server.Config{
		Addr: "127.0.0.1:0", DataDir: dir,
		EgressAllow: egress.Loopback, // the tests' webhook receivers listen there
		Kubeconfig:  kubetest.Cluster(t).Kubeconfig, Account: "local",
		Ready: func(addr, creds string) { ready <- [2]string{addr, creds} },
	}
	if edit != nil {
		edit(&cfg)
	}
	go func() { done <- server.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	var r [2]string
	select {
	case r = <-ready:
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start within 30s")
	}
	b, err := os.ReadFile(r[1])
	if err != nil {
		t.Fatal(err)
	}
	var cf auth.CredentialsFile
	if err := json.Unmarshal(b, &cf); err != nil {
		t.Fatal(err)
	}
	scheme := "http://"
	if cfg.TLSCertFile != "" {
		scheme = "https://"
	}
	return &sortie{t: t, url: scheme + r[0], adminID: cf.ClientID, adminSK: cf.ClientSecret, ns: kubetest.Namespace(t)}
}

// token gets an access token from the REST API's token endpoint.
func (s *sortie) token(id, secret string) string {
	s.t.Helper()
	resp, err := http.PostForm(s.url+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}})
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		s.t.Fatalf("token: status %d, err %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

func (s *sortie) call(method, path string, in, out any) {
	s.t.Helper()
	var body bytes.Buffer
	if in != nil {
		json.NewEncoder(&body).Encode(in)
	}
	req, _ := http.NewRequest(method, s.url+path, &body)
	req.Header.Set("Authorization", "Bearer "+s.token(s.adminID, s.adminSK))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e bytes.Buffer
		e.ReadFrom(resp.Body)
		s.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, e.String())
	}
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
}

// deploy starts a pipeline of app through the REST API, as the CLI does.
func (s *sortie) deploy(app, image, steps string) string {
	s.t.Helper()
	return s.deployWith(app, image, steps, "")
}

// deployWith is deploy with extra top-level sections (webhooks, analysis).
func (s *sortie) deployWith(app, image, steps, extra string) string {
	s.t.Helper()
	return s.deployFile(app, image, fmt.Sprintf(`  staging:
    account: local
    namespace: %s
    strategy: c
    constraints:
      beforeDeployment:
        - pause: {duration: 1, unit: seconds}
strategies:
  c:
    canary:
      steps:
%s`, s.ns, steps), extra)
}

// deployFile starts a pipeline of app whose manifest is one Deployment of
// image; targets is the file's targets section (without its key) and
// what follows it up to the manifests, extra any sections after them.
func (s *sortie) deployFile(app, image, targets, extra string) string {
	s.t.Helper()
	file := fmt.Sprintf(`version: v1
kind: kubernetes
application: %[1]s
targets:
%[3]s
manifests:
  - inline: |
%[2]s%[4]s`, app, kubetest.Inline(kubetest.SampleApp(app, 4, image)), targets, extra)
	var res struct {
		PipelineID string `json:"pipelineId"`
	}
	s.call("POST", "/api/v1/pipelines", map[string]any{"fileName": "deploy.yml", "file": file}, &res)
	return res.PipelineID
}

// waitAPI waits for a pipeline's status through the REST API and its
// event stream (setup only: the browser assertions wait on the DOM).
func (s *sortie) waitAPI(id string, want string) {
	s.t.Helper()
	c, err := client.New(client.Options{Server: s.url, ClientID: s.adminID, ClientSecret: s.adminSK, HTTPClient: http.DefaultClient})
	if err != nil {
		s.t.Fatal(err)
	}
	clienttest.WaitPipeline(s.t, c, id, "it is "+want, func(p *api.PipelineView) bool { return string(p.Status) == want })
}

// browser starts Debian's headless chromium with a fresh profile. A
// missing chromium fails the test: CI installs it.
func browser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("chromium is missing (%v): the console's browser tests need Debian's chromium; install it with `apt-get install -y chromium` (.ci/run does)", err)
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}, extra...)...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancel3)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main') ? document.querySelector('main').innerText : document.body.innerText`))
		t.Fatalf("%s: %v\npage text:\n%s", what, err, html)
	}
}

// waitFor waits until the JavaScript predicate holds in the page.
func waitFor(t *testing.T, ctx context.Context, what, predicate string) {
	t.Helper()
	do(t, ctx, "wait for "+what, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(90*time.Second)))
}

// clickLoad clicks a button or link and waits for the page it leads to.
func clickLoad(sel string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel)))(ctx, t)
		return chromedp.Void{}, err
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func login(t *testing.T, ctx context.Context, s *sortie, id, secret string) {
	t.Helper()
	do(t, ctx, "log in",
		chromedp.Navigate(s.url+"/"),
		chromedp.WaitVisible(chromedp.CSS("#client_id")),
		chromedp.SendKeys(chromedp.CSS("#client_id"), id),
		chromedp.SendKeys(chromedp.CSS("#client_secret"), secret),
		clickLoad("#login-client button[type=submit]"),
		chromedp.WaitVisible(chromedp.CSS("#filters")),
	)
}

func logout(t *testing.T, ctx context.Context) {
	t.Helper()
	do(t, ctx, "log out",
		clickLoad("header form[action='/logout'] button"),
		chromedp.WaitVisible(chromedp.CSS("#login-message")),
	)
}

func screenshot(t *testing.T, ctx context.Context, name, sel string) {
	t.Helper()
	if os.Getenv(updateScreenshots) == "" {
		return
	}
	var png []byte
	var err error
	if sel == "" {
		png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	} else {
		png, err = chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	}
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join("..", "docs", "screenshots", name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

const canarySteps = `        - setWeight: 25
        - pause: {duration: 2, unit: seconds}
        - setWeight: 50
        - pause: {untilApproved: true, requiresRoles: [release-manager]}
        - setWeight: 100`

// TestLoginAndWatchCanaryAdvanceLiveThenApprove logs in, opens a canary's
// pipeline view as it starts and, without reloading, sees the timed pause
// highlighted, then the approval gate waiting; approves it by clicking and
// sees the pipeline succeed.
func TestLoginAndWatchCanaryAdvanceLiveThenApprove(t *testing.T) {
	s := startServer(t)
	ctx := browser(t)
	s.waitAPI(s.deploy("web", "web:v1", canarySteps), "SUCCEEDED")

	login(t, ctx, s, s.adminID, s.adminSK)
	if got := text(t, ctx, ".principal"); !strings.Contains(got, "bootstrap admin") {
		t.Errorf("header shows %q, want the signed-in credential", got)
	}
	if got := text(t, ctx, "#tenant"); got != "main" {
		t.Errorf("tenant shows %q, want main", got)
	}
	// The list is live: a pipeline started now appears without a reload.
	do(t, ctx, "mark the page", chromedp.Evaluate[chromedp.Void](`window.__noReload = 1`))
	id := s.deploy("web", "web:v2", canarySteps)
	waitFor(t, ctx, "the new pipeline in the list", fmt.Sprintf(`!!document.querySelector('tr[data-pipeline=%q]')`, id))
	waitFor(t, ctx, "no reload of the list", `window.__noReload === 1`)

	do(t, ctx, "open the pipeline",
		clickLoad(fmt.Sprintf(`tr[data-pipeline=%q] a`, id)),
		chromedp.WaitVisible(chromedp.CSS("#detail")),
		chromedp.Evaluate[chromedp.Void](`window.__noReload = 2`),
	)
	waitFor(t, ctx, "the timed pause highlighted", `!!document.querySelector('li.step.current[data-step="canary/1"][data-status=PAUSED]')`)
	screenshotDetailWhile := text(t, ctx, "#detail li.step.current .deadline")
	if !strings.Contains(screenshotDetailWhile, "pause ends at") {
		t.Errorf("the running pause shows %q, want its end", screenshotDetailWhile)
	}
	waitFor(t, ctx, "the approval gate waiting", `!!document.querySelector('li.step.current[data-step="canary/3"][data-status=AWAITING_APPROVAL]')`)
	waitFor(t, ctx, "the graph node awaiting approval", `!!document.querySelector('svg g.node[data-target=staging][data-status=AWAITING_APPROVAL]')`)
	waitFor(t, ctx, "the pipeline page was never reloaded", `window.__noReload === 2`)
	if got := text(t, ctx, "[data-weight=achieved]"); got != "50%" {
		t.Errorf("achieved weight shows %q, want 50%%", got)
	}
	if got := text(t, ctx, "#pods"); got != "2 new, 2 old ready" {
		t.Errorf("pods show %q, want 2 new, 2 old ready", got)
	}
	if got := text(t, ctx, "li.step[data-step='beforeDeployment/0']"); !strings.Contains(got, "SUCCEEDED") {
		t.Errorf("before-deployment gate shows %q", got)
	}
	screenshot(t, ctx, "pipeline-view.png", "")
	screenshot(t, ctx, "target-detail.png", "#detail")

	// An organization admin may approve a gate that requires another role.
	do(t, ctx, "approve", clickLoad("button[data-action=approve]"), chromedp.WaitVisible(chromedp.CSS("#flash")))
	if got := text(t, ctx, "#flash"); !strings.HasPrefix(got, "Approved") {
		t.Errorf("after approving the page says %q", got)
	}
	waitFor(t, ctx, "the pipeline succeeded", `document.querySelector('.live-meta') && document.querySelector('.live-meta').dataset.status === 'SUCCEEDED'`)
	waitFor(t, ctx, "the timeline shows who approved", `document.getElementById('timeline').innerText.includes('approve canary/3 by bootstrap admin')`)
	// The click is in the audit log as the API's own approve route records it.
	var audit struct {
		Entries []struct {
			Actor, ClientID, Remote string
			Objects                 []string
		} `json:"entries"`
	}
	s.call("GET", "/api/v1/audit?action=pipeline.approve", nil, &audit)
	if len(audit.Entries) != 1 || audit.Entries[0].Actor != "bootstrap admin" || audit.Entries[0].ClientID != s.adminID ||
		len(audit.Entries[0].Objects) == 0 || audit.Entries[0].Objects[0] != id || audit.Entries[0].Remote != "127.0.0.1" {
		t.Errorf("audit entries of pipeline.approve: %+v, want the click on %s by the bootstrap admin from 127.0.0.1", audit.Entries, id)
	}
	do(t, ctx, "open the audit log", chromedp.Navigate(s.url+"/settings/audit?action=pipeline.approve"), chromedp.WaitVisible(chromedp.CSS("#audit")))
	if got := text(t, ctx, "#audit tbody"); !strings.Contains(got, "pipeline.approve") || !strings.Contains(got, id) {
		t.Errorf("the audit page shows %q", got)
	}

	// The source page diffs against the previous pipeline (v1 → v2).
	do(t, ctx, "open the source", chromedp.Navigate(s.url+"/pipelines/"+id+"/source"), chromedp.WaitVisible(chromedp.CSS("table.diff")))
	if got := text(t, ctx, "table.diff tr.add"); !strings.Contains(got, "web:v2") {
		t.Errorf("diff adds %q, want the v2 image", got)
	}
}

// TestViewerIsRefusedAndDeployerRollsBack creates a viewer credential on
// the credentials page, logs in with it and finds the approve and roll-back
// buttons disabled with the reason; then an admin rolls the target back.
// awaitingApproval deploys api:v1, then api:v2 as a canary that waits at
// an approval gate at 50 %, and returns the second pipeline once it waits.
func (s *sortie) awaitingApproval() string {
	s.t.Helper()
	steps := `        - setWeight: 50
        - pause: {untilApproved: true}
        - setWeight: 100`
	s.waitAPI(s.deploy("api", "api:v1", steps), "SUCCEEDED")
	id := s.deploy("api", "api:v2", steps)
	s.waitAPI(id, "AWAITING_APPROVAL")
	return id
}

func TestViewerIsRefusedAndDeployerRollsBack(t *testing.T) {
	s := startServer(t)
	ctx := browser(t)
	id := s.awaitingApproval()

	login(t, ctx, s, s.adminID, s.adminSK)
	do(t, ctx, "create a viewer credential",
		chromedp.Navigate(s.url+"/settings/credentials"),
		chromedp.WaitVisible(chromedp.CSS("#cred-name")),
		chromedp.SendKeys(chromedp.CSS("#cred-name"), "dashboard"),
		chromedp.Click(chromedp.CSS("input[name=roles][value=viewer]")),
		clickLoad("#new-credential-form button[type=submit]"),
		chromedp.WaitVisible(chromedp.CSS("#new-client-secret")),
	)
	viewerID, viewerSecret := text(t, ctx, "#new-client-id"), text(t, ctx, "#new-client-secret")
	// Shown once: a reload of the page does not show it again.
	do(t, ctx, "reload credentials", chromedp.Navigate(s.url+"/settings/credentials"), chromedp.WaitVisible(chromedp.CSS("#credentials")))
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#new-client-secret').length`)); n != 0 {
		t.Error("the secret is shown again after a reload")
	}
	logout(t, ctx)

	login(t, ctx, s, viewerID, viewerSecret)
	do(t, ctx, "open the pipeline as a viewer", chromedp.Navigate(s.url+"/pipelines/"+id), chromedp.WaitVisible(chromedp.CSS("#detail")))
	waitFor(t, ctx, "approve disabled", `document.querySelector('button[data-action=approve]').disabled`)
	if got := text(t, ctx, "[data-reason=approve]"); !strings.Contains(got, "viewer") || !strings.Contains(got, "may not approve") {
		t.Errorf("approve's reason is %q, want it to name the viewer role", got)
	}
	waitFor(t, ctx, "roll back disabled", `document.querySelector('button[data-action=rollback]').disabled`)
	if got := text(t, ctx, "[data-reason=rollback]"); !strings.Contains(got, "may not act") {
		t.Errorf("roll back's reason is %q", got)
	}
	waitFor(t, ctx, "cancel disabled", `document.querySelector('button[data-action=cancel]').disabled`)
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#new-credential-form').length`)); n != 0 {
		t.Error("a viewer sees the credential form")
	}
	logout(t, ctx)

	login(t, ctx, s, s.adminID, s.adminSK)
	do(t, ctx, "open the pipeline as admin", chromedp.Navigate(s.url+"/pipelines/"+id), chromedp.WaitVisible(chromedp.CSS("#detail")))
	do(t, ctx, "roll back", clickLoad("button[data-action=rollback]:not([disabled])"), chromedp.WaitVisible(chromedp.CSS("#flash")))
	waitFor(t, ctx, "the target rolled back", `!!document.querySelector('#detail[data-status=ROLLED_BACK]')`)
	waitFor(t, ctx, "the rollback step", `!!document.querySelector('li.step[data-step=rollback][data-status=SUCCEEDED]')`)
	waitFor(t, ctx, "the graph node rolled back", `!!document.querySelector('svg g.node[data-target=staging][data-status=ROLLED_BACK]')`)
	screenshot(t, ctx, "rolled-back.png", "")
}

// TestLoginRefusals: a wrong secret and a garbage token are refused with a
// message, and a page without a session leads to the login form.
func TestLoginRefusals(t *testing.T) {
	s := startServer(t)
	ctx := browser(t)
	do(t, ctx, "wrong secret",
		chromedp.Navigate(s.url+"/pipelines/nope"),
		chromedp.WaitVisible(chromedp.CSS("#client_id")),
		chromedp.SendKeys(chromedp.CSS("#client_id"), s.adminID),
		chromedp.SendKeys(chromedp.CSS("#client_secret"), "wrong"),
		clickLoad("#login-client button[type=submit]"),
		chromedp.WaitVisible(chromedp.CSS("#login-error")),
	)
	if got := text(t, ctx, "#login-error"); !strings.Contains(got, "wrong secret") {
		t.Errorf("error is %q", got)
	}
	do(t, ctx, "garbage token",
		chromedp.SendKeys(chromedp.CSS("#token"), "not.a.token"),
		clickLoad("#login-token button[type=submit]"),
		chromedp.WaitVisible(chromedp.CSS("#login-error")),
	)
	if got := text(t, ctx, "#login-error"); !strings.Contains(got, "not valid") {
		t.Errorf("error is %q", got)
	}
	// A pasted token works, and the next page is the one first asked for.
	tok := s.token(s.adminID, s.adminSK)
	do(t, ctx, "ask for a page", chromedp.Navigate(s.url+"/settings/secrets"), chromedp.WaitVisible(chromedp.CSS("#token")))
	do(t, ctx, "paste a token", chromedp.SetValue(chromedp.CSS("#token"), tok))
	do(t, ctx, "use the token", clickLoad("#login-token button[type=submit]"), chromedp.WaitVisible(chromedp.CSS("#secret-form")))
}

// TestWebhookMessageAndWhatTheTargetTouched stores a secret through the
// secrets page, deploys a canary whose runWebhook gate calls a test server
// (the external system) with that secret in a header, and, with the
// pipeline open, answers the call through the real API with a deployer's
// real token: the page shows the callback's markdown rendered, without a
// reload, the call as sent with the secret masked, and the Kubernetes
// objects the target wrote.
func TestWebhookMessageAndWhatTheTargetTouched(t *testing.T) {
	s := startServer(t)
	ctx := browser(t)
	calls := make(chan map[string]string, 4)
	ext := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		json.NewDecoder(r.Body).Decode(&body)
		body["authorization"] = r.Header.Get("Authorization")
		w.WriteHeader(http.StatusAccepted)
		calls <- body
	}))
	t.Cleanup(ext.Close)
	const hookToken = "hook-token-3f9a1c"

	login(t, ctx, s, s.adminID, s.adminSK)
	do(t, ctx, "store a secret",
		chromedp.Navigate(s.url+"/settings/secrets"),
		chromedp.WaitVisible(chromedp.CSS("#secret-form")),
		chromedp.SendKeys(chromedp.CSS("#secret-name"), "HOOK_TOKEN"),
		chromedp.SendKeys(chromedp.CSS("#secret-value"), hookToken),
		clickLoad("#secret-form button[type=submit]"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-secret="HOOK_TOKEN"]`)),
	)
	if html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`)); strings.Contains(html, hookToken) {
		t.Error("the secrets page shows the value")
	}

	webhooks := fmt.Sprintf(`webhooks:
  - name: smoke
    method: POST
    uriTemplate: %s/run
    headers:
      - {key: Content-Type, value: application/json}
      - {key: Authorization, value: "Bearer {{secrets.HOOK_TOKEN}}"}
    bodyTemplate:
      inline: '{"app": "{{armory.applicationName}}", "callbackUri": "{{armory.callbackUri}}"}'
`, ext.URL)
	steps := `        - setWeight: 50
        - runWebhook: {name: smoke}
        - setWeight: 100`
	// The first deployment of an application goes straight to its new
	// version; the second runs the canary and its gate.
	s.waitAPI(s.deployWith("shop", "shop:v1", steps, webhooks), "SUCCEEDED")
	id := s.deployWith("shop", "shop:v2", steps, webhooks)
	var call map[string]string
	select {
	case call = <-calls:
	case <-time.After(time.Minute):
		var p json.RawMessage
		s.call("GET", "/api/v1/pipelines/"+id, nil, &p)
		t.Fatalf("the webhook was never called; the pipeline:\n%s", p)
	}
	if call["authorization"] != "Bearer "+hookToken || call["app"] != "shop" {
		t.Errorf("the webhook got %v", call)
	}

	do(t, ctx, "open the pipeline",
		chromedp.Navigate(s.url+"/pipelines/"+id),
		chromedp.WaitVisible(chromedp.CSS(`li.step.current[data-step="canary/1"]`)),
		chromedp.Evaluate[chromedp.Void](`window.__noReload = 3`),
	)
	// The external system answers through the API with a real token of
	// the tenant.
	var nc struct{ ClientID, ClientSecret string }
	s.call("POST", "/api/v1/credentials", map[string]any{"name": "smoke runner", "roles": []string{"deployer"}}, &nc)
	body, _ := json.Marshal(map[string]any{"success": true, "mdMessage": "**Smoke tests** passed: [report](https://example.com/r)"})
	req, _ := http.NewRequest("POST", call["callbackUri"]+"/callback", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.token(nc.ClientID, nc.ClientSecret))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("callback: %d", resp.StatusCode)
	}

	msg := `li.step[data-step="canary/1"] .msg`
	waitFor(t, ctx, "the webhook message", `!!document.querySelector('`+msg+` strong')`)
	waitFor(t, ctx, "no reload", `window.__noReload === 3`)
	if got := text(t, ctx, msg+" strong"); got != "Smoke tests" {
		t.Errorf("bold text %q", got)
	}
	link, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(function(){var a=document.querySelector('`+msg+` a');return [a.href,a.textContent,a.rel,a.target]})()`))
	if err != nil || link[0] != "https://example.com/r" || link[1] != "report" || !strings.Contains(link[2], "noopener") || link[3] != "_blank" {
		t.Errorf("link %v (%v)", link, err)
	}
	if got := text(t, ctx, msg); got != "Smoke tests passed: report" {
		t.Errorf("message text %q", got)
	}
	tags, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('`+msg+` *')).map(function(e){return e.tagName})`))
	if strings.Join(tags, ",") != "P,STRONG,A" {
		t.Errorf("the message renders tags %v, want only P, STRONG and A", tags)
	}
	// The call as sent, secret masked; the objects the target wrote.
	request, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('li.step[data-step="canary/1"] details.call pre').textContent`))
	if !strings.Contains(request, "POST "+ext.URL+"/run") || !strings.Contains(request, "Authorization: Bearer ") || strings.Contains(request, hookToken) {
		t.Errorf("the webhook call shows %q", request)
	}
	waitFor(t, ctx, "the pipeline succeeded", `document.querySelector('.live-meta').dataset.status === 'SUCCEEDED'`)
	waitFor(t, ctx, "the objects the target wrote", `!!document.querySelector('#objects tr[data-object="Deployment/shop"]')`)
	if got := text(t, ctx, `#objects tr[data-object="Deployment/shop"]`); !strings.Contains(got, s.ns) {
		t.Errorf("objects row %q lacks the namespace %s", got, s.ns)
	}
	if html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`)); strings.Contains(html, hookToken) {
		t.Error("the pipeline page shows the secret")
	}
	do(t, ctx, "open the call", chromedp.Evaluate[chromedp.Void](`document.querySelector('details.call').open = true`))
	screenshot(t, ctx, "webhook-message.png", "#detail")
}

// TestRejectWithAReason refuses an approval gate from the console: the
// reason is asked for, the target rolls back, and the step says who
// rejected it and why.
func TestRejectWithAReason(t *testing.T) {
	s := startServer(t)
	ctx := browser(t)
	id := s.awaitingApproval()

	login(t, ctx, s, s.adminID, s.adminSK)
	do(t, ctx, "open the pipeline", chromedp.Navigate(s.url+"/pipelines/"+id+"?target=staging"), chromedp.WaitVisible(chromedp.CSS("#detail")))
	do(t, ctx, "open the rejection form",
		chromedp.Click(chromedp.CSS("summary[data-action=reject-open]")),
		chromedp.WaitVisible(chromedp.CSS("details.ask input[name=reason]")),
		chromedp.SendKeys(chromedp.CSS("details.ask input[name=reason]"), "error budget spent"),
	)
	do(t, ctx, "reject", clickLoad("button[data-action=reject]"), chromedp.WaitVisible(chromedp.CSS("#flash")))
	if got := text(t, ctx, "#flash"); !strings.HasPrefix(got, "Rejected") {
		t.Errorf("after rejecting the page says %q", got)
	}
	waitFor(t, ctx, "the target rolled back", `!!document.querySelector('#detail[data-status=ROLLED_BACK]')`)
	if got := text(t, ctx, "#detail"); !strings.Contains(got, "rejected by") || !strings.Contains(got, "error budget spent") {
		t.Errorf("the target's detail does not say who rejected it and why:\n%s", got)
	}
}
