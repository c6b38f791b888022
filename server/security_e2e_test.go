package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sortie-cd/sortie/analysis"
	"github.com/sortie-cd/sortie/analysis/promtest"
	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/cli"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/progress"
	"github.com/sortie-cd/sortie/server"
)

// TestApprovalRoles: on a gate that requires release-manager, a viewer is
// refused by the API (403, no grant), a deployer by the engine (403, names
// the role), an admin approves; then through the CLI the same way. The
// audit log says who did what, with ids and no value.
func TestApprovalRoles(t *testing.T) {
	s, a, _, id := newIsolationWorld(t)
	approve := func(role string) (int, string) {
		code, b := s.do("POST", api.Prefix+"/pipelines/"+id+"/approve", a.tokens[role], api.ActionRequest{Target: "staging"})
		return code, string(b)
	}
	if code, b := approve(pipeline.RoleViewer); code != 403 {
		t.Errorf("viewer approving: %d %s, want 403", code, b)
	}
	if code, b := approve(pipeline.RoleAgent); code != 403 {
		t.Errorf("agent approving: %d %s, want 403", code, b)
	}
	// A custom role approves only when defined with the approve grant.
	root := s.token(a.rootID, a.rootSecret, "")
	cfg := isolationConfig("main")
	cfg.Tenants[0].Roles = append(cfg.Tenants[0].Roles, api.RoleConfig{Name: "auditor", Grants: []string{"read"}})
	s.must(200, "PUT", api.Prefix+"/config", root, cfg, nil)
	var nc api.NewCredential
	s.must(201, "POST", api.Prefix+"/credentials", root, api.CreateCredentialRequest{Name: "auditor", Roles: []string{"auditor"}}, &nc)
	a.tokens["auditor"] = s.token(nc.ClientID, nc.ClientSecret, "")
	if code, b := approve("auditor"); code != 403 {
		t.Errorf("a read-only custom role approving: %d %s, want 403", code, b)
	}
	if code, b := approve(pipeline.RoleDeployer); code != 403 || !strings.Contains(b, "release-manager") {
		t.Errorf("deployer approving a gate that requires release-manager: %d %s, want 403 naming the role", code, b)
	}
	code, b := approve(pipeline.RoleTenantAdmin)
	if code != 200 {
		t.Fatalf("tenant admin approving: %d %s, want 200", code, b)
	}
	t.Logf("approved: %s", b)
	s.waitStatus(a.tokens[pipeline.RoleViewer], id, pipeline.StatusSucceeded)

	// The same through the CLI, on a second canary.
	id2 := s.startApproval(a.tokens[pipeline.RoleDeployer], "second-app", kubetest.Namespace(t))
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CI", "true")
	t.Setenv("SORTIE_SERVER", s.url)
	for _, k := range []string{"SORTIE_CONFIG", "SORTIE_CLIENT_ID", "SORTIE_CLIENT_SECRET", "ARMORY_CLIENT_ID", "ARMORY_CLIENT_SECRET"} {
		t.Setenv(k, "")
	}
	sortie := func(role string, args ...string) (int, string) {
		t.Setenv("SORTIE_TOKEN", a.tokens[role])
		var out, errOut bytes.Buffer
		code := cli.Main(t.Context(), args, cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		return code, out.String() + errOut.String()
	}
	if code, out := sortie(pipeline.RoleViewer, "deploy", "approve", id2, "--target", "staging"); code == 0 || !strings.Contains(out, "roles do not allow") {
		t.Errorf("sortie deploy approve as a viewer: exit %d\n%s", code, out)
	}
	if code, out := sortie(pipeline.RoleDeployer, "deploy", "approve", id2, "--target", "staging"); code == 0 || !strings.Contains(out, "release-manager") {
		t.Errorf("sortie deploy approve as a deployer: exit %d\n%s", code, out)
	}
	if code, out := sortie(pipeline.RoleOrganizationAdmin, "deploy", "approve", id2, "--target", "staging"); code != 0 || !strings.Contains(out, "Approved") {
		t.Errorf("sortie deploy approve as an organization admin: exit %d\n%s", code, out)
	}
	s.waitStatus(a.tokens[pipeline.RoleViewer], id2, pipeline.StatusSucceeded)

	var audit api.AuditList
	s.must(200, "GET", api.Prefix+"/audit?action=pipeline.approve", a.tokens[pipeline.RoleTenantAdmin], nil, &audit)
	if len(audit.Entries) != 2 || audit.Entries[1].ClientID != a.clients[pipeline.RoleTenantAdmin] ||
		audit.Entries[0].ClientID != a.clients[pipeline.RoleOrganizationAdmin] || audit.Entries[1].Objects[0] != id || audit.Entries[1].Remote != "127.0.0.1" {
		t.Errorf("approvals in the audit log: %+v", audit.Entries)
	}
	code, out := sortie(pipeline.RoleTenantAdmin, "audit", "-o", "json")
	if code != 0 {
		t.Fatalf("sortie audit: exit %d\n%s", code, out)
	}
	if err := json.Unmarshal([]byte(out), &audit); err != nil {
		t.Fatalf("sortie audit -o json: %v\n%s", err, out)
	}
	seen := map[string]bool{}
	for _, e := range audit.Entries {
		seen[e.Action] = true
	}
	for _, action := range []string{"login", "credential.create", "secret.put", "provider.create", "pipeline.start", "pipeline.approve"} {
		if !seen[action] {
			t.Errorf("sortie audit shows no %s:\n%s", action, out)
		}
	}
	if strings.Contains(out, "main-secret-value-do-not-show") {
		t.Errorf("the audit log holds a secret value:\n%s", out)
	}
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// leakyApp deploys application %[1]s into namespace %[2]s with a canary
// whose middle steps are %[3]s. Every webhook puts the secret hook-token in
// its URL (path and query), a header and the body; every query names a
// metric provider whose auth comes from secrets.
const leakyApp = `version: v1
kind: kubernetes
application: %[1]s
targets:
  staging:
    account: local
    namespace: %[2]s
    strategy: canary
strategies:
  canary:
    canary:
      steps:
        - setWeight: 50
%[3]s        - setWeight: 100
webhooks:
%[4]s
analysis:
  queries:
    - {name: basic, metricProviderName: prom-basic, queryTemplate: 'max(app_error_rate{app="leaky"})', upperLimit: 0.1}
    - {name: bearer, metricProviderName: prom-bearer, queryTemplate: 'max(app_error_rate{app="leaky"})', upperLimit: 0.1}
    - {name: basic-wrong, metricProviderName: prom-basic-wrong, queryTemplate: 'max(app_error_rate{app="leaky"})', upperLimit: 0.1}
    - {name: bearer-wrong, metricProviderName: prom-bearer-wrong, queryTemplate: 'max(app_error_rate{app="leaky"})', upperLimit: 0.1}
    - {name: echo-basic, metricProviderName: prom-echo-basic, queryTemplate: 'max(app_error_rate{app="leaky"})', upperLimit: 0.1}
    - {name: echo-bearer, metricProviderName: prom-echo-bearer, queryTemplate: 'max(app_error_rate{app="leaky"})', upperLimit: 0.1}
manifests:
  - path: app.yaml
`

// leakyWebhook is webhook name calling base with the secret everywhere.
func leakyWebhook(name, base string) string {
	return fmt.Sprintf(`  - name: %s
    method: POST
    uriTemplate: %s/{{secrets.hook-token}}/run?key={{secrets.hook-token}}
    headers:
      - key: Authorization
        value: Bearer {{secrets.hook-token}}
    bodyTemplate:
      inline: '{"token": "{{secrets.hook-token}}"}'
    retryCount: 1
    disableCallback: true
`, name, base)
}

// leakyAnalysis is an analysis step of runs one-second runs that rolls
// back unless every judgment passes.
func leakyAnalysis(runs int, queries ...string) string {
	return fmt.Sprintf(`        - analysis:
            interval: 1
            units: seconds
            numberOfJudgmentRuns: %d
            rollBackMode: automatic
            rollForwardMode: automatic
            inconclusive: rollback
            queries: [%s]
`, runs, strings.Join(queries, ", "))
}

// echoServer answers every request with status and the request as
// received (headers, Authorization included, and body): what a debugging
// proxy or a careless endpoint does, and the worst case for an error
// message that quotes the answer. It keeps what it received.
type echoServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newEchoServer(t *testing.T, status int) *echoServer {
	e := &echoServer{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dump, _ := httputil.DumpRequest(r, true)
		e.mu.Lock()
		e.seen = append(e.seen, string(dump))
		e.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		w.Write(dump)
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *echoServer) received() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.seen, "\n")
}

// TestSecretNeverLeaks runs full deployments that use secrets in webhooks
// and in metric-provider auth, against a real Prometheus that requires
// basic auth (its --web.config.file) and, for bearer tokens (which
// Prometheus 2.42 cannot check), a reverse proxy in front of it that
// requires the token:
//
//   - leaky-pass: a canary whose analysis queries through both providers
//     (the judgments carry the metric's value: the secrets were resolved
//     and accepted) and whose webhook gets the secret in its URL, a header
//     and the body; it succeeds.
//   - leaky-auth: the same providers with wrong secrets (401 from
//     Prometheus and from the proxy), and providers whose endpoint answers
//     401 quoting the request, Authorization included: inconclusive, rolled
//     back.
//   - leaky-hook: a webhook whose endpoint answers 401 quoting the request.
//   - leaky-down: a webhook nothing listens for.
//
// Then no secret value (nor the base64 of a basic-auth pair) is in the
// server's debug log, the live event stream, any pipeline's events, any
// API answer the test got (views, lists, sources, providers, audit, error
// answers) or the output of `sortie deploy status`, `deploy logs`,
// `providers list` and `audit` with -o json.
func TestSecretNeverLeaks(t *testing.T) {
	t.Parallel()
	const (
		hookToken     = "s3cr3t-hook-token-9f8e7d"
		promUser      = "prom-user-c41f2a"
		promPassword  = "prom-password-6b0d93"
		promToken     = "prom-bearer-token-e81d57"
		wrongPassword = "wrong-password-27ac40"
		wrongToken    = "wrong-bearer-token-3d9b16"
	)
	values := map[string]string{
		"hook-token": hookToken, "prom-user": promUser, "prom-password": promPassword,
		"prom-token": promToken, "wrong-password": wrongPassword, "wrong-token": wrongToken,
	}
	// What must never be seen: each value, and the forms it travels in.
	forbidden := map[string]string{}
	for name, v := range values {
		forbidden[v] = name
		forbidden[base64.StdEncoding.EncodeToString([]byte(v))] = "base64 of " + name
	}
	for _, pw := range []string{promPassword, wrongPassword} {
		forbidden[base64.StdEncoding.EncodeToString([]byte(promUser+":"+pw))] = "basic-auth pair of " + forbidden[pw]
	}
	leaks := func(s string) []string {
		var found []string
		for v, what := range forbidden {
			if strings.Contains(s, v) {
				found = append(found, what)
			}
		}
		sort.Strings(found)
		return found
	}

	// Prometheus demands basic auth; the proxy demands the bearer token and
	// passes the request on with basic auth.
	prom := promtest.StartWith(t, promtest.Options{BasicAuth: map[string]string{promUser: promPassword}})
	errRate := prometheus.NewGauge(prometheus.GaugeOpts{Name: "app_error_rate", Help: "Errors per request.", ConstLabels: prometheus.Labels{"app": "leaky"}})
	prom.Registry.MustRegister(errRate)
	errRate.Set(0.01)
	if err := prom.Scraped(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, password string
		want           int
	}{{"", "", 401}, {promUser, wrongPassword, 401}, {promUser, promPassword, 200}} {
		req, _ := http.NewRequest("GET", prom.URL+"/api/v1/query?query=1", nil)
		if c.user != "" {
			req.SetBasicAuth(c.user, c.password)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Fatalf("Prometheus answered %d to a query with user %q, want %d: does it require auth?", resp.StatusCode, c.user, c.want)
		}
	}
	promURL, _ := url.Parse(prom.URL)
	toProm := httputil.NewSingleHostReverseProxy(promURL)
	var bearerPassed atomic.Int64
	bearerProxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+promToken {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		bearerPassed.Add(1)
		r.SetBasicAuth(promUser, promPassword)
		toProm.ServeHTTP(w, r)
	}))
	t.Cleanup(bearerProxy.Close)
	receiver := newEchoServer(t, http.StatusOK)          // leaky-pass's webhook
	refuser := newEchoServer(t, http.StatusUnauthorized) // leaky-hook's webhook, leaky-auth's echo providers

	var log syncBuffer
	srv := clienttest.Start(t, server.Config{
		DataDir: filepath.Join(t.TempDir(), "data"), Kubeconfig: kubetest.Cluster(t).Kubeconfig, Account: "local",
		Log: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	s := &liveServer{t: t, url: srv.URL}
	admin := s.token(srv.Credentials.ClientID, srv.Credentials.ClientSecret, "")
	var answers []string // every API answer and CLI output, to scan
	record := func(what string, code int, b []byte) {
		answers = append(answers, fmt.Sprintf("%s: %d %s", what, code, b))
	}

	// The live stream of the tenant's events, for the whole run.
	var live syncBuffer
	streamCtx, stopStream := context.WithCancel(t.Context())
	streamDone := make(chan struct{})
	{
		req, _ := http.NewRequestWithContext(streamCtx, "GET", s.url+api.Prefix+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /events as a stream: %v %v", resp, err)
		}
		go func() {
			defer close(streamDone)
			defer resp.Body.Close()
			io.Copy(&live, resp.Body)
		}()
	}

	sortie := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(server.SortieBinary(t), args...)
		cmd.Env = append(os.Environ(), "SORTIE_SERVER="+s.url, "SORTIE_TOKEN="+admin, "CI=true",
			"HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir(), "SORTIE_CONFIG=",
			"SORTIE_CLIENT_ID=", "SORTIE_CLIENT_SECRET=", "ARMORY_CLIENT_ID=", "ARMORY_CLIENT_SECRET=")
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		answers = append(answers, fmt.Sprintf("sortie %s: %v\n%s", strings.Join(args, " "), err, out))
		return string(out)
	}

	// Secrets: one through the CLI (from standard input), the rest through
	// the API.
	for name, v := range values {
		if name == "prom-token" {
			continue
		}
		code, b := s.do("PUT", api.Prefix+"/secrets/"+name, admin, api.PutSecretRequest{Value: v})
		record("PUT /secrets/"+name, code, b)
		if code != 200 {
			t.Fatalf("PUT /secrets/%s: %d %s", name, code, b)
		}
	}
	{
		cmd := exec.Command(server.SortieBinary(t), "secrets", "set", "prom-token")
		cmd.Env = append(os.Environ(), "SORTIE_SERVER="+s.url, "SORTIE_TOKEN="+admin, "CI=true", "HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
		cmd.Stdin = strings.NewReader(promToken + "\n")
		out, err := cmd.CombinedOutput()
		answers = append(answers, fmt.Sprintf("sortie secrets set: %v\n%s", err, out))
		if err != nil {
			t.Fatalf("sortie secrets set prom-token: %v\n%s", err, out)
		}
	}

	basic := func(password string) *analysis.Auth {
		return &analysis.Auth{Type: analysis.AuthBasic, UsernameSecret: "prom-user", PasswordSecret: password}
	}
	bearer := func(token string) *analysis.Auth {
		return &analysis.Auth{Type: analysis.AuthBearer, TokenSecret: token}
	}
	for _, p := range []analysis.Config{
		{Name: "prom-basic", URL: prom.URL, Auth: basic("prom-password")},
		{Name: "prom-bearer", URL: bearerProxy.URL, Auth: bearer("prom-token")},
		{Name: "prom-basic-wrong", URL: prom.URL, Auth: basic("wrong-password")},
		{Name: "prom-bearer-wrong", URL: bearerProxy.URL, Auth: bearer("wrong-token")},
		{Name: "prom-echo-basic", URL: refuser.URL, Auth: basic("prom-password")},
		{Name: "prom-echo-bearer", URL: refuser.URL, Auth: bearer("prom-token")},
	} {
		p.Type = analysis.TypePrometheus
		code, b := s.do("POST", api.Prefix+"/providers", admin, p)
		record("POST /providers", code, b)
		if code != 201 {
			t.Fatalf("POST /providers %s: %d %s", p.Name, code, b)
		}
	}

	hooks := leakyWebhook("notify", receiver.URL) + leakyWebhook("refused", refuser.URL) + leakyWebhook("down", "http://127.0.0.1:1")
	apps := []struct{ name, steps string }{
		{"leaky-pass", leakyAnalysis(2, "basic", "bearer") + "        - runWebhook: {name: notify}\n"},
		{"leaky-auth", leakyAnalysis(1, "basic-wrong", "bearer-wrong", "echo-basic", "echo-bearer")},
		{"leaky-hook", "        - runWebhook: {name: refused}\n"},
		{"leaky-down", "        - runWebhook: {name: down}\n"},
	}
	ns := kubetest.Namespace(t)
	start := func(app, steps, version string) string {
		var res api.StartResult
		code, b := s.do("POST", api.Prefix+"/pipelines", admin, api.StartRequest{
			FileName: "deploy.yml", File: fmt.Sprintf(leakyApp, app, ns, steps, hooks),
			Manifests: map[string]string{"app.yaml": kubetest.SampleApp(app, 2, "web:{{context.version}}")},
			Context:   map[string]string{"version": version},
		})
		record("POST /pipelines", code, b)
		if code != 202 || json.Unmarshal(b, &res) != nil {
			t.Fatalf("start %s %s: %d %s", app, version, code, b)
		}
		return res.PipelineID
	}
	end := func(id string) api.PipelineView {
		return *clienttest.WaitEnd(t, s.client(admin), id)
	}
	var ids []string
	var first []string
	for _, a := range apps { // first deployments go straight to 100 %
		first = append(first, start(a.name, a.steps, "v1"))
	}
	for _, id := range first {
		if v := end(id); v.Status != pipeline.StatusSucceeded {
			t.Fatalf("first deployment of %s: %s %s", v.Application, v.Status, v.Message)
		}
	}
	ids = append(ids, first...)
	views := map[string]api.PipelineView{}
	var second []string
	for _, a := range apps {
		second = append(second, start(a.name, a.steps, "v2"))
	}
	for _, id := range second {
		v := end(id)
		views[v.Application] = v
	}
	ids = append(ids, second...)
	judgments := func(id string) []progress.JudgmentEvent {
		var evs api.EventList
		s.must(200, "GET", api.Prefix+"/pipelines/"+id+"/events", admin, nil, &evs)
		var out []progress.JudgmentEvent
		for _, ev := range evs.Events {
			if ev.Type == progress.EventJudgment {
				var j progress.JudgmentEvent
				if err := json.Unmarshal(ev.Data, &j); err != nil {
					t.Fatal(err)
				}
				out = append(out, j)
			}
		}
		return out
	}

	// The secrets were resolved and used: the passing analysis got the
	// metric through both authenticated providers, the webhook got the
	// token everywhere, the refusing endpoint saw the credentials.
	if v := views["leaky-pass"]; v.Status != pipeline.StatusSucceeded {
		t.Errorf("leaky-pass: %s %s %+v", v.Status, v.Message, v.Targets)
	}
	byProvider := map[string]int{}
	for _, j := range judgments(second[0]) {
		if j.Verdict != analysis.Pass || j.Value == nil || *j.Value != 0.01 {
			t.Errorf("leaky-pass judgment: %+v", j)
		}
		byProvider[j.Provider]++
	}
	if byProvider["prom-basic"] == 0 || byProvider["prom-bearer"] == 0 {
		t.Errorf("leaky-pass judgments by provider: %v, want some through prom-basic and prom-bearer", byProvider)
	}
	if bearerPassed.Load() == 0 {
		t.Error("no query passed the bearer proxy")
	}
	got := receiver.received()
	for _, want := range []string{"POST /" + hookToken + "/run?key=" + hookToken, "Authorization: Bearer " + hookToken, `{"token": "` + hookToken + `"}`} {
		if !strings.Contains(got, want) {
			t.Errorf("the webhook's endpoint did not get %q; it got:\n%s", want, got)
		}
	}
	got = refuser.received()
	for _, want := range []string{"Bearer " + promToken, "Basic " + base64.StdEncoding.EncodeToString([]byte(promUser+":"+promPassword)), "Bearer " + hookToken} {
		if !strings.Contains(got, want) {
			t.Errorf("the refusing endpoint did not get %q; it got:\n%s", want, got)
		}
	}
	// The error paths were taken.
	if v := views["leaky-auth"]; v.Status != pipeline.StatusFailed || v.Targets[0].Status != pipeline.StatusRolledBack {
		t.Errorf("leaky-auth: %s, target %s %q", v.Status, v.Targets[0].Status, v.Targets[0].Message)
	}
	js := judgments(second[1])
	if len(js) != 4 {
		t.Errorf("leaky-auth: %d judgments, want 4: %+v", len(js), js)
	}
	for _, j := range js {
		if j.Verdict != analysis.Inconclusive || !strings.Contains(j.Message, "401") {
			t.Errorf("leaky-auth judgment through %s: %s %q, want inconclusive with the 401", j.Provider, j.Verdict, j.Message)
		}
	}
	for _, app := range []string{"leaky-hook", "leaky-down"} {
		if v := views[app]; v.Status != pipeline.StatusFailed || v.Targets[0].Status != pipeline.StatusRolledBack {
			t.Errorf("%s: %s, target %s %q", app, v.Status, v.Targets[0].Status, v.Targets[0].Message)
		}
	}
	if m := views["leaky-hook"].Targets[0].Message; !strings.Contains(m, "401") {
		t.Errorf("leaky-hook's target message does not say 401: %q", m)
	}

	// Everything the API shows.
	for _, id := range ids {
		for _, path := range []string{"/pipelines/" + id, "/pipelines/" + id + "/events", "/pipelines/" + id + "/source"} {
			code, b := s.do("GET", api.Prefix+path, admin, nil)
			record("GET "+path, code, b)
		}
		code, b := s.do("POST", api.Prefix+"/pipelines/"+id+"/approve", admin, nil) // an error answer
		record("POST approve", code, b)
	}
	for _, path := range []string{"/pipelines", "/pipelines?application=leaky-auth", "/secrets", "/audit", "/providers",
		"/credentials", "/agents", "/users", "/account", "/tenants", "/config"} {
		code, b := s.do("GET", api.Prefix+path, admin, nil)
		record("GET "+path, code, b)
	}
	// Error answers to requests that carry a value.
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/secrets/bad%20name", `{"value": "` + hookToken + `"}`},
		{"PUT", "/secrets/hook-token", `{"value": "` + hookToken + `", "extra": "` + promToken + `"}`},
		{"PUT", "/secrets/hook-token", `{"value": "` + hookToken},
		{"PUT", "/secrets/hook-token", `{"value": ` + hookToken + `}`},
		{"PUT", "/secrets/hook-token", `{"value": ["` + hookToken + `"]}`},
		{"PUT", "/secrets/hook-token", `{"value": "` + hookToken + `", "allowedHosts": ["https://hooks.example.com/run"]}`},
		{"POST", "/providers", `{"name": "prom-basic", "type": "prometheus", "url": "` + prom.URL + `"}`},
	} {
		req, _ := http.NewRequest(c.method, s.url+api.Prefix+c.path, strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("%s %s %s: %d, want an error", c.method, c.path, c.body, resp.StatusCode)
		}
		answers = append(answers, fmt.Sprintf("%s %s: %d %s", c.method, c.path, resp.StatusCode, b))
	}
	// The CLI's views.
	for _, id := range second {
		sortie("deploy", "status", id, "-o", "json")
		sortie("deploy", "logs", id, "-o", "json")
		sortie("deploy", "logs", id)
	}
	sortie("providers", "list", "-o", "json")
	sortie("secrets", "list", "-o", "json")
	sortie("audit", "-o", "json")

	stopStream()
	<-streamDone

	all := strings.Join(answers, "\n")
	for _, want := range []string{"hook-token", "prom-password", "prom-token", "wrong-password", "401", progress.EventJudgment, progress.EventWebhook} {
		if !strings.Contains(all, want) {
			t.Errorf("the answers never mention %q: did the deployments run as meant?", want)
		}
	}
	if !strings.Contains(live.String(), progress.EventJudgment) || !strings.Contains(live.String(), progress.EventWebhook) {
		t.Errorf("the live event stream showed no judgment or webhook:\n%s", live.String())
	}
	for what, text := range map[string]string{"An API answer or CLI output": all, "The live event stream": live.String(), "The server's log": log.String()} {
		if found := leaks(text); len(found) > 0 {
			t.Errorf("%s holds %s:\n%s", what, strings.Join(found, ", "), excerpts(text, forbidden))
		}
	}
}

// excerpts are the lines of text holding a forbidden string, for the
// failure message.
func excerpts(text string, forbidden map[string]string) string {
	var out []string
	for line := range strings.SplitSeq(text, "\n") {
		for v := range forbidden {
			if strings.Contains(line, v) {
				if len(line) > 600 {
					i := max(strings.Index(line, v)-300, 0)
					line = "…" + line[i:min(i+600, len(line))] + "…"
				}
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
