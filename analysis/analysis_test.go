package analysis_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sortie-cd/sortie/analysis"
	"github.com/sortie-cd/sortie/analysis/promtest"
	"github.com/sortie-cd/sortie/deployfile"
	"github.com/sortie-cd/sortie/egress"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/webhook"
)

type secrets map[string]string

func (s secrets) Secret(_ context.Context, _, name string) (string, []string, error) {
	v, ok := s[name]
	if !ok {
		return "", nil, &webhook.SecretNotSetError{Name: name}
	}
	return v, nil, nil
}

// local sends to the tests' stand-ins, which listen on loopback.
var local = (&egress.Policy{Allow: egress.Loopback}).Client(30 * time.Second)

// providers is an in-memory analysis.Providers.
type providers map[string]analysis.Config

func (ps providers) GetMetricProvider(_ context.Context, tenant, name string) (*store.MetricProvider, error) {
	c, ok := ps[name]
	if !ok {
		return nil, store.ErrNotFound
	}
	sp, err := c.Stored(tenant)
	return &sp, err
}

func f64(v float64) *float64 { return &v }

func query(name, text string, lower, upper *float64) *deployfile.Query {
	return &deployfile.Query{Name: name, QueryTemplate: deployfile.Template{Text: text}, LowerLimit: lower, UpperLimit: upper}
}

func step(runs int, every time.Duration, lookback string) deployfile.AnalysisStep {
	return deployfile.AnalysisStep{NumberOfJudgmentRuns: runs, Every: every, LookbackMethod: lookback}
}

func TestPrometheusPassThenFail(t *testing.T) {
	prom := promtest.Start(t)
	errRate := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "app_error_rate", Help: "errors per request"}, []string{"app"})
	prom.Registry.MustRegister(errRate)
	errRate.WithLabelValues("web").Set(0.01)
	ctx := t.Context()
	if err := prom.Scraped(ctx, 2); err != nil {
		t.Fatal(err)
	}
	a := &analysis.Analyzer{Direct: local, Providers: providers{"prom": {Name: "prom", Type: analysis.TypePrometheus, URL: prom.URL}}}
	in := analysis.Input{
		// Windows of 2 s hold at least one of Prometheus's 1 s scrapes even
		// when a scrape comes late on a loaded machine; a 1 s window may
		// hold none and the run would be inconclusive.
		Tenant: "main", Step: step(30, 2*time.Second, analysis.Sliding), DefaultProvider: "prom",
		Queries: []*deployfile.Query{query("error-rate", `max(max_over_time(app_error_rate{app="{{armory.applicationName}}"}[{{armory.promQlStepInterval}}]))`, nil, f64(0.1))},
		Armory:  map[string]string{"applicationName": "web"},
	}
	// The first failed run ends the analysis only with abortOnFailedJudgment
	// (without it the mean of the 30 runs would decide, at the end).
	in.Step.AbortOnFailedJudgment = true
	var mu sync.Mutex
	var got []analysis.Judgment
	out := a.Run(ctx, in, func(_ context.Context, j analysis.Judgment) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, j)
		if j.Run == 1 {
			errRate.WithLabelValues("web").Set(0.5) // the new version starts failing
		}
	})
	if out.Verdict != analysis.Fail || !strings.Contains(out.Message, "above its upper limit 0.1") {
		t.Fatalf("outcome %+v, want a failure above the upper limit", out)
	}
	first, last := got[0], got[len(got)-1]
	if first.Verdict != analysis.Pass || first.Value == nil || *first.Value != 0.01 || first.Sent != `max(max_over_time(app_error_rate{app="web"}[2s]))` {
		t.Errorf("first judgment %+v", first)
	}
	// The first run that sees 0.5 fails and ends the analysis. When that is
	// depends on Prometheus scraping the new value (every second), so on a
	// loaded machine it may take a few runs more; the benchmark in package
	// gate measures that latency. Every run before it passed.
	if last.Verdict != analysis.Fail || *last.Value != 0.5 || *last.UpperLimit != 0.1 || last.Run > 10 {
		t.Errorf("last judgment %+v: want a failure of 0.5, ending the analysis early", last)
	}
	for _, j := range got[:len(got)-1] {
		if j.Verdict != analysis.Pass {
			t.Errorf("judgment %d before the failure: %+v, want a pass", j.Run, j)
		}
	}
}

// TestJudgmentRunsAreAveraged: a real Prometheus serves, run after run,
// the values a test case lists, and the analysis judges them against
// upperLimit 1. As Armory specified it, the mean of all runs decides after
// the last run (0.5, 2, 0.5 passes: a single bad run does not fail it; 0.5,
// 2, 1 fails, its mean being above the limit); with abortOnFailedJudgment
// the first run outside the limits ends the analysis at once.
func TestJudgmentRunsAreAveraged(t *testing.T) {
	prom := promtest.Start(t)
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "app_latency_seconds", Help: "latency"})
	prom.Registry.MustRegister(gauge)
	// Each run is an instant query at its window's end. The analyzer's
	// clock runs a minute ahead of the real one, so that time is after every
	// sample Prometheus stored (and within its 5-minute lookback): each run
	// sees the latest scraped value, the one the test set after the run
	// before, however late a scrape comes on a loaded machine.
	ahead := func() time.Time { return time.Now().Add(time.Minute) }
	for _, tc := range []struct {
		name    string
		values  []float64
		abort   bool
		verdict string
		runs    int // judgment runs made
		message string
	}{
		{"averaged, a bad run", []float64{0.5, 2, 0.5}, false, analysis.Pass, 3, "the mean of 3 judgment runs"},
		{"averaged, the mean is above", []float64{0.5, 2, 1}, false, analysis.Fail, 3, "the mean of 3 runs = 1.1666666666666667 is above its upper limit 1"},
		{"abortOnFailedJudgment", []float64{0.5, 2, 0.5}, true, analysis.Fail, 2, "run 2 of 3: query latency = 2 is above its upper limit 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			gauge.Set(tc.values[0])
			if err := prom.WaitValue(ctx, "app_latency_seconds", ahead(), tc.values[0]); err != nil {
				t.Fatal(err)
			}
			a := &analysis.Analyzer{Direct: local, Now: ahead, Providers: providers{"prom": {Name: "prom", Type: analysis.TypePrometheus, URL: prom.URL}}}
			st := step(3, time.Second, "")
			st.AbortOnFailedJudgment = tc.abort
			in := analysis.Input{Tenant: "main", Step: st, DefaultProvider: "prom",
				Queries: []*deployfile.Query{query("latency", `app_latency_seconds`, nil, f64(1))}}
			var runs, means []analysis.Judgment
			out := a.Run(ctx, in, func(ctx context.Context, j analysis.Judgment) {
				if j.Mean {
					means = append(means, j)
					return
				}
				runs = append(runs, j)
				if j.Run < len(tc.values) {
					gauge.Set(tc.values[j.Run]) // what the next run sees
					if err := prom.WaitValue(ctx, "app_latency_seconds", ahead(), tc.values[j.Run]); err != nil {
						t.Error(err)
					}
				}
			})
			if out.Verdict != tc.verdict || !strings.Contains(out.Message, tc.message) {
				t.Errorf("outcome %+v, want %s with %q", out, tc.verdict, tc.message)
			}
			if len(runs) != tc.runs {
				t.Fatalf("%d judgment runs, want %d: %+v", len(runs), tc.runs, runs)
			}
			for i, j := range runs {
				want := analysis.Pass
				if tc.values[i] > 1 {
					want = analysis.Fail
				}
				if j.Run != i+1 || j.Value == nil || *j.Value != tc.values[i] || j.Verdict != want {
					t.Errorf("run %d: %+v, want value %v, %s", i+1, j, tc.values[i], want)
				}
			}
			if tc.abort {
				if len(means) != 0 {
					t.Errorf("with abortOnFailedJudgment no mean is judged: %+v", means)
				}
				return
			}
			if !strings.Contains(runs[1].Message, "the mean of the 3 runs decides") {
				t.Errorf("the failed run's message %q does not say the mean decides", runs[1].Message)
			}
			sum := 0.0
			for _, v := range tc.values {
				sum += v
			}
			if len(means) != 1 || means[0].Value == nil || *means[0].Value != sum/3 || means[0].Verdict != tc.verdict || means[0].Run != 3 || means[0].Query != "latency" {
				t.Errorf("mean judgments %+v, want one of %v (%s)", means, sum/3, tc.verdict)
			}
		})
	}
}

func TestPrometheusNoDataIsInconclusive(t *testing.T) {
	prom := promtest.Start(t)
	a := &analysis.Analyzer{Direct: local, Providers: providers{"prom": {Name: "prom", Type: analysis.TypePrometheus, URL: prom.URL}}}
	in := analysis.Input{Tenant: "main", Step: step(1, time.Second, ""), DefaultProvider: "prom",
		Queries: []*deployfile.Query{query("nothing", `absent_metric_xyz`, nil, f64(1)), query("nan", `0/0`, nil, f64(1))}}
	var js []analysis.Judgment
	out := a.Run(t.Context(), in, func(_ context.Context, j analysis.Judgment) { js = append(js, j) })
	if out.Verdict != analysis.Inconclusive || !strings.Contains(out.Message, "no data") {
		t.Errorf("outcome %+v, want inconclusive for no data", out)
	}
	if len(js) != 2 || js[1].Verdict != analysis.Inconclusive || !strings.Contains(js[1].Message, "NaN") {
		t.Errorf("judgments %+v, want NaN inconclusive", js)
	}
}

func TestUnreachableProviderIsRetriedThenInconclusive(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	a := &analysis.Analyzer{Direct: local, RetryEvery: 50 * time.Millisecond, Providers: providers{"prom": {Name: "prom", Type: analysis.TypePrometheus, URL: srv.URL}}}
	in := analysis.Input{Tenant: "main", Step: step(1, 300*time.Millisecond, ""), DefaultProvider: "prom",
		Queries: []*deployfile.Query{query("q", `up`, nil, f64(1))}}
	out := a.Run(t.Context(), in, nil)
	if out.Verdict != analysis.Inconclusive || !strings.Contains(out.Message, "unreachable") || calls < 3 {
		t.Errorf("outcome %+v after %d calls, want inconclusive after retries", out, calls)
	}
}

func TestPrometheusAuthAndSecrets(t *testing.T) {
	var mu sync.Mutex
	var auth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		io.WriteString(w, `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3"]}}`)
	}))
	defer srv.Close()
	q := analysis.Query{Text: "3", Start: time.Now(), End: time.Now()}
	for _, tc := range []struct {
		auth *analysis.Auth
		want string
	}{
		{&analysis.Auth{Type: analysis.AuthBearer, TokenSecret: "tok"}, "Bearer t0ken"},
		{&analysis.Auth{Type: analysis.AuthBasic, Username: "u", PasswordSecret: "pw"}, "Basic dTpwYXNz"},
		{&analysis.Auth{Type: analysis.AuthBasic, UsernameSecret: "user", PasswordSecret: "pw"}, "Basic dTpwYXNz"},
		{nil, ""},
	} {
		p, err := analysis.Open(t.Context(), analysis.Config{Name: "p", Type: analysis.TypePrometheus, URL: srv.URL, Auth: tc.auth},
			analysis.Env{Direct: local, Tenant: "main", Secrets: secrets{"tok": "t0ken", "user": "u", "pw": "pass"}})
		if err != nil {
			t.Fatal(err)
		}
		v, err := p.Query(t.Context(), q)
		if err != nil || v != 3 || auth[len(auth)-1] != tc.want {
			t.Errorf("auth %+v: %v, %v, Authorization %q, want %q", tc.auth, v, err, auth[len(auth)-1], tc.want)
		}
	}
	_, err := analysis.Open(t.Context(), analysis.Config{Name: "p", Type: analysis.TypePrometheus, URL: srv.URL,
		Auth: &analysis.Auth{Type: analysis.AuthBearer, TokenSecret: "unset"}}, analysis.Env{Direct: local, Tenant: "main", Secrets: webhook.NoSecrets{}})
	if err == nil || !strings.Contains(err.Error(), "secret unset is not set") {
		t.Errorf("unset secret: %v", err)
	}
	_, err = analysis.Open(t.Context(), analysis.Config{Name: "p", Type: analysis.TypePrometheus, URL: srv.URL, AgentIdentifier: "edge"}, analysis.Env{})
	if err == nil || !strings.Contains(err.Error(), "agent edge") {
		t.Errorf("relay without a relay: %v", err)
	}
}

// doerFunc is a Doer made of a function.
type doerFunc func(*http.Request) (*http.Response, error)

func (f doerFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

// TestProviderErrorsMaskSecrets: a provider (or a proxy before it) that
// quotes the request back, credentials included, in an error page, a JSON
// error or a transport error, gets no secret value and no basic-auth pair
// into the error, which becomes a judgment's message; an unreachable
// provider stays an UnreachableError.
func TestProviderErrorsMaskSecrets(t *testing.T) {
	echo := func(status int, format string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			quoted := strings.Join([]string{r.Header.Get("Authorization"), r.Header.Get("DD-API-KEY"), r.Header.Get("DD-APPLICATION-KEY"), r.Header.Get("API-Key")}, " ")
			w.WriteHeader(status)
			fmt.Fprintf(w, format, quoted)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	env := analysis.Env{Direct: local, Tenant: "main", Secrets: secrets{"tok": "t0ken-value", "user": "the-user", "pw": "pass-word", "api": "api-key-value", "app": "app-key-value"}}
	forbidden := []string{"t0ken-value", "the-user", "pass-word", "api-key-value", "app-key-value", "dGhlLXVzZXI6cGFzcy13b3Jk"}
	basic := &analysis.Auth{Type: analysis.AuthBasic, UsernameSecret: "user", PasswordSecret: "pw"}
	bearer := &analysis.Auth{Type: analysis.AuthBearer, TokenSecret: "tok"}
	for _, tc := range []struct {
		name        string
		c           analysis.Config
		doer        analysis.Doer
		unreachable bool
	}{
		{name: "basic, 401 page", c: analysis.Config{Type: analysis.TypePrometheus, URL: echo(401, "denied: %s").URL, Auth: basic}},
		{name: "bearer, 401 page", c: analysis.Config{Type: analysis.TypePrometheus, URL: echo(401, "denied: %s").URL, Auth: bearer}},
		{name: "bearer, JSON error", c: analysis.Config{Type: analysis.TypePrometheus, Auth: bearer,
			URL: echo(400, `{"status":"error","errorType":"bad_data","error":"request %s"}`).URL}},
		{name: "basic, 200 error", c: analysis.Config{Type: analysis.TypePrometheus, Auth: basic,
			URL: echo(200, `{"status":"error","errorType":"bad_data","error":"request %s"}`).URL}},
		{name: "bearer, transport error", c: analysis.Config{Type: analysis.TypePrometheus, URL: "http://prom.invalid", Auth: bearer},
			doer: doerFunc(func(r *http.Request) (*http.Response, error) {
				return nil, fmt.Errorf("proxy refused %s", r.Header.Get("Authorization"))
			}), unreachable: true},
		{name: "datadog", c: analysis.Config{Type: analysis.TypeDatadog, APIKeySecret: "api", ApplicationKeySecret: "app",
			URL: echo(403, `{"errors":["keys %s"]}`).URL}},
		{name: "new relic", c: analysis.Config{Type: analysis.TypeNewRelic, APIKeySecret: "api", AccountID: 1,
			URL: echo(200, `{"errors":[{"message":"key %s"}]}`).URL}},
	} {
		tc.c.Name = "p"
		e := env
		if e.Direct = local; tc.doer != nil {
			e.Direct = tc.doer
		}
		p, err := analysis.Open(t.Context(), tc.c, e)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		_, err = p.Query(t.Context(), analysis.Query{Text: "up", Start: time.Now(), End: time.Now()})
		if err == nil || !strings.Contains(err.Error(), "******") {
			t.Errorf("%s: %v, want an error with the credentials masked", tc.name, err)
			continue
		}
		for _, v := range forbidden {
			if strings.Contains(err.Error(), v) {
				t.Errorf("%s: the error holds %q: %v", tc.name, v, err)
			}
		}
		var u *analysis.UnreachableError
		if errors.As(err, &u) != tc.unreachable {
			t.Errorf("%s: %T %v, unreachable %v", tc.name, err, err, tc.unreachable)
		}
	}
}

// The Datadog API is SaaS and cannot run here: this fake follows its
// documented v1 timeseries query (GET /api/v1/query?from&to&query with
// DD-API-KEY and DD-APPLICATION-KEY; {"status","series":[{"pointlist"}]}).
func TestDatadogFake(t *testing.T) {
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		if r.URL.Path != "/api/v1/query" || r.Header.Get("DD-API-KEY") != "api" || r.Header.Get("DD-APPLICATION-KEY") != "app" {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"errors":["Forbidden"]}`)
			return
		}
		switch r.URL.Query().Get("query") {
		case "avg:errors{*}":
			io.WriteString(w, `{"status":"ok","res_type":"time_series","series":[{"metric":"errors","pointlist":[[1700000000000,0.1],[1700000001000,null],[1700000002000,0.3]]}]}`)
		case "empty":
			io.WriteString(w, `{"status":"ok","series":[]}`)
		default:
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"status":"error","error":"Error parsing query: unknown metric"}`)
		}
	}))
	defer srv.Close()
	p, err := analysis.Open(t.Context(), analysis.Config{Name: "dd", Type: analysis.TypeDatadog, URL: srv.URL, APIKeySecret: "k1", ApplicationKeySecret: "k2"},
		analysis.Env{Direct: local, Secrets: secrets{"k1": "api", "k2": "app"}})
	if err != nil {
		t.Fatal(err)
	}
	start, end := time.Unix(1700000000, 0), time.Unix(1700000060, 0)
	v, err := p.Query(t.Context(), analysis.Query{Text: "avg:errors{*}", Start: start, End: end})
	if err != nil || math.Abs(v-0.2) > 1e-9 {
		t.Errorf("mean of the points = %v, %v; want 0.2", v, err)
	}
	if got.URL.Query().Get("from") != "1700000000" || got.URL.Query().Get("to") != "1700000060" {
		t.Errorf("window sent %v", got.URL.Query())
	}
	if _, err := p.Query(t.Context(), analysis.Query{Text: "empty", Start: start, End: end}); err != analysis.ErrNoData {
		t.Errorf("empty series: %v", err)
	}
	if _, err := p.Query(t.Context(), analysis.Query{Text: "bad", Start: start, End: end}); err == nil || !strings.Contains(err.Error(), "unknown metric") {
		t.Errorf("bad query: %v", err)
	}
}

// New Relic is SaaS and cannot run here: this fake follows its documented
// NerdGraph API (POST /graphql with API-Key, a GraphQL query of
// actor.account(id).nrql(query).results; errors in "errors").
func TestNewRelicFake(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Query     string `json:"query"`
			Variables struct {
				AccountID int64  `json:"accountId"`
				NRQL      string `json:"nrql"`
			} `json:"variables"`
		}
		if r.Method != http.MethodPost || r.Header.Get("API-Key") != "nr-key" || json.NewDecoder(r.Body).Decode(&req) != nil || req.Variables.AccountID != 42 || !strings.Contains(req.Query, "nrql(query: $nrql)") {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"message":"bad request"}]}`)
			return
		}
		switch req.Variables.NRQL {
		case "SELECT average(duration) FROM Transaction":
			io.WriteString(w, `{"data":{"actor":{"account":{"nrql":{"results":[{"average.duration":0.25}]}}}}}`)
		case "SELECT null":
			io.WriteString(w, `{"data":{"actor":{"account":{"nrql":{"results":[{"average.duration":null}]}}}}}`)
		default:
			io.WriteString(w, `{"data":{"actor":{"account":{"nrql":null}}},"errors":[{"message":"NRQL Syntax Error"}]}`)
		}
	}))
	defer srv.Close()
	p, err := analysis.Open(t.Context(), analysis.Config{Name: "nr", Type: analysis.TypeNewRelic, URL: srv.URL + "/graphql", APIKeySecret: "k", AccountID: 42},
		analysis.Env{Direct: local, Secrets: secrets{"k": "nr-key"}})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := p.Query(t.Context(), analysis.Query{Text: "SELECT average(duration) FROM Transaction"}); err != nil || v != 0.25 {
		t.Errorf("value %v, %v; want 0.25", v, err)
	}
	if v, err := p.Query(t.Context(), analysis.Query{Text: "SELECT null"}); err != nil || !math.IsNaN(v) {
		t.Errorf("null value: %v, %v; want NaN (inconclusive)", v, err)
	}
	if _, err := p.Query(t.Context(), analysis.Query{Text: "SELEC"}); err == nil || !strings.Contains(err.Error(), "NRQL Syntax Error") {
		t.Errorf("syntax error: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		c    analysis.Config
		want string
	}{
		{analysis.Config{Name: "p", Type: analysis.TypePrometheus}, "url is required"},
		{analysis.Config{Name: "p", Type: analysis.TypePrometheus, URL: "ftp://x"}, "not an http(s) URL"},
		{analysis.Config{Name: "p", Type: analysis.TypePrometheus, URL: "http://x", Auth: &analysis.Auth{Type: "basic"}}, "basic auth needs"},
		{analysis.Config{Name: "p", Type: analysis.TypePrometheus, URL: "http://x", Auth: &analysis.Auth{Type: "basic", Username: "u", UsernameSecret: "s", PasswordSecret: "p"}}, "one of username and usernameSecret"},
		{analysis.Config{Name: "p", Type: analysis.TypeDatadog}, "needs apiKeySecret and applicationKeySecret"},
		{analysis.Config{Name: "p", Type: analysis.TypeNewRelic, APIKeySecret: "k"}, "needs apiKeySecret and accountId"},
		{analysis.Config{Name: "p", Type: "graphite"}, "none of prometheus"},
		{analysis.Config{Name: "", Type: analysis.TypePrometheus, URL: "http://x"}, "name"},
	} {
		if err := tc.c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
	ok := analysis.Config{Name: "prom", Type: analysis.TypePrometheus, URL: "http://prometheus:9090", Auth: &analysis.Auth{Type: "bearer", TokenSecret: "t"}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestWindowVariables(t *testing.T) {
	from := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	v := analysis.WindowVariables(from, from.Add(90*time.Second), 30*time.Second)
	want := map[string]string{
		"startTimeIso8601": "2026-01-02T03:04:05Z", "endTimeIso8601": "2026-01-02T03:05:35Z",
		"startTimeEpochSeconds": "1767323045", "endTimeEpochMillis": "1767323135000",
		"intervalSeconds": "30", "intervalMillis": "30000", "promQlStepInterval": "90s",
	}
	for k, w := range want {
		if v[k] != w {
			t.Errorf("%s = %q, want %q", k, v[k], w)
		}
	}
	for _, name := range deployfile.ArmoryVariables {
		if strings.Contains(strings.ToLower(name), "time") || strings.Contains(name, "interval") || strings.Contains(name, "Interval") {
			if _, ok := v[name]; !ok {
				t.Errorf("window variable %s is missing", name)
			}
		}
	}
}

// hostSecrets resolves every secret to value, allowed only on hosts.
type hostSecrets struct {
	value string
	hosts []string
}

func (s hostSecrets) Secret(context.Context, string, string) (string, []string, error) {
	return s.value, s.hosts, nil
}

// TestProviderEgress: the default client refuses a provider on loopback,
// and a credential restricted to some hosts is not sent to another one.
func TestProviderEgress(t *testing.T) {
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls++
		io.WriteString(w, `{"status":"success","data":{"resultType":"scalar","result":[0,"1"]}}`)
	}))
	defer srv.Close()
	q := analysis.Query{Text: "1", Start: time.Now(), End: time.Now()}
	c := analysis.Config{Name: "p", Type: analysis.TypePrometheus, URL: srv.URL}
	p, err := analysis.Open(t.Context(), c, analysis.Env{})
	if err != nil {
		t.Fatal(err)
	}
	var unreachable *analysis.UnreachableError
	if _, err := p.Query(t.Context(), q); err == nil || errors.As(err, &unreachable) || !strings.Contains(err.Error(), "refused by the egress policy") || calls != 0 {
		t.Errorf("a provider on loopback with the default client: %v (%d calls); want a refusal, not unreachable", err, calls)
	}
	c.Auth = &analysis.Auth{Type: analysis.AuthBearer, TokenSecret: "tok"}
	p, err = analysis.Open(t.Context(), c, analysis.Env{Direct: local, Secrets: hostSecrets{"t0ken", []string{"prometheus.example.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Query(t.Context(), q); err == nil || !strings.Contains(err.Error(), "not an allowed host of secret tok") || calls != 0 {
		t.Errorf("a restricted credential to another host: %v (%d calls)", err, calls)
	}
	p, err = analysis.Open(t.Context(), c, analysis.Env{Direct: local, Secrets: hostSecrets{"t0ken", []string{strings.TrimPrefix(srv.URL, "http://")}}})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := p.Query(t.Context(), q); err != nil || v != 1 || calls != 1 {
		t.Errorf("to its allowed host: %v, %v (%d calls)", v, err, calls)
	}
}
