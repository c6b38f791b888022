package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sortie-cd/sortie/analysis/promtest"
	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/server"
)

const measuredApp = `version: v1
kind: kubernetes
application: measured
targets:
  prod:
    account: local
    namespace: %s
    strategy: canary
strategies:
  canary:
    canary:
      steps:
        - setWeight: 50
        - analysis:
            interval: 1
            units: seconds
            numberOfJudgmentRuns: 1
            rollBackMode: automatic
            queries: [error-rate]
        - pause: {untilApproved: true}
        - setWeight: 100
analysis:
  defaultMetricProviderName: prom
  queries:
    - name: error-rate
      queryTemplate: 'max(app_error_rate{app="measured"})'
      upperLimit: 0.1
manifests:
  - path: app.yaml
`

const (
	dashboardFile = "../docs/grafana/sortie-dashboard.json"
	alertsFile    = "../docs/prometheus/sortie-alerts.yml"
)

// TestDeliveryMetricsScrapedByPrometheus runs, on a real server and the
// local cluster, a first deployment, a canary whose analysis passes and
// which a person approves, one whose analysis fails and rolls back
// automatically, and one left waiting for approval, with a real Prometheus
// scraping the server's /metrics and judging the analyses. The delivery
// metrics count exactly those, every query of the Grafana dashboard in
// docs/ answers data, and the alert rules in docs/ load, evaluate and fire
// on the automatic rollback.
func TestDeliveryMetricsScrapedByPrometheus(t *testing.T) {
	if promtool, err := exec.LookPath("promtool"); err != nil {
		t.Logf("promtool is not installed: %s is checked only by the Prometheus below loading it", alertsFile)
	} else if out, err := exec.Command(promtool, "check", "rules", alertsFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", alertsFile, err, out)
	}
	rules, err := filepath.Abs(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := clienttest.Start(t, server.Config{DataDir: filepath.Join(t.TempDir(), "data"), Kubeconfig: kubetest.Cluster(t).Kubeconfig, Account: "local"})
	prom := promtest.StartWith(t, promtest.Options{Scrape: []string{srv.URL + "/metrics"}, RuleFiles: []string{rules}})
	errorRate := prometheus.NewGauge(prometheus.GaugeOpts{Name: "app_error_rate", Help: "Errors per request.", ConstLabels: prometheus.Labels{"app": "measured"}})
	prom.Registry.MustRegister(errorRate)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// A query at a later time reads the newest samples: each wait below
	// asks again after every scrape.
	later := func() time.Time { return time.Now().Add(time.Minute) }
	setErrorRate := func(v float64) {
		errorRate.Set(v)
		if err := prom.WaitValue(ctx, `max(app_error_rate{app="measured"})`, later(), v); err != nil {
			t.Fatal(err)
		}
	}

	s := &liveServer{t: t, url: srv.URL}
	root := s.token(srv.Credentials.ClientID, srv.Credentials.ClientSecret, "")
	s.must(201, "POST", api.Prefix+"/providers", root, map[string]any{"name": "prom", "type": "prometheus", "url": prom.URL}, nil)
	ns := kubetest.Namespace(t)
	start := func(version string) string {
		var res api.StartResult
		s.must(202, "POST", api.Prefix+"/pipelines", root, api.StartRequest{
			FileName: "deploy.yml", File: fmt.Sprintf(measuredApp, ns),
			Manifests: map[string]string{"app.yaml": kubetest.SampleApp("measured", 2, "web:{{context.version}}")},
			Context:   map[string]string{"version": version},
		}, &res)
		return res.PipelineID
	}

	setErrorRate(0.01)
	s.waitStatus(root, start("v1"), pipeline.StatusSucceeded) // a first deployment: straight to 100 %
	id := start("v2")
	s.waitStatus(root, id, pipeline.StatusAwaitingApproval)
	s.must(200, "POST", api.Prefix+"/pipelines/"+id+"/approve", root, api.ActionRequest{Target: "prod"}, nil)
	s.waitStatus(root, id, pipeline.StatusSucceeded)
	setErrorRate(1)
	s.waitStatus(root, start("v3"), pipeline.StatusFailed) // the analysis fails: rolled back
	setErrorRate(0.01)
	s.waitStatus(root, start("v4"), pipeline.StatusAwaitingApproval)

	// What happened, as Prometheus has it.
	for query, want := range map[string]float64{
		`sum(sortie_delivery_deployment_duration_seconds_count{application="measured",target="prod",outcome="succeeded"})`:   2,
		`sum(sortie_delivery_deployment_duration_seconds_count{application="measured",target="prod",outcome="rolled_back"})`: 1,
		`sum(sortie_delivery_deployment_duration_seconds_count{application="measured",target="prod",outcome="failed"})`:      0,
		`sum(sortie_delivery_analysis_judgments_total{tenant="main",application="measured",verdict="passed"})`:               2,
		`sum(sortie_delivery_analysis_judgments_total{application="measured",verdict="failed"})`:                             1,
		`sum(sortie_delivery_rollbacks_total{application="measured",reason="analysis"})`:                                     1,
		`sum(sortie_delivery_rollbacks_total{application="measured"})`:                                                       1,
		`sum(sortie_delivery_rollback_duration_seconds_count{application="measured",outcome="succeeded"})`:                   1,
		`sum(sortie_delivery_approval_wait_seconds_count{application="measured",outcome="approved"})`:                        1,
		`sum(sortie_delivery_approvals_waiting{application="measured",target="prod"})`:                                       1,
		`sum(sortie_engine_pipelines{status="AWAITING_APPROVAL"})`:                                                           1,
		`count(sortie_delivery_approval_oldest_wait_seconds{application="measured"} > 0)`:                                    1,
	} {
		if err := prom.WaitValue(ctx, query, later(), want); err != nil {
			t.Error(err)
		}
	}

	// No series carries a pipeline's id, or any label but the bounded ones.
	ids := regexp.MustCompile(`[0-9a-f]{27}`)
	code, b := s.do("GET", "/metrics", "", nil)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "sortie_delivery_") && ids.MatchString(line) {
			t.Errorf("a delivery series names a pipeline: %s", line)
		}
	}

	// Every query of the dashboard answers, with Grafana's variables as
	// "All" and its intervals given.
	queries := dashboardQueries(t)
	if len(queries) < 15 {
		t.Fatalf("%d queries in %s, want the dashboard's panels' and variables'", len(queries), dashboardFile)
	}
	for _, q := range queries {
		if err := prom.WaitSeries(ctx, q); err != nil {
			t.Errorf("a dashboard query answers nothing: %v", err)
		}
	}

	// The rules loaded, evaluate without error, and the automatic
	// rollback fired its alert.
	want := []string{"SortieAgentDisconnected", "SortieAgentDown", "SortieApprovalWaitingTooLong", "SortieBadDeployCaught",
		"SortieChangeFailureRateHigh", "SortieRollbackFailed", "SortieRollbacksRepeated", "SortieServerDown"}
	for {
		names, unhealthy := ruleHealth(t, prom.URL)
		if slices.Equal(names, want) && len(unhealthy) == 0 {
			break
		}
		if err := prom.Scraped(ctx, 1); err != nil {
			t.Fatalf("rules loaded %v, want %v; not evaluated or failing: %v", names, want, unhealthy)
		}
	}
	if err := prom.WaitValue(ctx, `count(ALERTS{alertname="SortieBadDeployCaught",application="measured",target="prod",reason="analysis"})`, later(), 1); err != nil {
		t.Errorf("the automatic rollback raised no alert: %v", err)
	}
	if n, err := prom.Series(ctx, `ALERTS{alertname="SortieApprovalWaitingTooLong"}`); err != nil || n != 0 {
		t.Errorf("an approval waiting seconds raised SortieApprovalWaitingTooLong (%d series, %v)", n, err)
	}
}

// dashboardQueries are the PromQL queries of the dashboard's panels, and
// of its variables (label_values(m, l) as Grafana runs it: the series of
// m), with the variables and intervals Grafana substitutes filled in.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	fill := strings.NewReplacer("$__rate_interval", "1m", "$__range", "1h", "$tenant", ".*", "$application", ".*", "$target", ".*")
	labelValues := regexp.MustCompile(`^label_values\((.+), *(\w+)\)$`)
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				s, ok := c.(string)
				switch {
				case ok && k == "expr":
					out = append(out, fill.Replace(s))
				case ok && k == "definition":
					m := labelValues.FindStringSubmatch(s)
					if m == nil {
						t.Errorf("a variable's query %q is not label_values(metric, label)", s)
						continue
					}
					out = append(out, fmt.Sprintf("count by (%s) (%s)", m[2], fill.Replace(m[1])))
				default:
					walk(c)
				}
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(dash)
	slices.Sort(out)
	return out
}

// ruleHealth returns the names of the rules Prometheus loaded, sorted, and
// those not evaluated yet or failing, with why.
func ruleHealth(t *testing.T, promURL string) (names, unhealthy []string) {
	t.Helper()
	resp, err := http.Get(promURL + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	for _, g := range body.Data.Groups {
		for _, r := range g.Rules {
			names = append(names, r.Name)
			if r.Health != "ok" {
				unhealthy = append(unhealthy, r.Name+": "+r.Health+" "+r.LastError)
			}
		}
	}
	slices.Sort(names)
	return names, unhealthy
}
