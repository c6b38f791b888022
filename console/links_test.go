package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/notify"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/secrets"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/sqlite"
)

// actingDeployments is storeDeployments whose actions go through the
// engine and the store, as the runner's do (no command runs: the test's
// pipeline waits at a gate before any).
type actingDeployments struct{ storeDeployments }

func (d actingDeployments) Act(ctx context.Context, p api.Principal, id string, ev pipeline.Event) (*store.Pipeline, error) {
	sp, err := d.st.GetPipeline(ctx, p.Tenant, id)
	if err != nil {
		return nil, err
	}
	next, _, _, err := pipeline.Transition(sp.State, ev, time.Now())
	if err != nil {
		return nil, err
	}
	sp.State, sp.Status = next, next.Status
	return sp, d.st.SavePipeline(ctx, sp, nil)
}

// TestApproveLinkAfterLogin: opening a notification's approve link sends
// a person to the login page and back; the page only asks, the
// confirmation approves as that person (audited), once; a reused or
// expired link, and a viewer, are refused with the reason.
func TestApproveLinkAfterLogin(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, dir+"/sortie.db", sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, err := auth.LoadKeys(dir + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	as, err := auth.New(auth.Options{Credentials: st, Keys: keys, Issuer: "http://sortie.test", TTL: time.Hour, Tenants: st, Audit: st})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := secrets.New(ctx, secrets.Options{Store: st, KeyPath: dir + "/master.key"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := sec.DerivedKey("notification action links")
	if err != nil {
		t.Fatal(err)
	}
	links := notify.NewLinks(key, "http://sortie.test", time.Hour)
	d := actingDeployments{storeDeployments{st}}
	apiHandler, err := api.New(api.Options{Deployments: d, Auth: as, Store: st, Notifications: st, Links: links})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Deployments: d, Auth: as, API: apiHandler})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{c: c, st: st, auth: as}

	now := time.Now()
	spec := pipeline.Spec{Application: "web", Tenant: store.DefaultTenant, Targets: []pipeline.TargetSpec{{
		Name: "prod", Account: "local", Namespace: "web",
		BeforeDeployment: []pipeline.Step{{Pause: &pipeline.Pause{UntilApproved: true}}},
		Strategy:         pipeline.Strategy{Name: "c", Canary: &pipeline.Canary{Steps: []pipeline.Step{{SetWeight: &pipeline.SetWeight{Weight: 100}}}}},
	}}}
	state, err := pipeline.New("p1", spec, now)
	if err != nil {
		t.Fatal(err)
	}
	state, _, _, err = pipeline.Transition(state, pipeline.Start{By: pipeline.Principal{Name: "ci"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	tgt := state.Target("prod")
	var step string
	for _, s := range tgt.Steps {
		if s.Status == pipeline.StatusAwaitingApproval {
			step = s.ID
		}
	}
	if step == "" {
		t.Fatalf("the test's pipeline waits for no approval: %+v", tgt)
	}
	if err := st.CreatePipeline(ctx, &store.Pipeline{Tenant: store.DefaultTenant, ID: "p1", Application: "web", Status: state.Status,
		CreatedAt: now, StartedBy: "ci", State: state}, nil, nil); err != nil {
		t.Fatal(err)
	}
	linkURL := links.New(store.DefaultTenant, "p1", "prod", step, notify.ActionApprove, now)
	path := strings.TrimPrefix(linkURL, "http://sortie.test")

	get := func(cookie *http.Cookie) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, req)
		return rec
	}
	// Not signed in: to the login page, and back here after it.
	rec := get(nil)
	if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?") || !strings.Contains(loc, url.QueryEscape(path)) {
		t.Fatalf("the link without a session: %d to %q, want the login page with next", rec.Code, loc)
	}
	deployer, cred, _ := f.session(t, "dora", pipeline.RoleDeployer)
	viewer, _, _ := f.session(t, "vic", pipeline.RoleViewer)
	rec = get(deployer)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "approve step "+step+" of target prod") || !strings.Contains(rec.Body.String(), `id="link-form"`) {
		t.Fatalf("the link's page: %d\n%s", rec.Code, rec.Body)
	}
	if sp, _ := st.GetPipeline(ctx, store.DefaultTenant, "p1"); sp.State.Target("prod").Status != pipeline.StatusAwaitingApproval {
		t.Fatal("opening the link changed the pipeline")
	}

	rec = f.post(t, viewer, path, url.Values{})
	if fl := flashOf(t, rec); !strings.HasPrefix(fl, "error: Refused") {
		t.Errorf("a viewer's confirmation: flash %q, want refused", fl)
	}
	rec = f.post(t, deployer, path, url.Values{})
	if fl := flashOf(t, rec); fl != "ok: Approved prod "+step+"." || rec.Header().Get("Location") != "/pipelines/p1" {
		t.Fatalf("the deployer's confirmation: flash %q, to %q", fl, rec.Header().Get("Location"))
	}
	sp, err := st.GetPipeline(ctx, store.DefaultTenant, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if len(sp.State.History) == 0 || sp.State.History[len(sp.State.History)-1].Action != "approve" || sp.State.History[len(sp.State.History)-1].By != cred.Name {
		t.Errorf("history after the link: %+v, want an approval by %s", sp.State.History, cred.Name)
	}
	if es := f.audit(t, "pipeline.approve"); len(es) != 1 || es[0].ClientID != cred.ClientID {
		t.Errorf("audit: %+v, want one approval by the deployer", es)
	}
	rec = f.post(t, deployer, path, url.Values{})
	if fl := flashOf(t, rec); !strings.Contains(fl, "used already") {
		t.Errorf("a second use: flash %q, want used already", fl)
	}
	expired := strings.TrimPrefix(links.New(store.DefaultTenant, "p1", "prod", step, notify.ActionApprove, now.Add(-2*time.Hour)), "http://sortie.test")
	rec = f.post(t, deployer, expired, url.Values{})
	if fl := flashOf(t, rec); !strings.Contains(fl, "expired") {
		t.Errorf("an expired link: flash %q, want expired", fl)
	}
}

// TestNotificationsPage: readers see the subscriptions, admins also the
// deliveries with why they failed; a viewer is told why not.
func TestNotificationsPage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.st.CreateSubscription(ctx, store.Subscription{Tenant: store.DefaultTenant, ID: "ops", Application: "web",
		Events: []string{notify.EventFailed}, SinkType: notify.SinkSlack, Sink: []byte(`{"urlSecret":"slack-url"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := f.st.Enqueue(ctx, store.DefaultTenant, "", 0, []store.OutboxMessage{{Key: "k1", Subscription: "ops", Kind: notify.EventFailed}}); err != nil {
		t.Fatal(err)
	}
	list, err := f.st.ListDeliveries(ctx, store.DefaultTenant, "", 0)
	if err != nil || len(list) != 1 {
		t.Fatal(list, err)
	}
	m := list[0]
	m.Status, m.Attempts, m.LastError = store.OutboxFailed, 8, "POST ****** answered 503 Service Unavailable"
	if err := f.st.RecordDelivery(ctx, m); err != nil {
		t.Fatal(err)
	}
	page := func(cookie *http.Cookie) string {
		req := httptest.NewRequest("GET", "/settings/notifications", nil)
		req.AddCookie(cookie)
		rec := httptest.NewRecorder()
		f.c.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("notifications page: %d %s", rec.Code, rec.Body)
		}
		return rec.Body.String()
	}
	admin := page(f.cookie)
	for _, want := range []string{`data-subscription="ops"`, "slack-url", `data-status="failed"`, "answered 503", `data-action="delete-subscription"`} {
		if !strings.Contains(admin, want) {
			t.Errorf("the admin's page lacks %q", want)
		}
	}
	viewer, _, _ := f.session(t, "vic", pipeline.RoleViewer)
	vp := page(viewer)
	if !strings.Contains(vp, `data-subscription="ops"`) || !strings.Contains(vp, `id="deliveries-refused"`) || strings.Contains(vp, "answered 503") {
		t.Errorf("the viewer's page shows the subscriptions, not the deliveries:\n%s", vp)
	}
}
