package storetest

import (
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

// errBusy is the suite's admission refusal.
var errBusy = errors.New("application busy")

// oneInFlight is the admission rule of pipeline/STATES.md without enqueueOne:
// refuse while any other pipeline of the application is unfinished.
func oneInFlight(others []pipeline.Ref) error {
	if len(others) > 0 {
		return fmt.Errorf("%s is in flight: %w", others[0].ID, errBusy)
	}
	return nil
}

func testAdmitSeesOthers(t *testing.T, open Opener) {
	s, _ := open(t)
	all := fleet(t, s)
	var seen []pipeline.Ref
	p := CanaryPipeline(store.DefaultTenant, "new", "web", t0.Add(time.Hour))
	err := s.CreatePipeline(t.Context(), p, func(others []pipeline.Ref) error {
		seen = slices.Clone(others)
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(seen, func(a, b pipeline.Ref) int { return strings.Compare(a.ID, b.ID) })
	var want []pipeline.Ref
	for _, id := range []string{"p2", "p3"} {
		want = append(want, pipeline.Ref{ID: id, Status: all[id].Status, CreatedAt: all[id].CreatedAt})
	}
	if diff := cmp.Diff(want, seen, opts); diff != "" {
		t.Errorf("admit saw (-want +got):\n%s", diff)
	}
	if p.Version != 1 {
		t.Errorf("version %d, want 1", p.Version)
	}
	// A nil admit admits.
	create(t, s, CanaryPipeline(store.DefaultTenant, "new2", "web", t0.Add(time.Hour)))
}

func testAdmitRefuses(t *testing.T, open Opener) {
	s, _ := open(t)
	fleet(t, s)
	p := CanaryPipeline(store.DefaultTenant, "refused", "web", t0.Add(time.Hour))
	es := events("created")
	err := s.CreatePipeline(t.Context(), p, oneInFlight, es)
	wantErr(t, "CreatePipeline refused by admit", err, errBusy)
	if p.Version != 0 || es[0].Seq != 0 {
		t.Errorf("a refused create changed its arguments: version %d, seq %d", p.Version, es[0].Seq)
	}
	_, err = s.GetPipeline(t.Context(), p.Tenant, p.ID)
	wantErr(t, "GetPipeline of a refused pipeline", err, store.ErrNotFound)
	_, err = s.Events(t.Context(), p.Tenant, p.ID, 0)
	wantErr(t, "Events of a refused pipeline", err, store.ErrNotFound)
	refs, err := s.ApplicationRefs(t.Context(), p.Tenant, p.Application)
	if err != nil || len(refs) != 2 {
		t.Errorf("refs after a refusal: %+v, %v; want p2 and p3", refs, err)
	}
}

// testAdmitShapesPipeline: admit runs before the row is written, so what it
// decides (start or queue) can go into the pipeline it admits.
func testAdmitShapesPipeline(t *testing.T, open Opener) {
	s, _ := open(t)
	create(t, s, CanaryPipeline(store.DefaultTenant, "first", "web", t0))
	p := CanaryPipeline(store.DefaultTenant, "second", "web", t0.Add(time.Minute))
	p.State, _ = pipeline.New(p.ID, CanarySpec(store.DefaultTenant, "web"), p.CreatedAt)
	p.Status, p.Wake = p.State.Status, time.Time{}
	err := s.CreatePipeline(t.Context(), p, func(others []pipeline.Ref) error {
		a, err := pipeline.Admit(p.State.Spec, others)
		if err != nil {
			return err
		}
		p.State.Message = "admission: " + string(a.Verdict)
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := get(t, s, p.Tenant, p.ID)
	if got.State.Message != "admission: queue" {
		t.Errorf("stored message %q, want the one admit set", got.State.Message)
	}
	samePipeline(t, got, p)
}

// testAdmitConcurrent: many starts of one application at once, with a
// one-in-flight rule: exactly one is created.
func testAdmitConcurrent(t *testing.T, open Opener) {
	s, reopen := open(t)
	s2 := reopen(t)
	const n = 16
	results := createConcurrently(t, n, func(i int) (store.Store, *store.Pipeline) {
		st := s
		if i%2 == 1 {
			st = s2 // half through a second handle on the same database
		}
		return st, CanaryPipeline(store.DefaultTenant, fmt.Sprintf("p%02d", i), "web", t0.Add(time.Duration(i)))
	}, oneInFlight)
	created := 0
	for i, err := range results {
		switch {
		case err == nil:
			created++
		case !errors.Is(err, errBusy):
			t.Errorf("start %d: %v, want errBusy", i, err)
		}
	}
	if created != 1 {
		t.Errorf("%d of %d concurrent starts were admitted, want 1", created, n)
	}
	refs, err := s.ApplicationRefs(t.Context(), store.DefaultTenant, "web")
	if err != nil || len(refs) != 1 {
		t.Errorf("refs: %+v, %v; want one", refs, err)
	}
	ps, err := s.ListPipelines(t.Context(), store.DefaultTenant, store.Filter{})
	if err != nil || len(ps) != 1 {
		t.Errorf("pipelines: %v, %v; want one", ids(ps), err)
	}
}

// testAdmitIndependent: the rule is per tenant and application; concurrent
// starts of different ones are all admitted.
func testAdmitIndependent(t *testing.T, open Opener) {
	s, _ := open(t)
	createTenant(t, s, "acme")
	const n = 8
	results := createConcurrently(t, n, func(i int) (store.Store, *store.Pipeline) {
		tenant := store.DefaultTenant
		if i%2 == 1 {
			tenant = "acme"
		}
		return s, CanaryPipeline(tenant, fmt.Sprintf("p%02d", i), fmt.Sprintf("app%d", i/2), t0)
	}, oneInFlight)
	for i, err := range results {
		if err != nil {
			t.Errorf("start %d: %v", i, err)
		}
	}
}

func createConcurrently(t *testing.T, n int, build func(i int) (store.Store, *store.Pipeline), admit store.Admit) []error {
	t.Helper()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, n)
	)
	for i := range n {
		st, p := build(i)
		wg.Go(func() {
			<-start
			errs[i] = st.CreatePipeline(t.Context(), p, admit, events("created"))
		})
	}
	close(start)
	wg.Wait()
	return errs
}
