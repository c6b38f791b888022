package gate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sortie-cd/sortie/analysis"
	"github.com/sortie-cd/sortie/analysis/promtest"
	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/egress"
	"github.com/sortie-cd/sortie/gate"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/progress"
	"github.com/sortie-cd/sortie/server"
	"github.com/sortie-cd/sortie/store"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// env is a real `sortie server` (SQLite, auth, runner, gate router,
// in-process cluster executor on the shared cluster) reached over HTTP with
// real tokens.
type env struct {
	t     testing.TB
	url   string
	admin *client.Client
	ns    string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, ns: kubetest.Namespace(t)}
	ctx, cancel := context.WithCancel(context.Background())
	type up struct{ addr, creds string }
	ready := make(chan up, 1)
	done := make(chan error, 1)
	dir := t.TempDir()
	go func() {
		done <- server.Run(ctx, server.Config{Addr: "127.0.0.1:0", DataDir: dir, EgressAllow: egress.Loopback,
			Kubeconfig: kubetest.Cluster(t).Kubeconfig, Account: "local",
			Ready: func(addr, creds string) { ready <- up{addr, creds} }})
	}()
	t.Cleanup(func() { cancel(); <-done })
	var u up
	select {
	case u = <-ready:
	case err := <-done:
		t.Fatalf("server: %v", err)
	}
	e.url = "http://" + u.addr
	b, err := os.ReadFile(filepath.Join(dir, auth.AdminCredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	var cf auth.CredentialsFile
	if err := json.Unmarshal(b, &cf); err != nil {
		t.Fatal(err)
	}
	if e.admin, err = client.New(client.Options{Server: e.url, ClientID: cf.ClientID, ClientSecret: cf.ClientSecret}); err != nil {
		t.Fatal(err)
	}
	return e
}

// token is a real access token of a new credential of tenant main with roles,
// obtained with the client-credentials grant.
func (e *env) token(roles ...string) string {
	e.t.Helper()
	ctx := context.Background()
	nc, err := e.admin.CreateCredential(ctx, api.CreateCredentialRequest{Name: "test " + strings.Join(roles, "+"), Roles: roles})
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := client.New(client.Options{Server: e.url, ClientID: nc.ClientID, ClientSecret: nc.ClientSecret})
	if err != nil {
		e.t.Fatal(err)
	}
	tok, err := c.Token(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok.AccessToken
}

// post POSTs a JSON body with a bearer token; it returns the status and body.
func (e *env) post(url, token string, body any) (int, string) {
	e.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func (e *env) addPrometheus(url string) {
	e.t.Helper()
	tok, err := e.admin.Token(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	if status, body := e.post(e.url+api.Prefix+"/providers", tok.AccessToken, analysis.Config{Name: "prom", Type: analysis.TypePrometheus, URL: url}); status != http.StatusCreated {
		e.t.Fatalf("add provider: %d %s", status, body)
	}
}

// deploy starts the application web at image with the canary steps given
// (YAML list items indented for steps:) and the extra top-level YAML.
func (e *env) deploy(image, steps, extra string) string {
	e.t.Helper()
	if steps == "" {
		steps = "        - setWeight: {weight: 50}\n"
	}
	file := fmt.Sprintf(`version: v1
kind: kubernetes
application: web
targets:
  prod:
    account: local
    namespace: %s
    strategy: canary
strategies:
  canary:
    canary:
      steps:
%s%s
manifests:
  - inline: |
%s`, e.ns, steps, extra, kubetest.Inline(kubetest.SampleApp("web", 4, image)))
	res, err := e.admin.StartPipeline(context.Background(), api.StartRequest{FileName: "deploy.yml", File: file})
	if err != nil {
		e.t.Fatalf("start: %v", err)
	}
	return res.PipelineID
}

// waitFor follows the pipeline's event stream until cond holds.
func (e *env) waitFor(id, what string, cond func(*api.PipelineView) bool) *api.PipelineView {
	e.t.Helper()
	return clienttest.WaitPipeline(e.t, e.admin, id, what, cond)
}

func (e *env) waitEnd(id string) *api.PipelineView {
	e.t.Helper()
	return clienttest.WaitEnd(e.t, e.admin, id)
}

func (e *env) deployV1() {
	e.t.Helper()
	if p := e.waitEnd(e.deploy("example/web:v1", "", "")); p.Status != pipeline.StatusSucceeded {
		e.t.Fatalf("v1: %s\n%s", p.Status, clienttest.Dump(p))
	}
}

func step(p *api.PipelineView, id string) *pipeline.StepState {
	for _, t := range p.Targets {
		for i := range t.Steps {
			if t.Steps[i].ID == id {
				return &t.Steps[i]
			}
		}
	}
	return nil
}

func (e *env) events(id, typ string) []store.Event {
	e.t.Helper()
	evs, err := e.admin.Events(context.Background(), id, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []store.Event
	for _, ev := range evs {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func (e *env) judgments(id string) []progress.JudgmentEvent {
	var out []progress.JudgmentEvent
	for _, ev := range e.events(id, progress.EventJudgment) {
		var j progress.JudgmentEvent
		if err := json.Unmarshal(ev.Data, &j); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, j)
	}
	return out
}

func (e *env) images() map[string]int {
	e.t.Helper()
	pods, err := kubetest.Client(e.t).CoreV1().Pods(e.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]int{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			out[p.Spec.Containers[0].Image]++
		}
	}
	return out
}

// metrics is a real Prometheus scraping the new version's error rate.
type metrics struct {
	prom    *promtest.Prometheus
	errRate prometheus.Gauge
}

func newMetrics(t testing.TB, rate float64) *metrics {
	m := &metrics{prom: promtest.Start(t), errRate: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "app_error_rate", Help: "Errors per request of the new version.", ConstLabels: prometheus.Labels{"app": "web", "version": "v2"}})}
	m.prom.Registry.MustRegister(m.errRate)
	m.set(t, rate)
	return m
}

// set moves the error rate and waits until Prometheus has stored it.
func (m *metrics) set(t testing.TB, v float64) {
	m.errRate.Set(v)
	if err := m.prom.Scraped(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
}

// newAnalysisEnv is a server whose provider prom is a real Prometheus
// (error rate 0.01), with v1 deployed so that the next deployment runs its
// strategy.
func newAnalysisEnv(t testing.TB) (*env, *metrics) {
	m := newMetrics(t, 0.01)
	e := newEnv(t)
	e.addPrometheus(m.prom.URL)
	e.deployV1()
	return e, m
}

func analysisSteps(interval, runs int, rollForward string) string {
	return fmt.Sprintf(`        - setWeight: {weight: 50}
        - analysis:
            interval: %d
            units: seconds
            numberOfJudgmentRuns: %d
            rollBackMode: automatic
            rollForwardMode: %s
            lookbackMethod: SLIDING
            queries: [error-rate]
`, interval, runs, rollForward)
}

const analysisQueries = `analysis:
  defaultMetricProviderName: prom
  queries:
    - name: error-rate
      queryTemplate: 'max(max_over_time(app_error_rate{app="{{armory.applicationName}}", version="v2"}[{{armory.promQlStepInterval}}]))'
      upperLimit: 0.1
`

func TestCanaryAnalysisPassesAndPromotes(t *testing.T) {
	e, _ := newAnalysisEnv(t)
	id := e.deploy("example/web:v2", analysisSteps(1, 3, "automatic"), analysisQueries)
	p := e.waitEnd(id)
	if p.Status != pipeline.StatusSucceeded {
		t.Fatalf("v2 ended %s\n%s", p.Status, clienttest.Dump(p))
	}
	if got := e.images(); got["example/web:v2"] != 4 || len(got) != 1 {
		t.Errorf("pods after promotion: %v", got)
	}
	js := e.judgments(id)
	if len(js) != 4 || !js[3].Mean || *js[3].Value != 0.01 || js[3].Verdict != analysis.Pass {
		t.Fatalf("%d judgments recorded, want 3 runs and their mean: %+v", len(js), js)
	}
	for i, j := range js[:3] {
		if j.Run != i+1 || j.Verdict != analysis.Pass || j.Value == nil || *j.Value != 0.01 || *j.UpperLimit != 0.1 ||
			j.Sent != `max(max_over_time(app_error_rate{app="web", version="v2"}[1s]))` || j.Step != "canary/1" || j.Target != "prod" {
			t.Errorf("judgment %d: %+v", i, j)
		}
	}
	if s := step(p, "canary/1"); s.Status != pipeline.StatusSucceeded || !strings.Contains(s.Message, "3 judgment runs") {
		t.Errorf("analysis step: %+v", s)
	}
}

func TestCanaryErrorRateClimbsAndRollsBack(t *testing.T) {
	e, m := newAnalysisEnv(t)
	// abortOnFailedJudgment: the first run above the limit ends the
	// analysis (without it, the mean of the 20 runs would decide).
	id := e.deploy("example/web:v2", analysisSteps(1, 20, "automatic")+"            abortOnFailedJudgment: true\n", analysisQueries)
	e.waitFor(id, "the first judgment passed", func(*api.PipelineView) bool { return len(e.judgments(id)) > 0 })
	m.set(t, 0.5) // the new version starts failing mid-analysis
	p := e.waitEnd(id)
	tgt := p.Targets[0]
	if p.Status != pipeline.StatusFailed || tgt.Status != pipeline.StatusRolledBack || !strings.Contains(tgt.Message, "above its upper limit 0.1") {
		t.Fatalf("pipeline %s, target %s %q\n%s", p.Status, tgt.Status, tgt.Message, clienttest.Dump(p))
	}
	if got := e.images(); got["example/web:v1"] != 4 || len(got) != 1 {
		t.Errorf("pods after rollback: %v", got)
	}
	js := e.judgments(id)
	last := js[len(js)-1]
	if js[0].Verdict != analysis.Pass || last.Verdict != analysis.Fail || *last.Value != 0.5 || len(js) >= 20 {
		t.Errorf("judgments: first %+v, last %+v, %d in all", js[0], last, len(js))
	}
}

func TestCanaryManualRollForwardWaitsForApproval(t *testing.T) {
	e, _ := newAnalysisEnv(t)
	id := e.deploy("example/web:v2", analysisSteps(1, 2, "manual"), analysisQueries)
	p := e.waitFor(id, "the analysis awaits approval", func(p *api.PipelineView) bool { return p.Status == pipeline.StatusAwaitingApproval })
	if s := step(p, "canary/1"); !strings.Contains(s.Message, "analysis passed; approve") {
		t.Errorf("step message %q", s.Message)
	}
	if _, err := e.admin.Act(context.Background(), id, "approve", api.ActionRequest{}); err != nil {
		t.Fatal(err)
	}
	if p := e.waitEnd(id); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("after approval: %s\n%s", p.Status, clienttest.Dump(p))
	}
}

// noDataQueries name a metric Prometheus never saw: every judgment is
// inconclusive.
const noDataQueries = `analysis:
  defaultMetricProviderName: prom
  queries:
    - name: error-rate
      queryTemplate: 'max(app_error_rate_never_exported{app="{{armory.applicationName}}"})'
      upperLimit: 0.1
`

func TestCanaryNoDataWaitsForAPerson(t *testing.T) {
	// rollBackMode automatic does not apply: no data is not a failure.
	e, _ := newAnalysisEnv(t)
	id := e.deploy("example/web:v2", analysisSteps(1, 2, "automatic"), noDataQueries)
	p := e.waitFor(id, "the inconclusive analysis awaits a person", func(p *api.PipelineView) bool {
		return p.Status == pipeline.StatusAwaitingApproval
	})
	if s := step(p, "canary/1"); !strings.Contains(s.Message, "analysis inconclusive; approve to go on, or roll back: run 1 of 2: query error-rate returned no data") {
		t.Errorf("step message %q", s.Message)
	}
	js := e.judgments(id)
	if len(js) != 2 || js[0].Verdict != analysis.Inconclusive || js[0].Value != nil || js[1].Verdict != analysis.Inconclusive {
		t.Errorf("judgments %+v, want two inconclusive", js)
	}
	if _, err := e.admin.Act(context.Background(), id, client.ActionApprove, api.ActionRequest{}); err != nil {
		t.Fatal(err)
	}
	if p := e.waitEnd(id); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("after approval: %s\n%s", p.Status, clienttest.Dump(p))
	}
}

func TestCanaryNoDataRollsBackWhenTheStepSaysSo(t *testing.T) {
	e, _ := newAnalysisEnv(t)
	steps := analysisSteps(1, 2, "automatic") + "            inconclusive: rollback\n"
	p := e.waitEnd(e.deploy("example/web:v2", steps, noDataQueries))
	tgt := p.Targets[0]
	if tgt.Status != pipeline.StatusRolledBack || !strings.Contains(tgt.Message, "analysis inconclusive: run 1 of 2: query error-rate returned no data") {
		t.Fatalf("target %s %q\n%s", tgt.Status, tgt.Message, clienttest.Dump(p))
	}
	if got := e.images(); got["example/web:v1"] != 4 || len(got) != 1 {
		t.Errorf("pods after rollback: %v", got)
	}
}

// external plays the system a webhook calls: it records each call and its
// body (which carries the callback URI).
type external struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls []map[string]string
	got   chan map[string]string
	// answer, when set, holds each answer until it is closed: the
	// pipeline waits on the call meanwhile, so a test sees the cluster as
	// it was when the call was made.
	answer chan struct{}
}

func newExternal(t testing.TB) *external {
	x := &external{got: make(chan map[string]string, 10)}
	x.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		json.NewDecoder(r.Body).Decode(&body)
		body["authorization"] = r.Header.Get("Authorization")
		x.mu.Lock()
		x.calls = append(x.calls, body)
		answer := x.answer
		x.mu.Unlock()
		if answer != nil {
			x.got <- body
			select {
			case <-answer:
			case <-r.Context().Done():
			}
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		x.got <- body
	}))
	t.Cleanup(x.srv.Close)
	return x
}

func (x *external) call(t testing.TB) map[string]string {
	t.Helper()
	select {
	case b := <-x.got:
		return b
	case <-time.After(time.Minute):
		t.Fatal("the webhook was never called")
		return nil
	}
}

func webhookFile(url, extra string) string {
	return fmt.Sprintf(`context:
  team: payments
webhooks:
  - name: checks
    method: POST
    uriTemplate: %s/run
    headers:
      - key: Content-Type
        value: application/json
    bodyTemplate:
      inline: '{"app": "{{armory.applicationName}}", "env": "{{armory.environmentName}}", "team": "{{context.team}}", "suite": "{{context.suite}}", "callbackUri": "{{armory.callbackUri}}"}'
    retryCount: 2
%s`, url, extra)
}

const webhookSteps = `        - setWeight: {weight: 50}
        - runWebhook:
            name: checks
            context: {suite: smoke}
`

func TestWebhookCallbackSucceeds(t *testing.T) {
	e := newEnv(t)
	x := newExternal(t)
	e.deployV1()
	id := e.deploy("example/web:v2", webhookSteps, webhookFile(x.srv.URL, ""))
	body := x.call(t)
	if body["app"] != "web" || body["env"] != "prod" || body["team"] != "payments" || body["suite"] != "smoke" {
		t.Errorf("webhook body %v", body)
	}
	cb := body["callbackUri"]
	if want := e.url + gate.CallbackPath(id, "prod", "canary/1"); cb != want {
		t.Errorf("callbackUri %q, want %q", cb, want)
	}
	e.waitFor(id, "the call was answered", func(p *api.PipelineView) bool { return step(p, "canary/1").Called })
	deployer := e.token(pipeline.RoleDeployer)
	// A forged step, and a viewer, are refused.
	if status, body := e.post(strings.Replace(cb, "canary/1", "canary/0", 1)+"/callback", deployer, map[string]any{"success": true}); status != http.StatusNotFound {
		t.Errorf("callback for a step that is no webhook: %d %s", status, body)
	}
	if status, _ := e.post(cb+"/callback", e.token(pipeline.RoleViewer), map[string]any{"success": true}); status != http.StatusForbidden {
		t.Errorf("callback by a viewer: %d", status)
	}
	if status, body := e.post(cb+"/callback", deployer, map[string]any{"success": true, "mdMessage": "all **green**"}); status != http.StatusOK {
		t.Fatalf("callback: %d %s", status, body)
	}
	p := e.waitEnd(id)
	if p.Status != pipeline.StatusSucceeded || step(p, "canary/1").Message != "all **green**" {
		t.Fatalf("after the callback: %s\n%s", p.Status, clienttest.Dump(p))
	}
	if status, body := e.post(cb+"/callback", deployer, map[string]any{"success": true}); status != http.StatusConflict || !strings.Contains(body, "has ended") {
		t.Errorf("late callback: %d %s", status, body)
	}
	ev := e.events(id, progress.EventWebhook)
	if len(ev) != 1 || !strings.Contains(string(ev[0].Data), x.srv.URL+"/run") {
		t.Errorf("webhook events %v", ev)
	}
}

func TestWebhookCallbackFails(t *testing.T) {
	e := newEnv(t)
	x := newExternal(t)
	e.deployV1()
	id := e.deploy("example/web:v2", webhookSteps, webhookFile(x.srv.URL, ""))
	cb := x.call(t)["callbackUri"]
	if status, body := e.post(cb+"/callback", e.token(pipeline.RoleDeployer), map[string]any{"success": false, "mdMessage": "smoke tests failed"}); status != http.StatusOK {
		t.Fatalf("callback: %d %s", status, body)
	}
	p := e.waitEnd(id)
	if tgt := p.Targets[0]; tgt.Status != pipeline.StatusRolledBack || !strings.Contains(tgt.Message, "smoke tests failed") {
		t.Fatalf("target %s %q\n%s", tgt.Status, tgt.Message, clienttest.Dump(p))
	}
	if got := e.images(); got["example/web:v1"] != 4 || len(got) != 1 {
		t.Errorf("pods after rollback: %v", got)
	}
}

func TestWebhookWithoutCallbackTimesOut(t *testing.T) {
	e := newEnv(t)
	x := newExternal(t)
	e.deployV1()
	id := e.deploy("example/web:v2", webhookSteps, webhookFile(x.srv.URL, "    callbackTimeout: {duration: 3, unit: seconds}\n"))
	cb := x.call(t)["callbackUri"]
	p := e.waitEnd(id)
	if tgt := p.Targets[0]; tgt.Status != pipeline.StatusRolledBack || !strings.Contains(tgt.Message, "no webhook callback within 3s") {
		t.Fatalf("target %s %q\n%s", tgt.Status, tgt.Message, clienttest.Dump(p))
	}
	if status, body := e.post(cb+"/callback", e.token(pipeline.RoleDeployer), map[string]any{"success": true}); status != http.StatusConflict {
		t.Errorf("callback after the timeout: %d %s", status, body)
	}
}

func TestWebhookFireAndForget(t *testing.T) {
	e := newEnv(t)
	x := newExternal(t)
	e.deployV1()
	id := e.deploy("example/web:v2", webhookSteps, webhookFile(x.srv.URL, "    disableCallback: true\n"))
	x.call(t)
	p := e.waitEnd(id)
	if p.Status != pipeline.StatusSucceeded || !strings.Contains(step(p, "canary/1").Message, "answered 202") {
		t.Fatalf("%s\n%s", p.Status, clienttest.Dump(p))
	}
}

func TestWebhookSecretNotSet(t *testing.T) {
	e := newEnv(t)
	x := newExternal(t)
	e.deployV1()
	extra := strings.Replace(webhookFile(x.srv.URL, ""), "uriTemplate: "+x.srv.URL+"/run", "uriTemplate: "+x.srv.URL+"/run?key={{secrets.ci-key}}", 1)
	p := e.waitEnd(e.deploy("example/web:v2", webhookSteps, extra))
	if tgt := p.Targets[0]; tgt.Status != pipeline.StatusRolledBack || !strings.Contains(tgt.Message, "secret ci-key is not set") {
		t.Fatalf("target %s %q\n%s", tgt.Status, tgt.Message, clienttest.Dump(p))
	}
}
