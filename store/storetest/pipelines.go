package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

func testCreateAndGet(t *testing.T, open Opener) {
	s, _ := open(t)
	p := CanaryPipeline(store.DefaultTenant, "p1", "web", t0)
	p.Deployed = []string{"staging"}
	es := events("created", "started")
	before := time.Now()
	create(t, s, p, es...)
	if p.Version != 1 {
		t.Errorf("Version after create = %d, want 1", p.Version)
	}
	if p.UpdatedAt.Before(before.Add(-time.Minute)) {
		t.Errorf("UpdatedAt after create = %v, want about now (the store's clock fills a zero UpdatedAt)", p.UpdatedAt)
	}
	for i, e := range es {
		if e.Seq != int64(i+1) || e.Tenant != p.Tenant || e.Pipeline != p.ID {
			t.Errorf("event %d after create: seq %d tenant %q pipeline %q, want %d %q %q", i, e.Seq, e.Tenant, e.Pipeline, i+1, p.Tenant, p.ID)
		}
	}
	got := get(t, s, p.Tenant, p.ID)
	samePipeline(t, got, p)
	if diff := cmp.Diff(es, allEvents(t, s, p.Tenant, p.ID), opts); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	// The store's clock fills a zero CreatedAt.
	q := CanaryPipeline(store.DefaultTenant, "p2", "web", t0)
	q.CreatedAt = time.Time{}
	create(t, s, q)
	if q.CreatedAt.Before(before.Add(-time.Minute)) {
		t.Errorf("CreatedAt after create = %v, want about now", q.CreatedAt)
	}
	samePipeline(t, get(t, s, q.Tenant, q.ID), q)
}

func testCreateDuplicate(t *testing.T, open Opener) {
	s, _ := open(t)
	p := create(t, s, CanaryPipeline(store.DefaultTenant, "p1", "web", t0), events("created")...)
	dup := CanaryPipeline(store.DefaultTenant, "p1", "web", t0.Add(time.Hour))
	dup.State.Message = "the duplicate"
	es := events("created", "again")
	wantErr(t, "CreatePipeline of an existing id", s.CreatePipeline(t.Context(), dup, nil, es), store.ErrConflict)
	if dup.Version != 0 || es[0].Seq != 0 {
		t.Errorf("a refused create changed its arguments: version %d, seq %d", dup.Version, es[0].Seq)
	}
	samePipeline(t, get(t, s, p.Tenant, p.ID), p)
	if n := len(allEvents(t, s, p.Tenant, p.ID)); n != 1 {
		t.Errorf("%d events after a refused create, want 1", n)
	}
}

func testCreateUnknownTenant(t *testing.T, open Opener) {
	s, _ := open(t)
	p := CanaryPipeline("nobody", "p1", "web", t0)
	wantErr(t, "CreatePipeline in an unknown tenant", s.CreatePipeline(t.Context(), p, nil, nil), store.ErrNotFound)
}

// transition moves p's state on with ev at at, as the server does before a
// save.
func transition(t *testing.T, p *store.Pipeline, ev pipeline.Event, at time.Time) {
	t.Helper()
	next, _, wake, err := pipeline.Transition(p.State, ev, at)
	if err != nil {
		t.Fatalf("Transition %T: %v", ev, err)
	}
	p.State, p.Status, p.Wake = next, next.Status, wake
}

func testSave(t *testing.T, open Opener) {
	s, _ := open(t)
	p := create(t, s, CanaryPipeline(store.DefaultTenant, "p1", "web", t0), events("created", "started")...)
	created := p.CreatedAt
	transition(t, p, pipeline.Skip{Target: "staging", By: pipeline.Principal{Name: "alice"}}, t0.Add(time.Minute))
	// UpdatedAt is the caller's (the engine's clock) when set.
	p.UpdatedAt = t0.Add(time.Minute)
	es := events("skipped", "running")
	save(t, s, p, es...)
	if p.Version != 2 {
		t.Errorf("Version after a save = %d, want 2", p.Version)
	}
	if es[0].Seq != 3 || es[1].Seq != 4 {
		t.Errorf("Seq after a save = %d, %d, want 3, 4", es[0].Seq, es[1].Seq)
	}
	if !p.CreatedAt.Equal(created) || !p.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("after a save CreatedAt %v (was %v), UpdatedAt %v (want the caller's %v)", p.CreatedAt, created, p.UpdatedAt, t0.Add(time.Minute))
	}
	samePipeline(t, get(t, s, p.Tenant, p.ID), p)

	// Another save with no events, then one with one.
	transition(t, p, pipeline.CommandResult{CommandID: p.State.Outstanding[0].ID, Success: true}, t0.Add(2*time.Minute))
	save(t, s, p)
	one := events("analysed")
	save(t, s, p, one...)
	if p.Version != 4 || one[0].Seq != 5 {
		t.Errorf("after two more saves: version %d, seq %d, want 4, 5", p.Version, one[0].Seq)
	}
	samePipeline(t, get(t, s, p.Tenant, p.ID), p)
	got := allEvents(t, s, p.Tenant, p.ID)
	var seqs []int64
	for _, e := range got {
		seqs = append(seqs, e.Seq)
	}
	if diff := cmp.Diff([]int64{1, 2, 3, 4, 5}, seqs); diff != "" {
		t.Errorf("event seqs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(append(es, one...), got[2:], opts); diff != "" {
		t.Errorf("events appended by saves (-want +got):\n%s", diff)
	}
}

func testSaveStale(t *testing.T, open Opener) {
	s, _ := open(t)
	p := create(t, s, CanaryPipeline(store.DefaultTenant, "p1", "web", t0), events("created")...)
	a, b := get(t, s, p.Tenant, p.ID), get(t, s, p.Tenant, p.ID)
	a.State.Message = "saved by a"
	save(t, s, a, events("a")...)
	b.State.Message = "saved by b"
	es := events("b")
	err := s.SavePipeline(t.Context(), b, es)
	wantErr(t, "SavePipeline on a stale version", err, store.ErrConflict)
	if b.Version != 1 || es[0].Seq != 0 {
		t.Errorf("a refused save changed its arguments: version %d, seq %d", b.Version, es[0].Seq)
	}
	samePipeline(t, get(t, s, p.Tenant, p.ID), a)
	if got := allEvents(t, s, p.Tenant, p.ID); len(got) != 2 || got[1].Type != "a" {
		t.Errorf("events after a refused save: %+v, want created and a", got)
	}
	// Retrying the same stale save still fails; reading again and saving works.
	wantErr(t, "SavePipeline retried on a stale version", s.SavePipeline(t.Context(), b, es), store.ErrConflict)
	b = get(t, s, p.Tenant, p.ID)
	b.State.Message = "saved by b after reading again"
	save(t, s, b, events("b")...)
	if b.Version != 3 {
		t.Errorf("version %d, want 3", b.Version)
	}
}

func testSaveConcurrent(t *testing.T, open Opener) {
	s, _ := open(t)
	p := create(t, s, CanaryPipeline(store.DefaultTenant, "p1", "web", t0), events("created")...)
	const n = 12
	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		errs     = make([]error, n)
		versions = make([]*store.Pipeline, n)
	)
	for i := range n {
		c := clone(p)
		c.State.Message = fmt.Sprintf("writer %d", i)
		versions[i] = c
		wg.Go(func() {
			<-start
			errs[i] = s.SavePipeline(t.Context(), c, events(fmt.Sprintf("writer %d", i)))
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both saved version 1", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("writer %d: %v, want ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer saved")
	}
	samePipeline(t, get(t, s, p.Tenant, p.ID), versions[winner])
	got := allEvents(t, s, p.Tenant, p.ID)
	if len(got) != 2 || got[1].Type != fmt.Sprintf("writer %d", winner) || got[1].Seq != 2 {
		t.Errorf("events after concurrent saves: %+v, want created and the winner's", got)
	}
}

func testSaveMissing(t *testing.T, open Opener) {
	s, _ := open(t)
	createTenant(t, s, "acme")
	ghost := CanaryPipeline(store.DefaultTenant, "ghost", "web", t0)
	ghost.Version = 1
	wantErr(t, "SavePipeline of a pipeline never created", s.SavePipeline(t.Context(), ghost, events("x")), store.ErrNotFound)
	wantErr(t, "GetPipeline after it", func() error { _, err := s.GetPipeline(t.Context(), ghost.Tenant, ghost.ID); return err }(), store.ErrNotFound)

	// Another tenant cannot save over a pipeline by naming its id.
	p := create(t, s, CanaryPipeline(store.DefaultTenant, "p1", "web", t0), events("created")...)
	intruder := clone(p)
	intruder.Tenant = "acme"
	intruder.State.Message = "overwritten"
	wantErr(t, "SavePipeline under another tenant", s.SavePipeline(t.Context(), intruder, events("x")), store.ErrNotFound)
	samePipeline(t, get(t, s, p.Tenant, p.ID), p)
	if n := len(allEvents(t, s, p.Tenant, p.ID)); n != 1 {
		t.Errorf("%d events, want 1", n)
	}
}

// testSaveKeepsSource: Source is what was submitted; a pipeline read from a
// list (Source empty) and saved keeps it.
func testSaveKeepsSource(t *testing.T, open Opener) {
	s, _ := open(t)
	p := create(t, s, CanaryPipeline(store.DefaultTenant, "p1", "web", t0))
	listed, err := s.ListPipelines(t.Context(), store.DefaultTenant, store.Filter{})
	if err != nil || len(listed) != 1 {
		t.Fatalf("ListPipelines: %v, %v", ids(listed), err)
	}
	l := listed[0]
	l.State.Message = "saved from a list"
	save(t, s, l)
	got := get(t, s, p.Tenant, p.ID)
	if diff := cmp.Diff(p.Source, got.Source, opts); diff != "" {
		t.Errorf("source after saving a listed pipeline (-want +got):\n%s", diff)
	}
	if got.State.Message != "saved from a list" {
		t.Errorf("state message %q, want the saved one", got.State.Message)
	}
}

func testWake(t *testing.T, open Opener) {
	s, _ := open(t)
	p := CanaryPipeline(store.DefaultTenant, "p1", "web", t0)
	if p.Wake.IsZero() {
		t.Fatal("fixture has no wake-up time")
	}
	create(t, s, p)
	samePipeline(t, get(t, s, p.Tenant, p.ID), p)
	p.Wake = time.Time{}
	save(t, s, p)
	if got := get(t, s, p.Tenant, p.ID); !got.Wake.IsZero() {
		t.Errorf("Wake = %v, want zero", got.Wake)
	}
	p.Wake = time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	save(t, s, p)
	samePipeline(t, get(t, s, p.Tenant, p.ID), p)
}

func testEvents(t *testing.T, open Opener) {
	s, _ := open(t)
	createTenant(t, s, "acme")
	p := CanaryPipeline(store.DefaultTenant, "p1", "web", t0)
	es := []store.Event{
		{At: t0, Type: "created", Data: json.RawMessage(`{"by":"ci@example.com","note":"a <b> & c"}`)},
		{Type: "no time, no data"},
	}
	before := time.Now()
	create(t, s, p, es...)
	if es[1].At.Before(before.Add(-time.Minute)) {
		t.Errorf("an event without At got %v, want about now", es[1].At)
	}
	got := allEvents(t, s, p.Tenant, p.ID)
	if diff := cmp.Diff(es, got, opts); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	for _, e := range got {
		if e.At.Location() != time.UTC {
			t.Errorf("event %d: At in %v, want UTC", e.Seq, e.At.Location())
		}
	}
	if got[1].Data != nil {
		t.Errorf("event without data came back with %q", got[1].Data)
	}
	for i := range 3 {
		save(t, s, p, store.Event{At: t0.Add(time.Duration(i)), Type: fmt.Sprintf("save %d", i)})
	}
	for after, want := range map[int64][]int64{-1: {1, 2, 3, 4, 5}, 0: {1, 2, 3, 4, 5}, 2: {3, 4, 5}, 4: {5}, 5: nil, 99: nil} {
		got, err := s.Events(t.Context(), p.Tenant, p.ID, after)
		if err != nil {
			t.Fatalf("Events after %d: %v", after, err)
		}
		var seqs []int64
		for _, e := range got {
			seqs = append(seqs, e.Seq)
		}
		if diff := cmp.Diff(want, seqs, opts); diff != "" {
			t.Errorf("Events after %d (-want +got):\n%s", after, diff)
		}
	}
	_, err := s.Events(t.Context(), "acme", p.ID, 0)
	wantErr(t, "Events of another tenant's pipeline", err, store.ErrNotFound)
	_, err = s.Events(t.Context(), p.Tenant, "nope", 0)
	wantErr(t, "Events of a missing pipeline", err, store.ErrNotFound)
	// A pipeline created without events has an empty log, not a missing one.
	q := create(t, s, CanaryPipeline(store.DefaultTenant, "p2", "web", t0))
	if got := allEvents(t, s, q.Tenant, q.ID); len(got) != 0 {
		t.Errorf("events of a pipeline created without any: %+v", got)
	}
	e := events("first")
	save(t, s, q, e...)
	if e[0].Seq != 1 {
		t.Errorf("first event of a pipeline created without any has seq %d, want 1", e[0].Seq)
	}
}

// fleet creates, in tenant main and acme, pipelines of applications web and
// api in various statuses, one minute apart from t0, and returns them by id.
func fleet(t *testing.T, s store.Store) map[string]*store.Pipeline {
	t.Helper()
	createTenant(t, s, "acme")
	rows := []struct {
		tenant, id, app string
		status          pipeline.Status
		deployed        []string
	}{
		{"main", "p1", "web", pipeline.StatusSucceeded, []string{"staging", "prod-east", "prod-west"}},
		{"main", "p2", "web", pipeline.StatusRunning, []string{"staging"}},
		{"main", "p3", "web", pipeline.StatusQueued, nil},
		{"main", "p4", "web", pipeline.StatusFailed, nil},
		{"main", "p5", "web", pipeline.StatusCancelled, nil},
		{"main", "p6", "api", pipeline.StatusAwaitingApproval, nil},
		{"main", "p7", "api", pipeline.StatusSucceeded, []string{"prod-west"}},
		{"acme", "a1", "web", pipeline.StatusPaused, nil},
		{"acme", "a2", "web", pipeline.StatusSucceeded, []string{"prod-east"}},
	}
	out := map[string]*store.Pipeline{}
	for i, r := range rows {
		p := withStatus(CanaryPipeline(r.tenant, r.id, r.app, t0.Add(time.Duration(i)*time.Minute)), r.status)
		p.Deployed = r.deployed
		out[r.id] = create(t, s, p, events("created")...)
	}
	return out
}

func testList(t *testing.T, open Opener) {
	s, _ := open(t)
	all := fleet(t, s)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	for _, tc := range []struct {
		name   string
		tenant string
		f      store.Filter
		want   []string
	}{
		{"all", "main", store.Filter{}, []string{"p7", "p6", "p5", "p4", "p3", "p2", "p1"}},
		{"application", "main", store.Filter{Application: "web"}, []string{"p5", "p4", "p3", "p2", "p1"}},
		{"one status", "main", store.Filter{Statuses: []pipeline.Status{pipeline.StatusSucceeded}}, []string{"p7", "p1"}},
		{"statuses", "main", store.Filter{Statuses: []pipeline.Status{pipeline.StatusQueued, pipeline.StatusRunning, pipeline.StatusAwaitingApproval}}, []string{"p6", "p3", "p2"}},
		{"application and status", "main", store.Filter{Application: "api", Statuses: []pipeline.Status{pipeline.StatusSucceeded}}, []string{"p7"}},
		{"created after (exclusive)", "main", store.Filter{CreatedAfter: at(4)}, []string{"p7", "p6"}},
		{"created before (exclusive)", "main", store.Filter{CreatedBefore: at(2)}, []string{"p2", "p1"}},
		{"between", "main", store.Filter{CreatedAfter: at(1), CreatedBefore: at(5)}, []string{"p5", "p4", "p3"}},
		{"bounds in UTC", "main", store.Filter{CreatedAfter: at(1).UTC(), CreatedBefore: at(5).UTC()}, []string{"p5", "p4", "p3"}},
		{"limit", "main", store.Filter{Limit: 2}, []string{"p7", "p6"}},
		{"limit with filter", "main", store.Filter{Application: "web", Limit: 3}, []string{"p5", "p4", "p3"}},
		{"nothing", "main", store.Filter{Application: "nope"}, nil},
		{"other tenant", "acme", store.Filter{}, []string{"a2", "a1"}},
		{"other tenant, filtered", "acme", store.Filter{Statuses: []pipeline.Status{pipeline.StatusRunning}}, nil},
		{"unknown tenant", "nobody", store.Filter{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListPipelines(t.Context(), tc.tenant, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, ids(got), opts); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			for _, g := range got {
				want := *all[g.ID]
				want.Source = store.Source{}
				samePipeline(t, g, &want)
			}
		})
	}
}

func testListDefaultLimit(t *testing.T, open Opener) {
	s, _ := open(t)
	base := CanaryPipeline(store.DefaultTenant, "x", "web", t0)
	for i := range 105 {
		p := clone(base)
		p.ID = fmt.Sprintf("p%03d", i)
		p.State.ID = p.ID
		p.CreatedAt = t0.Add(time.Duration(i) * time.Second)
		create(t, s, p)
	}
	got, err := s.ListPipelines(t.Context(), store.DefaultTenant, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 100 || got[0].ID != "p104" || got[99].ID != "p005" {
		t.Errorf("default list: %d pipelines from %v to %v, want 100 from p104 to p005", len(got), got[0].ID, got[len(got)-1].ID)
	}
	got, err = s.ListPipelines(t.Context(), store.DefaultTenant, store.Filter{Limit: 1000})
	if err != nil || len(got) != 105 {
		t.Errorf("list with limit 1000: %d, %v; want 105", len(got), err)
	}
}

func testApplicationRefs(t *testing.T, open Opener) {
	s, _ := open(t)
	all := fleet(t, s)
	ref := func(id string) pipeline.Ref {
		p := all[id]
		return pipeline.Ref{ID: p.ID, Status: p.Status, CreatedAt: p.CreatedAt}
	}
	refs := func(tenant, app string) []pipeline.Ref {
		t.Helper()
		got, err := s.ApplicationRefs(t.Context(), tenant, app)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(got, func(a, b pipeline.Ref) int { return strings.Compare(a.ID, b.ID) })
		return got
	}
	if diff := cmp.Diff([]pipeline.Ref{ref("p2"), ref("p3")}, refs("main", "web"), opts); diff != "" {
		t.Errorf("refs of main/web (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]pipeline.Ref{ref("p6")}, refs("main", "api"), opts); diff != "" {
		t.Errorf("refs of main/api (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]pipeline.Ref{ref("a1")}, refs("acme", "web"), opts); diff != "" {
		t.Errorf("refs of acme/web (-want +got):\n%s", diff)
	}
	if got := refs("acme", "api"); len(got) != 0 {
		t.Errorf("refs of acme/api: %+v, want none", got)
	}
	// A pipeline that ends leaves the refs; one that starts changes status.
	save(t, s, withStatus(all["p2"], pipeline.StatusSucceeded))
	save(t, s, withStatus(all["p3"], pipeline.StatusRunning))
	if diff := cmp.Diff([]pipeline.Ref{ref("p3")}, refs("main", "web"), opts); diff != "" {
		t.Errorf("refs of main/web after saves (-want +got):\n%s", diff)
	}
}

func testResumable(t *testing.T, open Opener) {
	s, _ := open(t)
	all := fleet(t, s)
	got := resumable(t, s)
	if diff := cmp.Diff([]string{"a1", "p2", "p3", "p6"}, ids(got)); diff != "" {
		t.Fatalf("resumable (-want +got):\n%s", diff)
	}
	// They come whole, Source included: the executor renders manifests
	// from it when it resumes.
	for _, g := range got {
		samePipeline(t, g, all[g.ID])
	}
	save(t, s, withStatus(all["a1"], pipeline.StatusCancelled))
	if diff := cmp.Diff([]string{"p2", "p3", "p6"}, ids(resumable(t, s))); diff != "" {
		t.Errorf("resumable after a1 ended (-want +got):\n%s", diff)
	}
}

// resumable returns s's resumable pipelines sorted by id.
func resumable(t *testing.T, s store.Store) []*store.Pipeline {
	t.Helper()
	got, err := s.ResumablePipelines(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b *store.Pipeline) int { return strings.Compare(a.ID, b.ID) })
	return got
}

func testDeployedBefore(t *testing.T, open Opener) {
	s, _ := open(t)
	all := fleet(t, s)
	check := func(when string, want map[[3]string]bool) {
		t.Helper()
		for k, w := range want {
			got, err := s.DeployedBefore(t.Context(), k[0], k[1], k[2])
			if err != nil {
				t.Fatal(err)
			}
			if got != w {
				t.Errorf("%s: DeployedBefore(%s, %s, %s) = %v, want %v", when, k[0], k[1], k[2], got, w)
			}
		}
	}
	check("after create", map[[3]string]bool{
		{"main", "web", "staging"}:   true,
		{"main", "web", "prod-east"}: true, // by p1, SUCCEEDED: ended pipelines count
		{"main", "api", "staging"}:   false,
		{"main", "api", "prod-west"}: true,
		{"acme", "web", "staging"}:   false,
		{"acme", "web", "prod-east"}: true,
		{"acme", "api", "prod-east"}: false,
		{"main", "web", "nowhere"}:   false,
		{"nobody", "web", "staging"}: false,
	})
	p6 := all["p6"]
	p6.Deployed = []string{"staging"}
	save(t, s, p6)
	a1 := all["a1"]
	a1.Deployed = []string{"staging", "prod-west"}
	save(t, s, a1)
	check("after saves", map[[3]string]bool{
		{"main", "api", "staging"}:   true,
		{"main", "api", "prod-east"}: false,
		{"acme", "web", "staging"}:   true,
		{"acme", "web", "prod-west"}: true,
		{"main", "web", "prod-west"}: true,
		{"acme", "api", "staging"}:   false,
	})
	samePipeline(t, get(t, s, "acme", "a1"), a1)
}

// testIsolation: no read of tenant acme sees main's rows, and an id of main
// is ErrNotFound in acme.
func testIsolation(t *testing.T, open Opener) {
	s, _ := open(t)
	createTenant(t, s, "acme")
	p := CanaryPipeline(store.DefaultTenant, "p1", "web", t0)
	p.Deployed = []string{"staging"}
	create(t, s, p, events("created")...)
	ctx := t.Context()
	_, err := s.GetPipeline(ctx, "acme", p.ID)
	wantErr(t, "GetPipeline of another tenant's id", err, store.ErrNotFound)
	_, err = s.Events(ctx, "acme", p.ID, 0)
	wantErr(t, "Events of another tenant's id", err, store.ErrNotFound)
	if got, err := s.ListPipelines(ctx, "acme", store.Filter{Application: "web"}); err != nil || len(got) != 0 {
		t.Errorf("ListPipelines(acme) = %v, %v; want none", ids(got), err)
	}
	if got, err := s.ApplicationRefs(ctx, "acme", "web"); err != nil || len(got) != 0 {
		t.Errorf("ApplicationRefs(acme, web) = %v, %v; want none", got, err)
	}
	if got, err := s.DeployedBefore(ctx, "acme", "web", "staging"); err != nil || got {
		t.Errorf("DeployedBefore(acme, web, staging) = %v, %v; want false", got, err)
	}
	var seen []pipeline.Ref
	q := CanaryPipeline("acme", "q1", "web", t0)
	if err := s.CreatePipeline(ctx, q, func(others []pipeline.Ref) error { seen = others; return nil }, nil); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 0 {
		t.Errorf("admission in acme saw %+v, want nothing of main", seen)
	}
}
