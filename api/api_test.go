package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/deployfile"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/sqlite"
)

const otherTenant = "other"

// harness is a real API handler on a real SQLite store (credentials) and
// real tokens, in front of the fake runner.
type harness struct {
	t      *testing.T
	srv    *httptest.Server
	runner *fakeRunner
	auth   *auth.Service
	store  *sqlite.Store
	logs   *syncBuffer
	now    time.Time
}

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

func newHarness(t *testing.T, edit ...func(*api.Options)) *harness {
	t.Helper()
	return newHarnessAuth(t, auth.Options{}, edit...)
}

// newHarnessAuth is newHarness with the token service's options ao (its
// store, keys, issuer and clock are the harness's).
func newHarnessAuth(t *testing.T, ao auth.Options, edit ...func(*api.Options)) *harness {
	t.Helper()
	h := &harness{t: t, runner: newFakeRunner(), logs: &syncBuffer{}, now: time.Now()}
	var err error
	h.store, err = sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sortie.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.store.Close() })
	if err := h.store.CreateTenant(t.Context(), otherTenant); err != nil {
		t.Fatal(err)
	}
	ks, err := auth.LoadKeys(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	ao.Credentials, ao.Users, ao.Keys, ao.Issuer, ao.Now = h.store, h.store, ks, "http://sortie.test", func() time.Time { return h.now }
	h.auth, err = auth.New(ao)
	if err != nil {
		t.Fatal(err)
	}
	o := api.Options{
		Deployments: h.runner,
		Auth:        h.auth,
		Logger:      slog.New(slog.NewTextHandler(h.logs, nil)),
		Metrics:     prometheus.NewRegistry(),
		Store:       h.store,
		// The notification routes keep their rows in the same store.
		Notifications: h.store,
	}
	for _, e := range edit {
		e(&o)
	}
	handler, err := api.New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(handler)
	t.Cleanup(h.srv.Close)
	return h
}

// token returns a valid token of a new credential of tenant with roles.
// The credential is stored (with a placeholder hash: these tests never use
// its secret) so that credential routes see it.
func (h *harness) token(tenant string, roles ...string) (string, store.Credential) {
	h.t.Helper()
	c := store.Credential{Tenant: tenant, ClientID: "c-" + strings.Join(roles, "-") + "-" + tenant + "-" + randSuffix(), Name: strings.Join(roles, "+"), SecretHash: []byte("-"), Roles: roles}
	if err := h.store.CreateCredential(h.t.Context(), c); err != nil {
		h.t.Fatal(err)
	}
	tok, err := h.auth.Issue(&c)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok.AccessToken, c
}

var suffix struct {
	mu sync.Mutex
	n  int
}

func randSuffix() string {
	suffix.mu.Lock()
	defer suffix.mu.Unlock()
	suffix.n++
	return string(rune('a'+suffix.n%26)) + strings.Repeat("x", suffix.n/26)
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) errors(t *testing.T) api.ErrorResponse {
	t.Helper()
	var e api.ErrorResponse
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.ErrorID == "" || len(e.Errors) == 0 {
		t.Fatalf("not an error envelope (%v): %s", err, r.body)
	}
	return e
}

// do sends a request; body is JSON-encoded unless it is a string.
func (h *harness) do(method, path, token string, body any, header ...string) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	if rd != nil {
		header = append([]string{"Content-Type", "application/json"}, header...)
	}
	resp := h.send(h.t.Context(), method, path, token, rd, header...)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// send sends a request with the token (if any) and the header pairs.
func (h *harness) send(ctx context.Context, method, path, token string, body io.Reader, header ...string) *http.Response {
	h.t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, h.srv.URL+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

const sourceText = "version: v1\nkind: kubernetes\napplication: shop\n# SOURCE-MARKER\n"

// samplePipeline is a pipeline of two targets, prod depending on staging.
func samplePipeline(tenant, id string, created time.Time) *store.Pipeline {
	spec := pipeline.Spec{Application: "shop", Tenant: tenant, Targets: []pipeline.TargetSpec{
		{Name: "staging", Account: "dev-cluster", Namespace: "shop", Strategy: pipeline.Strategy{Name: "canary-fast"}},
		{Name: "prod", Account: "prod-cluster", Namespace: "shop", DependsOn: []string{"staging"}},
	}}
	return &store.Pipeline{
		Tenant: tenant, ID: id, Application: "shop", Status: pipeline.StatusAwaitingApproval,
		CreatedAt: created, UpdatedAt: created.Add(time.Minute), StartedBy: "ci", Version: 7,
		State: pipeline.State{
			ID: id, Spec: spec, Status: pipeline.StatusAwaitingApproval, CreatedAt: created, StartedAt: created,
			Targets: []pipeline.TargetState{
				{Name: "staging", Status: pipeline.StatusAwaitingApproval, RequestedWeight: 25, AchievedWeight: 25, Steps: []pipeline.StepState{
					{ID: "canary/0", Kind: pipeline.KindSetWeight, Group: pipeline.GroupCanary, Status: pipeline.StatusSucceeded},
					{ID: "canary/1", Kind: pipeline.KindApproval, Group: pipeline.GroupCanary, Index: 1, Stage: 1, Status: pipeline.StatusAwaitingApproval, Message: "waiting for approval"},
				}},
				{Name: "prod", Status: pipeline.StatusQueued, Steps: []pipeline.StepState{
					{ID: "finalize", Kind: pipeline.KindFinalize, Group: pipeline.GroupFinalize, Index: -1, Status: pipeline.StatusQueued},
				}},
			},
		},
		Source: store.Source{FileName: "deploy.yml", File: sourceText, Manifests: map[string]string{"app.yaml": "kind: Deployment\n"}},
	}
}

func TestRoutesMatchOpenAPI(t *testing.T) {
	documented := openAPIRoutes(t, "../docs/openapi.yaml")
	served := map[string]bool{}
	for _, r := range api.Routes() {
		served[r.Method+" "+r.Path] = true
	}
	for r := range served {
		if !documented[r] {
			t.Errorf("%s is served but not in docs/openapi.yaml", r)
		}
	}
	for r := range documented {
		if !served[r] {
			t.Errorf("%s is in docs/openapi.yaml but not served", r)
		}
	}
}

func TestEveryAPIRouteNeedsAToken(t *testing.T) {
	h := newHarness(t)
	expired := func() string {
		tok, _ := h.token(store.DefaultTenant, pipeline.RoleOrganizationAdmin)
		return tok
	}()
	h.now = h.now.Add(auth.DefaultTTL + time.Hour)
	// A token signed by another server: right claims, wrong key.
	foreign := newHarness(t)
	foreignToken, _ := foreign.token(store.DefaultTenant, pipeline.RoleOrganizationAdmin)

	for _, r := range api.Routes() {
		if !strings.HasPrefix(r.Path, api.Prefix) {
			if r.Authenticated {
				t.Errorf("%s %s outside the API needs a token", r.Method, r.Path)
			}
			continue
		}
		if !r.Authenticated {
			t.Errorf("%s %s needs no token", r.Method, r.Path)
		}
		path := strings.ReplaceAll(r.Path, "{id}", "p1")
		for name, authz := range map[string]string{
			"missing":         "",
			"malformed":       "Bearer not.a.jwt",
			"wrong scheme":    "Basic dXNlcjpwYXNz",
			"expired":         "Bearer " + expired,
			"wrong signature": "Bearer " + foreignToken,
		} {
			resp := h.do(r.Method, path, "", nil, "Authorization", authz)
			if resp.status != http.StatusUnauthorized || !strings.HasPrefix(resp.header.Get("WWW-Authenticate"), `Bearer realm="sortie"`) {
				t.Errorf("%s %s, %s token: %d %q", r.Method, path, name, resp.status, resp.header.Get("WWW-Authenticate"))
				continue
			}
			if e := resp.errors(t); e.Errors[0].Code != api.CodeUnauthorized {
				t.Errorf("%s %s, %s token: %+v", r.Method, path, name, e)
			}
		}
	}
	if len(h.runner.acted)+len(h.runner.started) != 0 {
		t.Error("an unauthenticated request reached the runner")
	}
}

func TestOtherTenantsPipelinesAreNotFound(t *testing.T) {
	h := newHarness(t)
	h.runner.add(samplePipeline(store.DefaultTenant, "p1", time.Now()))
	h.runner.record(store.Event{Tenant: store.DefaultTenant, Pipeline: "p1", Seq: 1, Type: "started"})
	tok, _ := h.token(otherTenant, pipeline.RoleOrganizationAdmin)
	for _, rt := range []struct{ method, path string }{
		{"GET", "/api/v1/pipelines/p1"},
		{"GET", "/api/v1/pipelines/p1/source"},
		{"GET", "/api/v1/pipelines/p1/events"},
		{"POST", "/api/v1/pipelines/p1/approve"},
		{"POST", "/api/v1/pipelines/p1/skip"},
		{"POST", "/api/v1/pipelines/p1/rollback"},
		{"POST", "/api/v1/pipelines/p1/cancel"},
		{"POST", "/api/v1/pipelines/p1/redeploy"},
	} {
		resp := h.do(rt.method, rt.path, tok, nil)
		if resp.status != http.StatusNotFound || resp.errors(t).Errors[0].Code != api.CodeNotFound {
			t.Errorf("%s %s from another tenant: %d %s", rt.method, rt.path, resp.status, resp.body)
		}
		if bytes.Contains(resp.body, []byte("shop")) {
			t.Errorf("%s %s leaks: %s", rt.method, rt.path, resp.body)
		}
	}
	resp := h.do("GET", "/api/v1/pipelines/p1/events", tok, nil, "Accept", "text/event-stream")
	if resp.status != http.StatusNotFound {
		t.Errorf("event stream of another tenant's pipeline: %d", resp.status)
	}
	resp = h.do("GET", "/api/v1/pipelines", tok, nil)
	var list api.PipelineList
	if err := json.Unmarshal(resp.body, &list); err != nil || resp.status != 200 || len(list.Pipelines) != 0 {
		t.Errorf("list of the other tenant: %d %s", resp.status, resp.body)
	}
	if len(h.runner.acted) != 0 {
		t.Errorf("acted on another tenant's pipeline: %v", h.runner.acted)
	}
}

func TestRoles(t *testing.T) {
	h := newHarness(t)
	h.runner.add(samplePipeline(store.DefaultTenant, "p1", time.Now()))
	h.runner.startResult = api.StartResult{PipelineID: "p2", Status: pipeline.StatusRunning}
	start := api.StartRequest{FileName: "deploy.yml", File: sourceText}
	// Custom roles give what they are defined with, approve included only
	// when defined so; an undefined (say, misspelt) role gives nothing.
	for name, grants := range map[string][]string{"qa": {"approve"}, "auditor": {"read"}} {
		if err := h.store.PutRole(t.Context(), store.Role{Tenant: store.DefaultTenant, Name: name, Grants: grants}); err != nil {
			t.Fatal(err)
		}
	}
	tokens := map[string]string{}
	for _, role := range []string{"viewer", "deployer", "tenant-admin", "organization-admin", "agent", "qa", "auditor", "relase-manager"} {
		tokens[role], _ = h.token(store.DefaultTenant, role)
	}
	type call struct {
		method, path string
		body         any
	}
	calls := map[string]call{
		"read":     {"GET", "/api/v1/pipelines/p1", nil},
		"list":     {"GET", "/api/v1/pipelines", nil},
		"start":    {"POST", "/api/v1/pipelines", start},
		"approve":  {"POST", "/api/v1/pipelines/p1/approve", nil},
		"cancel":   {"POST", "/api/v1/pipelines/p1/cancel", nil},
		"redeploy": {"POST", "/api/v1/pipelines/p1/redeploy", nil},
		"creds":    {"GET", "/api/v1/credentials", nil},
	}
	allowed := map[string][]string{
		"viewer":             {"read", "list"},
		"deployer":           {"read", "list", "start", "approve", "cancel", "redeploy"},
		"tenant-admin":       {"read", "list", "start", "approve", "cancel", "redeploy", "creds"},
		"organization-admin": {"read", "list", "start", "approve", "cancel", "redeploy", "creds"},
		"agent":              {},
		// A custom role defined with approve may approve the gates that
		// require it (the engine decides which), and does nothing else.
		"qa":             {"approve"},
		"auditor":        {"read", "list"},
		"relase-manager": {},
	}
	for role, tok := range tokens {
		for name, c := range calls {
			want := slicesContains(allowed[role], name)
			resp := h.do(c.method, c.path, tok, c.body)
			if got := resp.status < 300; got != want {
				t.Errorf("%s %s: %d %s", role, name, resp.status, resp.body)
			}
			if !want && (resp.status != http.StatusForbidden || resp.errors(t).Errors[0].Code != api.CodeForbidden) {
				t.Errorf("%s %s: %d, want 403", role, name, resp.status)
			}
		}
	}
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestStart(t *testing.T) {
	h := newHarness(t)
	tok, c := h.token(store.DefaultTenant, pipeline.RoleDeployer)
	h.runner.startResult = api.StartResult{PipelineID: "p9", Status: pipeline.StatusQueued, Queued: true, Warnings: []string{"deploy.yml:3:1: unused strategy"}}
	req := api.StartRequest{FileName: "deploy.yml", File: sourceText, Manifests: map[string]string{"manifests/app.yaml": "kind: Deployment"},
		Context: map[string]string{"version": "v2"}, Targets: []string{"staging"}, Application: "shop-eu"}
	resp := h.do("POST", "/api/v1/pipelines", tok, req)
	if resp.status != http.StatusAccepted || resp.header.Get("Location") != "/api/v1/pipelines/p9" {
		t.Fatalf("%d %v %s", resp.status, resp.header, resp.body)
	}
	var res api.StartResult
	json.Unmarshal(resp.body, &res)
	if diff := cmp.Diff(h.runner.startResult, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]api.StartRequest{req}, h.runner.started); diff != "" {
		t.Errorf("request the runner got (-want +got):\n%s", diff)
	}
	if p := h.runner.by[0]; p.ClientID != c.ClientID || p.Tenant != store.DefaultTenant {
		t.Errorf("principal %+v", p)
	}
	// The body is camelCase as documented.
	var raw map[string]any
	json.Unmarshal(resp.body, &raw)
	if _, ok := raw["pipelineId"]; !ok {
		t.Errorf("body %s", resp.body)
	}
}

func TestStartErrors(t *testing.T) {
	h := newHarness(t)
	tok, _ := h.token(store.DefaultTenant, pipeline.RoleDeployer)
	valid := api.StartRequest{FileName: "deploy.yml", File: sourceText}
	problems := deployfile.Problems{
		{Pos: deployfile.Pos{File: "deploy.yml", Line: 3, Col: 5}, Code: deployfile.CodeUnknownKey, Message: `unknown key "strategys"`},
		{Pos: deployfile.Pos{File: "deploy.yml", Line: 9, Col: 1}, Code: deployfile.CodeUnknownRef, Message: `strategy "canry" is not defined`},
		{Pos: deployfile.Pos{File: "manifests/app.yaml", Line: 1, Col: 1}, Code: deployfile.CodeManifest, Message: "not a Kubernetes object"},
	}
	for name, tc := range map[string]struct {
		runnerErr error
		body      any
		header    []string
		status    int
		want      []api.ErrorEntry // without messages when nil Message
	}{
		"every problem": {runnerErr: fmtWrap(problems), body: valid, status: 400, want: []api.ErrorEntry{
			{Message: `unknown key "strategys"`, Code: "unknown-key", File: "deploy.yml", Line: 3, Column: 5},
			{Message: `strategy "canry" is not defined`, Code: "unknown-reference", File: "deploy.yml", Line: 9, Column: 1},
			{Message: "not a Kubernetes object", Code: "invalid-manifest", File: "manifests/app.yaml", Line: 1, Column: 1},
		}},
		"in progress": {runnerErr: &pipeline.Error{Code: pipeline.CodeConflict, Message: "application shop already has a deployment in progress (pipeline p1)"}, body: valid, status: 409,
			want: []api.ErrorEntry{{Message: "application shop already has a deployment in progress (pipeline p1)", Code: "conflict"}}},
		"in progress, named": {runnerErr: &api.Error{Status: 409, Code: api.CodeConflict, Message: "in progress", Pipeline: "p1"}, body: valid, status: 409,
			want: []api.ErrorEntry{{Message: "in progress", Code: "conflict", Pipeline: "p1"}}},
		"unknown account": {runnerErr: &api.Error{Status: 422, Code: api.CodeUnprocessable, Message: "no agent is registered as account prod-cluster"}, body: valid, status: 422,
			want: []api.ErrorEntry{{Message: "no agent is registered as account prod-cluster", Code: "unprocessable"}}},
		"engine refusal": {runnerErr: &pipeline.Error{Code: pipeline.CodeInvalid, Message: "target filter names no target"}, body: valid, status: 400},
		"unknown field":  {body: `{"file": "x", "fil": "y"}`, status: 400, want: []api.ErrorEntry{{Message: `invalid JSON body: unknown field "fil"`, Code: "invalid"}}},
		"wrong type":     {body: `{"file": 3}`, status: 400, want: []api.ErrorEntry{{Message: "invalid JSON body: file must be a string, not number", Code: "invalid"}}},
		"not JSON":       {body: `file: x`, status: 400},
		"two values":     {body: `{"file": "x"} {}`, status: 400},
		"no body":        {body: "", status: 400},
		"empty file":     {body: api.StartRequest{FileName: "deploy.yml"}, status: 400},
		"empty target":   {body: api.StartRequest{File: "x", Targets: []string{""}}, status: 400},
		"form body":      {body: "file=x", header: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 415},
		"too large":      {body: api.StartRequest{File: strings.Repeat("x", api.MaxStartBytes)}, status: 413},
	} {
		t.Run(name, func(t *testing.T) {
			h.runner.err = tc.runnerErr
			resp := h.do("POST", "/api/v1/pipelines", tok, tc.body, tc.header...)
			if resp.status != tc.status {
				t.Fatalf("%d %s, want %d", resp.status, resp.body, tc.status)
			}
			e := resp.errors(t)
			if tc.want != nil {
				if diff := cmp.Diff(tc.want, e.Errors); diff != "" {
					t.Errorf("errors (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func fmtWrap(err error) error { return errors.Join(errors.New("runner: validate"), err) }

func TestServerErrorsAreGenericAndLogged(t *testing.T) {
	h := newHarness(t)
	tok, _ := h.token(store.DefaultTenant, pipeline.RoleViewer)
	h.runner.err = errors.New("sqlite: disk I/O error at /var/lib/sortie/sortie.db")
	resp := h.do("GET", "/api/v1/pipelines/p1", tok, nil)
	if resp.status != http.StatusInternalServerError {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
	e := resp.errors(t)
	if bytes.Contains(resp.body, []byte("sqlite")) || e.Errors[0].Code != api.CodeInternal {
		t.Errorf("body leaks internals: %s", resp.body)
	}
	if logs := h.logs.String(); !strings.Contains(logs, e.ErrorID) || !strings.Contains(logs, "disk I/O error") {
		t.Errorf("the log does not hold error %s: %s", e.ErrorID, logs)
	}
	h.runner.err = store.ErrConflict
	if resp := h.do("GET", "/api/v1/pipelines/p1", tok, nil); resp.status != http.StatusConflict {
		t.Errorf("store.ErrConflict: %d", resp.status)
	}
}

func TestListFilters(t *testing.T) {
	h := newHarness(t)
	tok, _ := h.token(store.DefaultTenant, pipeline.RoleViewer)
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	h.runner.add(samplePipeline(store.DefaultTenant, "p1", t0))
	h.runner.add(samplePipeline(store.DefaultTenant, "p2", t0.Add(time.Hour)))

	q := url.Values{"application": {"shop"}, "status": {"running,paused", "FAILED"}, "since": {"2026-05-01T00:00:00Z"}, "until": {"2026-05-02T00:00:00+02:00"}, "limit": {"5"}}
	resp := h.do("GET", "/api/v1/pipelines?"+q.Encode(), tok, nil)
	if resp.status != 200 {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
	want := store.Filter{Application: "shop", Statuses: []pipeline.Status{"RUNNING", "PAUSED", "FAILED"},
		CreatedAfter: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), CreatedBefore: time.Date(2026, 5, 1, 22, 0, 0, 0, time.UTC), Limit: 5}
	got := h.runner.filters[0]
	if !got.CreatedAfter.Equal(want.CreatedAfter) || !got.CreatedBefore.Equal(want.CreatedBefore) {
		t.Errorf("times %v %v", got.CreatedAfter, got.CreatedBefore)
	}
	got.CreatedAfter, got.CreatedBefore, want.CreatedAfter, want.CreatedBefore = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("filter (-want +got):\n%s", diff)
	}
	var list api.PipelineList
	json.Unmarshal(resp.body, &list)
	if len(list.Pipelines) != 2 || list.Pipelines[0].ID != "p2" || len(list.Pipelines[0].Targets) != 2 || bytes.Contains(resp.body, []byte("SOURCE-MARKER")) {
		t.Errorf("list %s", resp.body)
	}

	for _, bad := range []string{"status=DONE", "since=yesterday", "until=2026-05-01", "limit=0", "limit=5000", "limit=ten", "app=shop"} {
		resp := h.do("GET", "/api/v1/pipelines?"+bad, tok, nil)
		if resp.status != 400 || resp.errors(t).Errors[0].Code != api.CodeInvalid {
			t.Errorf("%s: %d %s", bad, resp.status, resp.body)
		}
	}
}

func TestGetPipelineAndSource(t *testing.T) {
	h := newHarness(t)
	tok, _ := h.token(store.DefaultTenant, pipeline.RoleViewer)
	sp := samplePipeline(store.DefaultTenant, "p1", time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	h.runner.add(sp)
	resp := h.do("GET", "/api/v1/pipelines/p1", tok, nil)
	if resp.status != 200 {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
	if bytes.Contains(resp.body, []byte("SOURCE-MARKER")) || bytes.Contains(resp.body, []byte("kind: Deployment")) {
		t.Errorf("the pipeline view holds the source: %s", resp.body)
	}
	var v map[string]any
	json.Unmarshal(resp.body, &v)
	for _, k := range []string{"id", "application", "status", "startedBy", "createdAt", "updatedAt", "version", "targets", "spec"} {
		if _, ok := v[k]; !ok {
			t.Errorf("no %s in %s", k, resp.body)
		}
	}
	var view api.PipelineView
	json.Unmarshal(resp.body, &view)
	prod := view.Targets[1]
	if prod.Name != "prod" || prod.Account != "prod-cluster" || !cmp.Equal(prod.DependsOn, []string{"staging"}) {
		t.Errorf("prod %+v", prod)
	}
	st := view.Targets[0]
	if st.Strategy != "canary-fast" || st.AchievedWeight != 25 || st.Steps[1].Status != pipeline.StatusAwaitingApproval || st.Steps[1].Message != "waiting for approval" {
		t.Errorf("staging %+v", st)
	}

	resp = h.do("GET", "/api/v1/pipelines/p1/source", tok, nil)
	var src api.SourceView
	json.Unmarshal(resp.body, &src)
	want := api.SourceView{Pipeline: "p1", FileName: "deploy.yml", File: sourceText, Manifests: sp.Source.Manifests}
	if diff := cmp.Diff(want, src); resp.status != 200 || diff != "" {
		t.Errorf("%d, source (-want +got):\n%s", resp.status, diff)
	}
	if resp := h.do("GET", "/api/v1/pipelines/nope", tok, nil); resp.status != 404 {
		t.Errorf("unknown id: %d", resp.status)
	}
}

func TestActions(t *testing.T) {
	h := newHarness(t)
	tok, c := h.token(store.DefaultTenant, pipeline.RoleDeployer)
	h.runner.add(samplePipeline(store.DefaultTenant, "p1", time.Now()))
	by := pipeline.Principal{Name: c.Name, Roles: c.Roles}
	for _, tc := range []struct {
		action string
		body   any
		want   pipeline.Event
	}{
		{"approve", nil, pipeline.Approve{By: by}},
		{"approve", api.ActionRequest{Target: "staging", Step: "canary/1"}, pipeline.Approve{Target: "staging", Step: "canary/1", By: by}},
		{"skip", api.ActionRequest{Target: "staging"}, pipeline.Skip{Target: "staging", By: by}},
		{"rollback", api.ActionRequest{Target: "staging", Reason: "error rate"}, pipeline.Rollback{Target: "staging", Reason: "error rate", By: by}},
		{"cancel", api.ActionRequest{Reason: "wrong version"}, pipeline.Cancel{Reason: "wrong version", By: by}},
	} {
		h.runner.acted = nil
		resp := h.do("POST", "/api/v1/pipelines/p1/"+tc.action, tok, tc.body)
		if resp.status != 200 {
			t.Errorf("%s: %d %s", tc.action, resp.status, resp.body)
			continue
		}
		if diff := cmp.Diff([]pipeline.Event{tc.want}, h.runner.acted); diff != "" {
			t.Errorf("%s: event (-want +got):\n%s", tc.action, diff)
		}
		var v api.PipelineView
		if json.Unmarshal(resp.body, &v); v.ID != "p1" {
			t.Errorf("%s: body %s", tc.action, resp.body)
		}
	}

	for name, tc := range map[string]struct {
		action string
		body   any
		err    error
		status int
	}{
		"cancel one target":   {"cancel", api.ActionRequest{Target: "prod"}, nil, 400},
		"rollback a step":     {"rollback", api.ActionRequest{Target: "prod", Step: "canary/1"}, nil, 400},
		"approve with reason": {"approve", api.ActionRequest{Reason: "lgtm"}, nil, 400},
		"unknown field":       {"approve", `{"targt": "prod"}`, nil, 400},
		"role missing":        {"approve", nil, &pipeline.Error{Code: pipeline.CodeForbidden, Message: "approval requires one of the roles qa"}, 403},
		"nothing awaits":      {"approve", nil, &pipeline.Error{Code: pipeline.CodeConflict, Message: "no step awaits approval"}, 409},
		"unknown target":      {"skip", api.ActionRequest{Target: "qa"}, &pipeline.Error{Code: pipeline.CodeNotFound, Message: "no target qa"}, 404},
		"stale save":          {"skip", nil, store.ErrConflict, 409},
	} {
		t.Run(name, func(t *testing.T) {
			h.runner.err = tc.err
			resp := h.do("POST", "/api/v1/pipelines/p1/"+tc.action, tok, tc.body)
			if resp.status != tc.status {
				t.Fatalf("%d %s, want %d", resp.status, resp.body, tc.status)
			}
			if e := resp.errors(t); tc.err != nil && !strings.Contains(tc.err.Error(), e.Errors[0].Message) && tc.status != 409 {
				t.Errorf("message %q", e.Errors[0].Message)
			}
		})
	}
}

func TestRedeploy(t *testing.T) {
	h := newHarness(t)
	tok, _ := h.token(store.DefaultTenant, pipeline.RoleDeployer)
	h.runner.add(samplePipeline(store.DefaultTenant, "p1", time.Now()))
	h.runner.startResult = api.StartResult{PipelineID: "p2", Status: pipeline.StatusRunning}
	resp := h.do("POST", "/api/v1/pipelines/p1/redeploy", tok, api.RedeployRequest{Targets: []string{"prod"}})
	if resp.status != 202 || resp.header.Get("Location") != "/api/v1/pipelines/p2" {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
	if resp := h.do("POST", "/api/v1/pipelines/p1/redeploy", tok, nil); resp.status != 202 {
		t.Errorf("without a body: %d %s", resp.status, resp.body)
	}
	if diff := cmp.Diff([]api.RedeployRequest{{Targets: []string{"prod"}}, {}}, h.runner.redeployed); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestOperationalEndpoints(t *testing.T) {
	var ready error
	h := newHarness(t, func(o *api.Options) {
		o.Ready = func(context.Context) error { return ready }
	})
	if resp := h.do("GET", "/healthz", "", nil); resp.status != 200 {
		t.Errorf("healthz %d", resp.status)
	}
	if resp := h.do("GET", "/readyz", "", nil); resp.status != 200 {
		t.Errorf("readyz %d", resp.status)
	}
	ready = errors.New("store: database is locked by pid 4242")
	resp := h.do("GET", "/readyz", "", nil)
	if resp.status != 503 || bytes.Contains(resp.body, []byte("4242")) || resp.errors(t).Errors[0].Code != api.CodeNotReady {
		t.Errorf("not ready: %d %s", resp.status, resp.body)
	}
	tok, _ := h.token(store.DefaultTenant, pipeline.RoleViewer)
	h.do("GET", "/api/v1/pipelines", tok, nil)
	resp = h.do("GET", "/metrics", "", nil)
	if resp.status != 200 || !bytes.Contains(resp.body, []byte(`sortie_api_requests_total{code="200",method="GET",route="/api/v1/pipelines"} 1`)) {
		t.Errorf("metrics %d:\n%s", resp.status, resp.body)
	}
	resp = h.do("PUT", "/api/v1/pipelines", tok, nil)
	if resp.status != 405 || resp.header.Get("Allow") != "POST, GET" {
		t.Errorf("PUT: %d %v %s", resp.status, resp.header, resp.body)
	}
	resp.errors(t)
	resp = h.do("GET", "/api/v1/nothing", tok, nil)
	if resp.status != 404 || resp.errors(t).Errors[0].Code != api.CodeNotFound {
		t.Errorf("unknown route: %d %s", resp.status, resp.body)
	}
	// The token endpoint is served, through the same handler.
	resp = h.do("POST", "/oauth/token", "", "grant_type=client_credentials&client_id=x&client_secret=y", "Content-Type", "application/x-www-form-urlencoded")
	if resp.status != 401 || !bytes.Contains(resp.body, []byte("invalid_client")) {
		t.Errorf("token endpoint: %d %s", resp.status, resp.body)
	}
}
