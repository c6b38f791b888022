package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// post sends a console form with the session's CSRF token, as the page's
// own form would.
func (f *fixture) post(tb testing.TB, cookie *http.Cookie, path string, form url.Values) *httptest.ResponseRecorder {
	tb.Helper()
	form.Set(csrfField, newSession(auth.Principal{}, cookie.Value).CSRF)
	req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(cookie)
	rec := httptest.NewRecorder()
	f.c.ServeHTTP(rec, req)
	return rec
}

// session makes a credential with roles and returns a session cookie of
// it and its secret.
func (f *fixture) session(tb testing.TB, name string, roles ...string) (*http.Cookie, store.Credential, string) {
	tb.Helper()
	cred, secret, err := f.auth.CreateCredential(context.Background(), store.DefaultTenant, name, roles)
	if err != nil {
		tb.Fatal(err)
	}
	tok, err := f.auth.Issue(&cred)
	if err != nil {
		tb.Fatal(err)
	}
	return &http.Cookie{Name: sessionCookie, Value: tok.AccessToken}, cred, secret
}

func (f *fixture) audit(tb testing.TB, action string) []store.AuditEntry {
	tb.Helper()
	es, err := f.st.ListAudit(context.Background(), store.DefaultTenant, store.AuditFilter{Action: action})
	if err != nil {
		tb.Fatal(err)
	}
	return es
}

func flashOf(tb testing.TB, rec *httptest.ResponseRecorder) string {
	tb.Helper()
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == flashCookie {
			r := httptest.NewRequest("GET", "/", nil)
			r.AddCookie(ck)
			if fl := takeFlash(httptest.NewRecorder(), r); fl != nil {
				return fl.Kind + ": " + fl.Message
			}
		}
	}
	return ""
}

func TestTargetDetailShowsAnalysisWebhookCallsAndObjects(t *testing.T) {
	f := newFixture(t)
	id := f.seed(t, 1)
	page := f.get(t, "/pipelines/"+id+"?target=a").Body.String()
	for _, want := range []string{
		`<tr data-verdict="fail" data-query="error-rate">`,
		`<td data-label="Run">10/10</td>`,
		`<td data-label="Value" data-col="value">0.2</td>`,
		`<td data-label="Upper limit" data-col="upper">0.01</td>`,
		`<td data-label="Lower limit" data-col="lower">–</td>`,
		`<span class="verdict v-fail">fail</span>`,
		`<code>sum(rate(http_errors{app=&#34;web&#34;}[1m])) &lt; 0.01</code>`,
		`data-webhook="smoke"`, "Authorization: Bearer ******",
		`<tr data-object="Deployment/web-canary">`, `<tr data-object="ConfigMap/web-settings">`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("target detail lacks %q", want)
		}
	}
	if n := strings.Count(page, `data-verdict="pass"`); n != 9 {
		t.Errorf("%d passing runs shown, want 9", n)
	}
	// Another target's detail shows none of a's reports.
	b := f.get(t, "/pipelines/"+id+"?target=b").Body.String()
	if strings.Contains(b, "data-verdict") || strings.Contains(b, "web-canary") || !strings.Contains(b, `id="objects-none"`) {
		t.Error("target b shows target a's reports")
	}
}

// TestConsoleWritesGoThroughTheAPIAndAreAudited: secrets, providers,
// credentials and their roles, written by forms, land in the store through
// the API, each with its audit entry; a secret's value is never shown.
func TestConsoleWritesGoThroughTheAPIAndAreAudited(t *testing.T) {
	f := newFixture(t)
	const value = "s3cr3t-value-never-shown"
	rec := f.post(t, f.cookie, "/settings/secrets", url.Values{"name": {"SLACK_TOKEN"}, "value": {value}, "allowed_hosts": {"hooks.slack.com, *.slack.com"}})
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(flashOf(t, rec), "ok: Stored secret SLACK_TOKEN") {
		t.Fatalf("set secret: %d %q", rec.Code, flashOf(t, rec))
	}
	page := f.get(t, "/settings/secrets").Body.String()
	if !strings.Contains(page, `data-secret="SLACK_TOKEN"`) || strings.Contains(page, value) || strings.Contains(rec.Body.String(), value) {
		t.Error("the secrets page does not list the name, or shows the value")
	}
	if !strings.Contains(page, "hooks.slack.com, *.slack.com") {
		t.Error("the secrets page does not show the allowed hosts")
	}
	// A new value keeps the hosts; "any host" lifts them.
	f.post(t, f.cookie, "/settings/secrets", url.Values{"name": {"SLACK_TOKEN"}, "value": {value}})
	if page := f.get(t, "/settings/secrets").Body.String(); !strings.Contains(page, "hooks.slack.com, *.slack.com") {
		t.Error("a new value dropped the allowed hosts")
	}
	f.post(t, f.cookie, "/settings/secrets", url.Values{"name": {"SLACK_TOKEN"}, "value": {value}, "any_host": {"1"}})
	if page := f.get(t, "/settings/secrets").Body.String(); strings.Contains(page, "*.slack.com") || !strings.Contains(page, `class="mono">any</td>`) {
		t.Error("any host did not lift the allowed hosts")
	}
	rec = f.post(t, f.cookie, "/settings/secrets", url.Values{"name": {"BAD"}, "value": {value}, "allowed_hosts": {"https://hooks.slack.com/x"}})
	if got := flashOf(t, rec); !strings.HasPrefix(got, "error: Secret BAD not stored") || !strings.Contains(got, "not a URL") || strings.Contains(got, value) {
		t.Errorf("a URL as an allowed host: %q", got)
	}
	if es := f.audit(t, "secret.put"); len(es) != 3 || es[0].Actor != "bench admin" || es[0].Objects[0] != "SLACK_TOKEN" {
		t.Errorf("audit of secret.put: %+v", es)
	}
	f.post(t, f.cookie, "/settings/secrets/SLACK_TOKEN/delete", url.Values{})
	if es := f.audit(t, "secret.delete"); len(es) != 1 {
		t.Errorf("audit of secret.delete: %+v", es)
	}

	rec = f.post(t, f.cookie, "/settings/providers", url.Values{"name": {"prom"}, "type": {"prometheus"}, "url": {"http://prometheus.monitoring:9090"}, "auth": {"bearer"}, "token_secret": {"PROM_TOKEN"}})
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("add provider: %d %s", rec.Code, rec.Body.String())
	}
	page = f.get(t, "/settings/providers").Body.String()
	if !strings.Contains(page, `data-provider="prom"`) || !strings.Contains(page, "PROM_TOKEN") {
		t.Error("providers page lacks the new provider")
	}
	rec = f.post(t, f.cookie, "/settings/providers", url.Values{"name": {"bad"}, "type": {"prometheus"}})
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `id="provider-error"`) {
		t.Errorf("a provider without its address: %d", rec.Code)
	}
	f.post(t, f.cookie, "/settings/providers/prom/delete", url.Values{})
	if len(f.audit(t, "provider.create")) != 1 || len(f.audit(t, "provider.delete")) != 1 {
		t.Error("provider writes are not audited")
	}

	rec = f.post(t, f.cookie, "/settings/credentials", url.Values{"name": {"ci"}, "roles": {"deployer"}})
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `id="new-client-secret"`) {
		t.Fatalf("create credential: %d", rec.Code)
	}
	created := f.audit(t, "credential.create")
	if len(created) != 1 {
		t.Fatalf("audit of credential.create: %+v", created)
	}
	ci := created[0].Objects[0]
	// A custom role is given only once it is defined in the tenant.
	rec = f.post(t, f.cookie, "/settings/credentials/"+ci+"/roles", url.Values{"roles": {"deployer, release-manager"}})
	if got := flashOf(t, rec); !strings.Contains(got, `role "release-manager" is not defined in tenant main`) {
		t.Errorf("assign an undefined role: %q", got)
	}
	if err := f.st.PutRole(context.Background(), store.Role{Tenant: store.DefaultTenant, Name: "release-manager", Grants: []string{"read", "approve"}}); err != nil {
		t.Fatal(err)
	}
	rec = f.post(t, f.cookie, "/settings/credentials/"+ci+"/roles", url.Values{"roles": {"deployer, release-manager"}})
	if got := flashOf(t, rec); !strings.Contains(got, "now has roles deployer, release-manager") {
		t.Errorf("assign roles: %q", got)
	}
	users := f.get(t, "/settings/users").Body.String()
	for _, want := range []string{`<tr data-role="organization-admin"><td class="mono">organization-admin</td><td>read, deploy, approve, admin, organization</td>`, `data-role="release-manager"`, `value="deployer, release-manager"`} {
		if !strings.Contains(users, want) {
			t.Errorf("users page lacks %q", want)
		}
	}
	f.post(t, f.cookie, "/settings/credentials/"+ci+"/delete", url.Values{})
	if len(f.audit(t, "credential.roles")) != 1 || len(f.audit(t, "credential.delete")) != 1 {
		t.Error("credential writes are not audited")
	}
	audit := f.get(t, "/settings/audit?action=secret.put").Body.String()
	if !strings.Contains(audit, `<tr data-action="secret.put"`) || strings.Contains(audit, `<tr data-action="provider.create"`) {
		t.Error("the audit page does not filter by action")
	}
	if body := f.get(t, "/settings/audit?since=yesterday").Body.String(); !strings.Contains(body, `id="audit-error"`) {
		t.Error("a bad time is not refused")
	}
}

// TestViewersAreRefusedWithTheReason: the pages say why, the buttons are
// disabled, and a forged POST is refused by the API and audited as denied.
func TestViewersAreRefusedWithTheReason(t *testing.T) {
	f := newFixture(t)
	viewer, _, _ := f.session(t, "dashboard", pipeline.RoleViewer)
	for path, want := range map[string]string{
		"/settings/secrets":   `id="secrets-refused"`,
		"/settings/audit":     `id="audit-refused"`,
		"/settings/users":     `id="roles-refused"`,
		"/settings/tenant":    `id="tenant-refused"`,
		"/settings/providers": `disabled aria-describedby="why-provider-write"`,
	} {
		req := httptest.NewRequest("GET", path, nil)
		req.AddCookie(viewer)
		rec := httptest.NewRecorder()
		f.c.ServeHTTP(rec, req)
		body := rec.Body.String()
		if !strings.Contains(body, want) || !strings.Contains(body, "viewer") {
			t.Errorf("%s as a viewer lacks %q or the viewer's roles", path, want)
		}
		if strings.Contains(body, `id="switch-tenant"`) {
			t.Errorf("%s offers a viewer the tenant switch", path)
		}
	}
	rec := f.post(t, viewer, "/settings/secrets", url.Values{"name": {"X"}, "value": {"y"}})
	if got := flashOf(t, rec); !strings.HasPrefix(got, "error:") {
		t.Errorf("a viewer's secret write: %q", got)
	}
	if es := f.audit(t, "secret.put"); len(es) != 0 {
		t.Errorf("a refused write is audited as done: %+v", es)
	}
	if es := f.audit(t, "denied"); len(es) != 1 || es[0].Objects[0] != "PUT /api/v1/secrets/{name}" {
		t.Errorf("the refused write is not audited as denied: %+v", es)
	}
}

// TestOrganizationAdminSwitchesTenant: the switch asks the token endpoint
// for a token of the other tenant with the client secret, and the new
// session acts there.
func TestOrganizationAdminSwitchesTenant(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.st.CreateTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	admin, cred, secret := f.session(t, "org", pipeline.RoleOrganizationAdmin)
	req := httptest.NewRequest("GET", "/settings/tenant", nil)
	req.AddCookie(admin)
	rec := httptest.NewRecorder()
	f.c.ServeHTTP(rec, req)
	if body := rec.Body.String(); !strings.Contains(body, `<option value="acme"`) || !strings.Contains(body, `id="switch-tenant"`) {
		t.Fatalf("tenant page lacks the tenants or the switch:\n%s", body)
	}
	if rec := f.post(t, admin, "/settings/tenant", url.Values{"tenant": {"acme"}, "client_secret": {"wrong"}}); rec.Code != http.StatusUnauthorized {
		t.Errorf("a wrong secret: %d", rec.Code)
	}
	rec = f.post(t, admin, "/settings/tenant", url.Values{"tenant": {"acme"}, "client_secret": {secret}})
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("switch: %d %s", rec.Code, rec.Body.String())
	}
	var next *http.Cookie
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == sessionCookie {
			next = ck
		}
	}
	p, err := f.auth.Verify(next.Value)
	if err != nil || p.Tenant != "acme" || p.ClientID != cred.ClientID {
		t.Fatalf("the new session is %+v (%v), want %s in acme", p, err, cred.ClientID)
	}
	logins, err := f.st.ListAudit(ctx, "acme", store.AuditFilter{Action: "login"})
	if err != nil || len(logins) != 1 {
		t.Errorf("the switch is not audited in acme as a login: %+v %v", logins, err)
	}
}
