package dora_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sortie-cd/sortie/dora"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/sqlite"
)

var day0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func at(h float64) time.Time { return day0.Add(time.Duration(h * float64(time.Hour))) }

// deployed is a pipeline of app created at hour created whose target
// ended status after run hours.
func deployed(id, app, target string, created, run float64, status pipeline.Status) *store.Pipeline {
	return &store.Pipeline{ID: id, Application: app, CreatedAt: at(created), State: pipeline.State{Targets: []pipeline.TargetState{
		{Name: target, Status: status, StartedAt: at(created), EndedAt: at(created + run)},
	}}}
}

func TestCompute(t *testing.T) {
	ps := []*store.Pipeline{
		deployed("a", "web", "prod", 1, 1, pipeline.StatusSucceeded),     // lead 1 h
		deployed("b", "web", "prod", 10, 0.5, pipeline.StatusRolledBack), // failed at 10.5
		deployed("c", "web", "prod", 12, 2, pipeline.StatusSucceeded),    // lead 2 h; restores b after 3.5 h
		deployed("d", "web", "prod", 20, 1, pipeline.StatusFailed),       // not restored
		deployed("e", "web", "prod", 30, 1, pipeline.StatusCancelled),    // neither
		deployed("f", "api", "prod", 2, 3, pipeline.StatusSucceeded),     // lead 3 h
		deployed("g", "web", "staging", 1, 1, pipeline.StatusSucceeded),
		deployed("h", "web", "prod", 49, 1, pipeline.StatusSucceeded), // after the period
		{ID: "q", Application: "web", CreatedAt: at(3), State: pipeline.State{Targets: []pipeline.TargetState{{Name: "prod", Status: pipeline.StatusCancelled}}}},
	}
	got := dora.Compute(ps, day0, at(48))
	want := dora.Report{From: day0, To: at(48), Days: 2, LeadTimeFrom: dora.LeadTimeFrom,
		Rows: []dora.Row{
			{Application: "api", Target: "prod", Deployments: 1, PerDay: 0.5, LeadTimeSeconds: 3 * 3600},
			// d's restoration comes after the period (h): it counts.
			{Application: "web", Target: "prod", Deployments: 2, Failures: 2, PerDay: 1, ChangeFailureRate: 0.5,
				LeadTimeSeconds: 1.5 * 3600, TimeToRestoreSeconds: (3.5*3600 + 29*3600) / 2, Restored: 2},
			{Application: "web", Target: "staging", Deployments: 1, PerDay: 0.5, LeadTimeSeconds: 3600},
		},
		Total: dora.Row{Deployments: 4, Failures: 2, PerDay: 2, ChangeFailureRate: 2.0 / 6, LeadTimeSeconds: 1.5 * 3600,
			TimeToRestoreSeconds: (3.5*3600 + 29*3600) / 2, Restored: 2},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(dora.Row{}), cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}

	// Without the later success, d is not restored.
	got = dora.Compute(ps[:7], day0, at(48))
	if row := got.Rows[1]; row.Restored != 1 || row.Unrestored != 1 || row.TimeToRestoreSeconds != 3.5*3600 {
		t.Errorf("web/prod without h: %+v, want b restored after 3.5 h and d not", row)
	}
}

// TestLoadPages reads every page of a long list, pipelines created at the
// same instant across a page's end included, and no more.
func TestLoadPages(t *testing.T) {
	var ps []*store.Pipeline
	for i := range 1203 {
		// Three pipelines a minute, newest first as the store lists them.
		ps = append(ps, deployed(string(rune('a'+i%26))+time.Duration(i).String(), "web", "prod", 40-float64(i/3)/60, 0.01, pipeline.StatusSucceeded))
	}
	calls := 0
	list := func(_ context.Context, f store.Filter) ([]*store.Pipeline, error) {
		calls++
		var out []*store.Pipeline
		for _, p := range ps {
			if p.CreatedAt.After(f.CreatedAfter) && p.CreatedAt.Before(f.CreatedBefore) && len(out) < f.Limit {
				out = append(out, p)
			}
		}
		return out, nil
	}
	r, err := dora.Load(context.Background(), list, "", day0, at(48), at(47))
	if err != nil {
		t.Fatal(err)
	}
	if r.Total.Deployments != len(ps) || calls < 3 {
		t.Errorf("%d deployments in %d calls, want %d in at least 3 pages", r.Total.Deployments, calls, len(ps))
	}
	if _, err := dora.Load(context.Background(), list, "", at(48), day0, at(47)); err == nil {
		t.Error("a period ending before it starts is taken")
	}
}

// TestTenantScoped stores, in a real SQLite store, pipelines of the same
// application and target in two tenants: each tenant's report counts its
// own only.
func TestTenantScoped(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "sortie.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateTenant(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	put := func(tenant string, p *store.Pipeline) {
		p.Tenant, p.Status = tenant, p.State.Targets[0].Status
		p.State.ID, p.State.Status = p.ID, p.Status
		if err := st.CreatePipeline(ctx, p, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	put(store.DefaultTenant, deployed("m1", "web", "prod", 1, 1, pipeline.StatusSucceeded))
	put(store.DefaultTenant, deployed("m2", "web", "prod", 2, 1, pipeline.StatusSucceeded))
	put("other", deployed("o1", "web", "prod", 3, 1, pipeline.StatusRolledBack))
	put("other", deployed("o2", "web", "prod", 4, 1, pipeline.StatusSucceeded))
	put("other", deployed("o3", "web", "prod", 5, 1, pipeline.StatusSucceeded))
	for tenant, want := range map[string][2]int{store.DefaultTenant: {2, 0}, "other": {2, 1}} {
		list := func(ctx context.Context, f store.Filter) ([]*store.Pipeline, error) {
			return st.ListPipelines(ctx, tenant, f)
		}
		r, err := dora.Load(ctx, list, "web", day0, at(48), at(47))
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Rows) != 1 || r.Rows[0].Deployments != want[0] || r.Rows[0].Failures != want[1] {
			t.Errorf("tenant %s: %+v, want web/prod with %d deployments and %d failures", tenant, r.Rows, want[0], want[1])
		}
	}
}
