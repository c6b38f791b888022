package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// Windows and freezes set in the console go through the API (audited),
// show on their page, and a viewer sees them but may not change them.
func TestWindowsAndFreezesPage(t *testing.T) {
	f := newFixture(t)
	rec := f.post(t, f.cookie, "/settings/windows", url.Values{"name": {"office"}, "scope": {"application"}, "scope_name": {"web"},
		"days": {"mon", "fri"}, "start": {"09:00"}, "end": {"17:00"}, "time_zone": {"Europe/Paris"}, "mode": {"refuse"}})
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(flashOf(t, rec), "ok: Set deploy window office of application web (mon,fri 09:00-17:00 Europe/Paris)") {
		t.Fatalf("set window: %d %q", rec.Code, flashOf(t, rec))
	}
	rec = f.post(t, f.cookie, "/settings/windows", url.Values{"name": {"bad"}, "start": {"9:00"}, "end": {"10:00"}})
	if !strings.Contains(flashOf(t, rec), `error: Deploy window not set: window "bad": time "9:00" is not HH:MM`) {
		t.Errorf("a bad window: %q", flashOf(t, rec))
	}
	rec = f.post(t, f.cookie, "/settings/windows/freezes", url.Values{"scope": {"target"}, "scope_name": {"prod"}, "reason": {"incident 4711"}, "hours": {"2"}})
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(flashOf(t, rec), "ok: Froze target prod") {
		t.Fatalf("freeze: %d %q", rec.Code, flashOf(t, rec))
	}
	page := f.get(t, "/settings/windows").Body.String()
	for _, want := range []string{`data-window="office"`, "deploy window office of application web (mon,fri 09:00-17:00 Europe/Paris)", "a start is refused",
		`data-freeze="target prod"`, "incident 4711"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if len(f.audit(t, "window.put")) != 1 || len(f.audit(t, "freeze.set")) != 1 {
		t.Error("window and freeze writes are not audited")
	}
	fs, err := f.st.ListFreezes(context.Background(), store.DefaultTenant)
	if err != nil || len(fs) != 1 || time.Until(fs[0].Until) < time.Hour {
		t.Errorf("stored freezes %+v (%v), want target prod for 2 hours", fs, err)
	}

	viewer, _, _ := f.session(t, "watcher", pipeline.RoleViewer)
	page = getAs(t, f, viewer, "/settings/windows").Body.String()
	if !strings.Contains(page, `data-freeze="target prod"`) || !strings.Contains(page, `id="why-windows-write"`) {
		t.Error("a viewer does not see the freeze, or is not told why the forms are disabled")
	}
	rec = f.post(t, viewer, "/settings/windows/freezes/lift", url.Values{"scope": {"target prod"}})
	if !strings.HasPrefix(flashOf(t, rec), "error: Freeze of target prod not lifted") {
		t.Errorf("a viewer lifting a freeze: %q", flashOf(t, rec))
	}

	f.post(t, f.cookie, "/settings/windows/freezes/lift", url.Values{"scope": {"target prod"}})
	f.post(t, f.cookie, "/settings/windows/delete", url.Values{"scope": {"application web"}, "name": {"office"}})
	page = f.get(t, "/settings/windows").Body.String()
	if !strings.Contains(page, `id="no-freezes"`) || !strings.Contains(page, `id="no-windows"`) {
		t.Error("lifted and deleted, yet still listed")
	}
}

func getAs(tb testing.TB, f *fixture, cookie *http.Cookie, path string) *httptest.ResponseRecorder {
	tb.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.AddCookie(cookie)
	rec := httptest.NewRecorder()
	f.c.ServeHTTP(rec, req)
	return rec
}

// A pipeline's page shows the windows and freezes that apply to it and why
// a target is held.
func TestPipelinePageShowsWindowsAndHolds(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC) // a Sunday
	sp := spec("web")
	sp.Windows = []pipeline.Window{{Name: "office", Scope: "tenant", Days: []string{"mon"}, Start: "09:00", End: "17:00"}}
	st, err := pipeline.New("p1", sp, now)
	if err != nil {
		t.Fatal(err)
	}
	st, _, _, err = pipeline.Transition(st, pipeline.Start{By: pipeline.Principal{Name: "ci"}, Freezes: []pipeline.Freeze{{Scope: "target c", Targets: []string{"c"}, Reason: "audit"}}}, now)
	if err != nil {
		t.Fatal(err)
	}
	p := &store.Pipeline{Tenant: store.DefaultTenant, ID: "p1", Application: "web", Status: st.Status, CreatedAt: now, UpdatedAt: now, StartedBy: "ci", State: st}
	if err := f.st.CreatePipeline(ctx, p, nil, nil); err != nil {
		t.Fatal(err)
	}
	page := f.get(t, "/pipelines/p1?target=a").Body.String()
	for _, want := range []string{`data-window="office"`, "deploy window office of tenant (mon 09:00-17:00 UTC)",
		`data-freeze="target c"`, "Held by the freeze of target c: audit · holds c",
		`id="held"`, "waiting for deploy window office of tenant (mon 09:00-17:00 UTC); it opens at Mon 2026-03-02 09:00 UTC"} {
		if !strings.Contains(page, want) {
			t.Errorf("the pipeline page lacks %q", want)
		}
	}
}
