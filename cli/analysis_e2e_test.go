package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sortie-cd/sortie/analysis/promtest"
	"github.com/sortie-cd/sortie/kubetest"
)

// TestJudgmentsAndWebhookCallsShown deploys, through the CLI and a real
// server, a canary that calls a webhook (its token a secret) and then
// analyses the new version against a real Prometheus: one query passes,
// one has no data, so the analysis is inconclusive and waits for a person.
// status, logs and watch show every judgment and the masked call.
func TestJudgmentsAndWebhookCallsShown(t *testing.T) {
	prom := promtest.Start(t)
	rate := prometheus.NewGauge(prometheus.GaugeOpts{Name: "app_error_rate", Help: "Errors per request.",
		ConstLabels: prometheus.Labels{"app": "judged"}})
	prom.Registry.MustRegister(rate)
	rate.Set(0.01)
	if err := prom.Scraped(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var calls []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, r.Header.Get("Authorization")+" "+string(b))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()

	e := newE2E(t)
	e.ok("login", "--credentials-file", e.credsAt)
	const token = "hook-t0ken-never-shown"
	e.secret(token)
	e.must(e.runIn(e.ctx, token+"\n", "secrets", "set", "hook-token"), "secrets", "set")
	e.ok("providers", "add", "prom", "--type", "prometheus", "--url", prom.URL)

	dir := filepath.Join(e.dir, "judged")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "deploy.yml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(judgedApp, e.ns, hook.URL, kubetest.Inline(kubetest.SampleApp("judged", 2, "judged:{{context.version}}")))), 0o644); err != nil {
		t.Fatal(err)
	}
	e.ok("deploy", "start", "-f", file, "--watch") // the first goes straight to 100 %
	id := decode[startOutput](t, e.ok("deploy", "start", "-f", file, "--add-context", "version=v2", "-o", "json")).PipelineID

	watch := e.start(e.ctx, "deploy", "watch", id)
	watch.out.waitFor(t, awaitingApproval, watch.done)

	// status: under the analysis step, every judgment run.
	status := e.ok("deploy", "status", id).out
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^  canary/2 +analysis +AWAITING_APPROVAL +analysis inconclusive; approve to go on, or roll back: run 1 of 2: query latency returned no data`),
		regexp.MustCompile(`(?m)^      run 1/2 error-rate = 0\.01 \(upper limit 0\.1\): pass; sent to prom: max\(max_over_time\(app_error_rate\{app="judged"\}\[1s\]\)\)$`),
		regexp.MustCompile(`(?m)^      run 1/2 latency = no value \(limits 0\.\.0\.5\): inconclusive \(query latency returned no data\); sent to prom: max\(app_latency_seconds_never_exported\{app="judged"\}\)$`),
		regexp.MustCompile(`(?m)^      run 2/2 error-rate = 0\.01 .*: pass;`),
		regexp.MustCompile(`(?m)^      run 2/2 latency = no value .*: inconclusive`),
		// After the last run, the mean of each query's values; latency had none.
		regexp.MustCompile(`(?m)^      mean of 2 runs error-rate = 0\.01 \(upper limit 0\.1\): pass$`),
	} {
		if !want.MatchString(status) {
			t.Errorf("deploy status does not match %s:\n%s", want, status)
		}
	}
	if !strings.Contains(status, "a decision by a deployer or admin: sortie deploy approve "+id+" --target prod --step canary/2, or sortie deploy rollback "+id+" --target prod") {
		t.Errorf("deploy status does not say how to decide:\n%s", status)
	}
	// The judgments follow their step, before the next one.
	if i, j := strings.Index(status, "run 2/2 latency"), strings.Index(status, "  finalize "); i < 0 || j < i {
		t.Errorf("judgments not under their step:\n%s", status)
	}

	// logs: one line per judgment, the webhook call masked.
	logs := e.ok("deploy", "logs", id).out
	if n := len(regexp.MustCompile(`(?m)^\S+  prod canary/2 +judgment run \d/2 `).FindAllString(logs, -1)); n != 4 {
		t.Errorf("%d judgment lines in the logs, want 4:\n%s", n, logs)
	}
	if !regexp.MustCompile(`(?m)^\S+  prod canary/0 +webhook notify called: POST ` + regexp.QuoteMeta(hook.URL) + `/deployed \[Authorization: Bearer \*+; Content-Type: application/json\] body \{"id": "` + id + `"\}$`).MatchString(logs) {
		t.Errorf("no masked webhook line in the logs:\n%s", logs)
	}
	if !strings.Contains(logs, "prod canary/2                analysis inconclusive: run 1 of 2: query latency returned no data") {
		t.Errorf("no inconclusive result in the logs:\n%s", logs)
	}
	mu.Lock()
	if len(calls) != 1 || !strings.HasPrefix(calls[0], "Bearer "+token+" ") {
		t.Errorf("the webhook received %q", calls)
	}
	mu.Unlock()

	// A person approves; the watch printed the judgments as they came and
	// ends SUCCEEDED.
	e.ok("deploy", "approve", id, "--target", "prod")
	r := e.wait(watch, "deploy", "watch", id)
	if r.code != ExitOK || !strings.Contains(r.out, "Deployment "+id+" ended SUCCEEDED") {
		t.Fatalf("watch: exit %d\n%s\n%s", r.code, r.out, r.errOut)
	}
	if n := strings.Count(r.out, " judgment run "); n != 4 || !strings.Contains(r.out, "webhook notify called: POST") {
		t.Errorf("watch printed %d judgment lines, want 4, and the webhook call:\n%s", n, r.out)
	}
}

const judgedApp = `version: v1
kind: kubernetes
application: judged
context:
  version: v1
targets:
  prod:
    account: local
    namespace: %[1]s
    strategy: canary
strategies:
  canary:
    canary:
      steps:
        - runWebhook: {name: notify}
        - setWeight: 50
        - analysis:
            interval: 1
            units: seconds
            numberOfJudgmentRuns: 2
            rollBackMode: automatic
            lookbackMethod: SLIDING
            queries: [error-rate, latency]
analysis:
  defaultMetricProviderName: prom
  queries:
    - name: error-rate
      queryTemplate: 'max(max_over_time(app_error_rate{app="{{armory.applicationName}}"}[{{armory.promQlStepInterval}}]))'
      upperLimit: 0.1
    - name: latency
      queryTemplate: 'max(app_latency_seconds_never_exported{app="{{armory.applicationName}}"})'
      lowerLimit: 0
      upperLimit: 0.5
webhooks:
  - name: notify
    method: POST
    uriTemplate: %[2]s/deployed
    disableCallback: true
    headers:
      - key: Authorization
        value: 'Bearer {{secrets.hook-token}}'
      - key: Content-Type
        value: application/json
    bodyTemplate:
      inline: '{"id": "{{armory.deploymentId}}"}'
manifests:
  - inline: |
%[3]s`
