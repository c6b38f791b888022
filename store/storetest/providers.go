package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie-cd/sortie/store"
)

func testMetricProviders(t *testing.T, open Opener) {
	s, reopen := open(t)
	ctx := t.Context()
	createTenant(t, s, "acme")
	prom := store.MetricProvider{Tenant: store.DefaultTenant, Name: "prom", Type: "prometheus",
		Config: json.RawMessage(`{"url": "http://prometheus:9090", "auth": {"type": "bearer", "tokenSecret": "prom-token"}}`), CreatedAt: t0}
	dd := store.MetricProvider{Tenant: store.DefaultTenant, Name: "dd", Type: "datadog",
		Config: json.RawMessage(`{"apiKeySecret": "dd-api"}`), CreatedAt: t0.Add(time.Second)}
	acmeProm := store.MetricProvider{Tenant: "acme", Name: "prom", Type: "prometheus",
		Config: json.RawMessage(`{"url": "http://acme:9090"}`), CreatedAt: t0}
	for _, p := range []store.MetricProvider{prom, dd, acmeProm} {
		if err := s.CreateMetricProvider(ctx, p); err != nil {
			t.Fatalf("CreateMetricProvider %s/%s: %v", p.Tenant, p.Name, err)
		}
	}
	wantErr(t, "CreateMetricProvider of a name taken in its tenant", s.CreateMetricProvider(ctx, prom), store.ErrConflict)
	wantErr(t, "CreateMetricProvider in an unknown tenant",
		s.CreateMetricProvider(ctx, store.MetricProvider{Tenant: "nobody", Name: "x", Type: "prometheus", Config: json.RawMessage(`{}`)}), store.ErrNotFound)

	got, err := s.GetMetricProvider(ctx, store.DefaultTenant, "prom")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(prom, *got, opts); diff != "" {
		t.Errorf("GetMetricProvider (-want +got):\n%s", diff)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt is in %v, want UTC", got.CreatedAt.Location())
	}
	_, err = s.GetMetricProvider(ctx, "acme", "dd")
	wantErr(t, "GetMetricProvider of another tenant's name", err, store.ErrNotFound)

	list, err := s.ListMetricProviders(ctx, store.DefaultTenant)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.MetricProvider{dd, prom}, list, opts); diff != "" {
		t.Errorf("ListMetricProviders, by name (-want +got):\n%s", diff)
	}

	wantErr(t, "DeleteMetricProvider of another tenant's name", s.DeleteMetricProvider(ctx, "acme", "dd"), store.ErrNotFound)
	if err := s.DeleteMetricProvider(ctx, store.DefaultTenant, "prom"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteMetricProvider twice", s.DeleteMetricProvider(ctx, store.DefaultTenant, "prom"), store.ErrNotFound)
	if _, err := s.GetMetricProvider(ctx, "acme", "prom"); err != nil {
		t.Errorf("deleting main's prom removed acme's: %v", err)
	}

	// A stamped CreatedAt, and the providers survive a restart.
	if err := s.CreateMetricProvider(ctx, store.MetricProvider{Tenant: "acme", Name: "nr", Type: "newrelic", Config: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	s2 := reopen(t)
	list, err = s2.ListMetricProviders(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "nr" || list[0].CreatedAt.IsZero() || list[1].Name != "prom" {
		t.Errorf("acme's providers after reopening: %+v", list)
	}
}
