package console

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/secrets"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/sqlite"
)

// storeDeployments serves the console's reads straight from a store: what
// the benchmark and the rendering tests need (no runner, no cluster).
// Starting or acting is not part of them.
type storeDeployments struct{ st store.Store }

func (d storeDeployments) Start(context.Context, api.Principal, api.StartRequest) (api.StartResult, error) {
	return api.StartResult{}, fmt.Errorf("not in this test")
}

func (d storeDeployments) Redeploy(context.Context, api.Principal, string, api.RedeployRequest) (api.StartResult, error) {
	return api.StartResult{}, fmt.Errorf("not in this test")
}

func (d storeDeployments) Restore(context.Context, api.Principal, string, api.RestoreRequest) (api.StartResult, error) {
	return api.StartResult{}, fmt.Errorf("not in this test")
}

func (d storeDeployments) Get(ctx context.Context, tenant, id string) (*store.Pipeline, error) {
	return d.st.GetPipeline(ctx, tenant, id)
}

func (d storeDeployments) List(ctx context.Context, tenant string, f store.Filter) ([]*store.Pipeline, error) {
	return d.st.ListPipelines(ctx, tenant, f)
}

func (d storeDeployments) Act(context.Context, api.Principal, string, pipeline.Event) (*store.Pipeline, error) {
	return nil, fmt.Errorf("not in this test")
}

func (d storeDeployments) Events(ctx context.Context, tenant, id string, after int64) ([]store.Event, error) {
	return d.st.Events(ctx, tenant, id, after)
}

func (d storeDeployments) Subscribe(ctx context.Context, _ string) <-chan store.Event {
	ch := make(chan store.Event)
	go func() { <-ctx.Done(); close(ch) }()
	return ch
}

// fixture is a console over a real SQLite store, and a session cookie of
// an organization admin of tenant main.
type fixture struct {
	c      *Console
	st     store.Store
	auth   *auth.Service
	cookie *http.Cookie
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	st, err := sqlite.Open(ctx, dir+"/sortie.db", sqlite.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	keys, err := auth.LoadKeys(dir + "/keys")
	if err != nil {
		tb.Fatal(err)
	}
	as, err := auth.New(auth.Options{Credentials: st, Keys: keys, Issuer: "http://sortie.test", TTL: time.Hour, Tenants: st, Audit: st})
	if err != nil {
		tb.Fatal(err)
	}
	sec, err := secrets.New(ctx, secrets.Options{Store: st, KeyPath: dir + "/master.key"})
	if err != nil {
		tb.Fatal(err)
	}
	// The windows and freezes are the runner's (with no executor: no
	// pipeline runs here).
	rn := runner.New(runner.Options{Store: st})
	tb.Cleanup(rn.Close)
	apiHandler, err := api.New(api.Options{Deployments: storeDeployments{st}, Auth: as, Store: st, Providers: st, Secrets: sec, Controls: rn, Notifications: st})
	if err != nil {
		tb.Fatal(err)
	}
	cred, _, err := as.CreateCredential(ctx, store.DefaultTenant, "bench admin", []string{pipeline.RoleOrganizationAdmin})
	if err != nil {
		tb.Fatal(err)
	}
	tok, err := as.Issue(&cred)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := New(Options{Deployments: storeDeployments{st}, Auth: as, API: apiHandler})
	if err != nil {
		tb.Fatal(err)
	}
	return &fixture{c: c, st: st, auth: as, cookie: &http.Cookie{Name: sessionCookie, Value: tok.AccessToken}}
}

// spec is a pipeline of three targets (a → b, a → c) with gates and a
// five-step canary: a typical graph.
func spec(app string) pipeline.Spec {
	canary := &pipeline.Canary{Steps: []pipeline.Step{
		{SetWeight: &pipeline.SetWeight{Weight: 25}},
		{Pause: &pipeline.Pause{Duration: pipeline.Duration(time.Minute)}},
		{SetWeight: &pipeline.SetWeight{Weight: 50}},
		{Pause: &pipeline.Pause{UntilApproved: true, RequiresRoles: []string{"release-manager"}}},
		{SetWeight: &pipeline.SetWeight{Weight: 100}},
	}}
	gate := []pipeline.Step{{Pause: &pipeline.Pause{Duration: pipeline.Duration(time.Second)}}}
	t := func(name string, deps ...string) pipeline.TargetSpec {
		return pipeline.TargetSpec{Name: name, Account: "local", Namespace: "ns-" + name, DependsOn: deps,
			BeforeDeployment: gate, AfterDeployment: gate, Strategy: pipeline.Strategy{Name: "c", Canary: canary}}
	}
	return pipeline.Spec{Application: app, Tenant: store.DefaultTenant, Targets: []pipeline.TargetSpec{t("a"), t("b", "a"), t("c", "a")}}
}

// seed stores n pipelines of 10 applications through the store, each with
// a few events, the newest one in flight.
func (f *fixture) seed(tb testing.TB, n int) (newest string) {
	tb.Helper()
	ctx := context.Background()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	file := "version: v1\nkind: kubernetes\napplication: app\n" + strings.Repeat("# a line of the file\n", 60)
	for i := range n {
		app := fmt.Sprintf("app-%d", i%10)
		id := fmt.Sprintf("p%05d", i)
		now := base.Add(time.Duration(i) * time.Minute)
		st, err := pipeline.New(id, spec(app), now)
		if err != nil {
			tb.Fatal(err)
		}
		st, _, _, err = pipeline.Transition(st, pipeline.Start{By: pipeline.Principal{Name: "ci"}}, now)
		if err != nil {
			tb.Fatal(err)
		}
		p := &store.Pipeline{
			Tenant: store.DefaultTenant, ID: id, Application: app, Status: st.Status,
			CreatedAt: now, UpdatedAt: now, StartedBy: "ci", State: st,
			Source: store.Source{FileName: "deploy.yml", File: file + fmt.Sprintf("# build %d\n", i), Manifests: map[string]string{"web.yml": "kind: Deployment\n"}},
		}
		evs := []store.Event{
			{Tenant: store.DefaultTenant, Pipeline: id, At: now, Type: "status", Data: []byte(`{"to":"RUNNING"}`)},
			{Tenant: store.DefaultTenant, Pipeline: id, At: now, Type: "status", Data: []byte(`{"target":"a","to":"RUNNING"}`)},
			{Tenant: store.DefaultTenant, Pipeline: id, At: now, Type: "status", Data: []byte(`{"target":"a","step":"beforeDeployment/0","to":"PAUSED"}`)},
		}
		if i == n-1 {
			evs = append(evs, reportEvents(id, now)...)
		}
		if err := f.st.CreatePipeline(ctx, p, nil, evs); err != nil {
			tb.Fatal(err)
		}
		if i < n-1 {
			// Older ones ended.
			p.State.Status, p.Status = pipeline.StatusSucceeded, pipeline.StatusSucceeded
			if err := f.st.SavePipeline(ctx, p, nil); err != nil {
				tb.Fatal(err)
			}
		}
		newest = id
	}
	return newest
}

// reportEvents are what the executors report of target a: ten analysis
// judgments, a webhook call and the objects a set-weight wrote.
func reportEvents(id string, at time.Time) []store.Event {
	ev := func(typ, data string) store.Event {
		return store.Event{Tenant: store.DefaultTenant, Pipeline: id, At: at, Type: typ, Data: []byte(data)}
	}
	var out []store.Event
	for run := 1; run <= 10; run++ {
		verdict, value := "pass", "0.004"
		if run == 10 {
			verdict, value = "fail", "0.2"
		}
		out = append(out, ev("judgment", fmt.Sprintf(`{"target":"a","step":"beforeDeployment/0","command":"c","run":%d,"runs":10,"query":"error-rate","provider":"prom","sent":"sum(rate(http_errors{app=\"web\"}[1m])) < 0.01","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:01:00Z","value":%s,"upperLimit":0.01,"verdict":%q}`, run, value, verdict)))
	}
	out = append(out,
		ev("webhook", `{"target":"a","step":"beforeDeployment/0","command":"w","webhook":"smoke","request":"POST https://ci.example/hooks/smoke\nAuthorization: Bearer ******\n\n{\"app\":\"web\"}"}`),
		ev("applied", `{"target":"a","step":"canary/0","command":"k","objects":[{"kind":"ConfigMap","namespace":"ns-a","name":"web-settings"},{"kind":"Deployment","namespace":"ns-a","name":"web-canary"},{"kind":"Service","namespace":"ns-a","name":"web"}]}`),
	)
	return out
}

func (f *fixture) get(tb testing.TB, path string) *httptest.ResponseRecorder {
	tb.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.AddCookie(f.cookie)
	rec := httptest.NewRecorder()
	f.c.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		tb.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body.String())
	}
	return rec
}

// BenchmarkPages measures the server time of the console's pages with
// 1,000 pipelines in a real SQLite store. The goal is under 100 ms a page.
func BenchmarkPages(b *testing.B) {
	f := newFixture(b)
	newest := f.seed(b, 1000)
	for _, page := range []struct{ name, path string }{
		{"list", "/"},
		{"list-filtered", "/?application=app-3&status=SUCCEEDED&q=p00"},
		{"pipeline", "/pipelines/" + newest},
		{"pipeline-fragment", "/console/fragments/pipelines/" + newest + "?target=b"},
		{"source-diff", "/pipelines/" + newest + "/source"},
		{"secrets", "/settings/secrets"},
		{"providers", "/settings/providers"},
		{"users", "/settings/users"},
		{"audit", "/settings/audit?action=pipeline.approve"},
	} {
		b.Run(page.name, func(b *testing.B) {
			for b.Loop() {
				f.get(b, page.path)
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/page")
		})
	}
}

// TestPagesRenderWithManyPipelines is the benchmark's smoke test: every
// page answers, the list is capped and the newest pipeline comes first.
func TestPagesRenderWithManyPipelines(t *testing.T) {
	f := newFixture(t)
	newest := f.seed(t, 150)
	body := f.get(t, "/").Body.String()
	if n := strings.Count(body, "<tr data-pipeline="); n != listLimit {
		t.Errorf("list shows %d rows, want %d", n, listLimit)
	}
	if i := strings.Index(body, `data-pipeline="`+newest+`"`); i < 0 || i > strings.Index(body, `data-pipeline="p00148"`) {
		t.Error("the newest pipeline is not first")
	}
	page := f.get(t, "/pipelines/"+newest+"?target=b").Body.String()
	for _, want := range []string{`data-target="a"`, `data-target="b"`, `data-target="c"`, `class="edge`, `approval (release-manager)`, "Roll back b"} {
		if !strings.Contains(page, want) {
			t.Errorf("pipeline page lacks %q", want)
		}
	}
	src := f.get(t, "/pipelines/"+newest+"/source").Body.String()
	if !strings.Contains(src, "# build 149") || !strings.Contains(src, `class="add"`) {
		t.Error("source page lacks the diff against the previous pipeline of the application")
	}
}

// TestWebhookMessageIsRenderedSafely crafts a webhook callback message (the
// webhook engine is another issue's) in a stored pipeline and checks that
// the target detail renders its markdown and escapes its markup.
func TestWebhookMessageIsRenderedSafely(t *testing.T) {
	f := newFixture(t)
	id := f.seed(t, 1)
	ctx := context.Background()
	p, err := f.st.GetPipeline(ctx, store.DefaultTenant, id)
	if err != nil {
		t.Fatal(err)
	}
	tg := &p.State.Targets[0]
	tg.Steps[0].Message = "**smoke tests passed** see [report](https://ci.example/r/1) <script>alert('x')</script> [bad](javascript:alert(1)) <img src=x onerror=alert(1)>"
	if err := f.st.SavePipeline(ctx, p, nil); err != nil {
		t.Fatal(err)
	}
	page := f.get(t, "/pipelines/"+id+"?target=a").Body.String()
	for _, want := range []string{
		"<strong>smoke tests passed</strong>",
		`<a href="https://ci.example/r/1" rel="noopener noreferrer nofollow" target="_blank">report</a>`,
		"&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;",
		"&lt;img src=x onerror=alert(1)&gt;",
		"[bad](javascript:alert(1))",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script>alert", "<img src=x", `href="javascript:`} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	if csp := f.get(t, "/").Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP is %q", csp)
	}
}

// agentList stands in for the server's agent hub (package agent, tested
// there over real gRPC): the page only lists what the interface returns.
type agentList []api.AgentView

func (a agentList) ListAgents(string) []api.AgentView { return a }

func TestAgentsPage(t *testing.T) {
	f := newFixture(t)
	if body := f.get(t, "/settings/agents").Body.String(); !strings.Contains(body, `id="no-agents"`) {
		t.Error("no agents: the page does not say so")
	}
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f.c.agents = agentList{{ID: "prod-eu", Version: "v0.3.0", ClusterVersion: "v1.37.2", ConnectedAt: at, LastHeartbeat: at.Add(time.Minute), RemoteAddress: "10.0.0.7:51234"}}
	body := f.get(t, "/settings/agents").Body.String()
	for _, want := range []string{`data-agent="prod-eu"`, "v0.3.0", "v1.37.2", "2026-05-01 12:01:00Z", "10.0.0.7:51234"} {
		if !strings.Contains(body, want) {
			t.Errorf("agents page lacks %q", want)
		}
	}
}
