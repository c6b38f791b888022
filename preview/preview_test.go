package preview_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/plan"
	"github.com/sortie-cd/sortie/preview"
	"github.com/sortie-cd/sortie/store"
)

// cluster stands in for the way into a cluster (an agent's relay): the
// whole path, relay and API server's service proxy included, is tested
// end to end in agent/e2e. Here it counts what reached it.
type cluster struct{ calls []*http.Request }

func (c *cluster) Do(r *http.Request) (*http.Response, error) {
	c.calls = append(c.calls, r)
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("v2"))}, nil
}

var ended = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func exposed(status pipeline.Status) *store.Pipeline {
	params, _ := json.Marshal(map[string]any{"services": []string{"web"}, "ttl": map[string]any{"value": time.Minute}})
	pl, _ := json.Marshal(plan.Plan{Targets: []*plan.Target{{Name: "prod", Account: "prod-cluster", Namespace: "shop"}}})
	return &store.Pipeline{
		Tenant: "main", ID: "p1",
		State: pipeline.State{
			Spec: pipeline.Spec{Targets: []pipeline.TargetSpec{{Name: "prod", Strategy: pipeline.Strategy{Canary: &pipeline.Canary{
				Steps: []pipeline.Step{{ExposeServices: &pipeline.ExposeServices{Params: params}}},
			}}}}},
			Targets: []pipeline.TargetState{{Name: "prod", Steps: []pipeline.StepState{
				{ID: "canary/0", Kind: pipeline.KindExposeServices, Group: pipeline.GroupCanary, Index: 0, Status: status, EndedAt: ended},
			}}},
		},
		Source: store.Source{Plan: pl},
	}
}

func serve(t *testing.T, p *store.Pipeline, now time.Time, path func(*preview.Links) string) (*httptest.ResponseRecorder, *cluster) {
	t.Helper()
	links, err := preview.NewLinks([]byte(strings.Repeat("k", 32)), "https://sortie.example")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{}
	h := &preview.Handler{
		Links: links,
		Pipeline: func(_ context.Context, tenant, id string) (*store.Pipeline, error) {
			if tenant != p.Tenant || id != p.ID {
				return nil, store.ErrNotFound
			}
			return p, nil
		},
		Doer:       func(string, string) (preview.Doer, error) { return c, nil },
		ServiceURL: func(ns, svc, path string) string { return "http://" + svc + "." + ns + ".svc" + path },
		Now:        func() time.Time { return now },
	}
	rec := httptest.NewRecorder()
	u := strings.TrimPrefix(path(links), "https://sortie.example")
	h.ServeHTTP(rec, httptest.NewRequest("GET", u+"hello", nil))
	return rec, c
}

func link(ref preview.Ref) func(*preview.Links) string {
	return func(l *preview.Links) string { return l.URL(ref) }
}

var web = preview.Ref{Tenant: "main", Pipeline: "p1", Target: "prod", Service: "web"}

func TestPreviewLivesForItsTTL(t *testing.T) {
	rec, c := serve(t, exposed(pipeline.StatusSucceeded), ended.Add(59*time.Second), link(web))
	if rec.Code != http.StatusOK || len(c.calls) != 1 || c.calls[0].URL.String() != "http://web.shop.svc/hello" {
		t.Fatalf("within the ttl: %d %s, calls %v", rec.Code, rec.Body, c.calls)
	}
	rec, c = serve(t, exposed(pipeline.StatusSucceeded), ended.Add(time.Minute), link(web))
	if rec.Code != http.StatusGone || len(c.calls) != 0 {
		t.Fatalf("after the ttl: %d %s, %d calls reached the cluster", rec.Code, rec.Body, len(c.calls))
	}
}

func TestPreviewReachesNothingUnlessExposed(t *testing.T) {
	for name, tc := range map[string]struct {
		p    *store.Pipeline
		path func(*preview.Links) string
	}{
		"step not done":       {exposed(pipeline.StatusRunning), link(web)},
		"service not exposed": {exposed(pipeline.StatusSucceeded), link(preview.Ref{Tenant: "main", Pipeline: "p1", Target: "prod", Service: "db"})},
		"another tenant":      {exposed(pipeline.StatusSucceeded), link(preview.Ref{Tenant: "other", Pipeline: "p1", Target: "prod", Service: "web"})},
		"forged token": {exposed(pipeline.StatusSucceeded), func(l *preview.Links) string {
			u := l.URL(web)
			return strings.Replace(u, "/preview/", "/preview/x", 1)
		}},
	} {
		rec, c := serve(t, tc.p, ended.Add(time.Second), tc.path)
		if rec.Code != http.StatusNotFound || len(c.calls) != 0 {
			t.Errorf("%s: %d %s, %d calls", name, rec.Code, rec.Body, len(c.calls))
		}
	}
}
