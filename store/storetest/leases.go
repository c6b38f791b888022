package storetest

import (
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

const ttl = 10 * time.Second

func claim(t *testing.T, s store.Store, replica string, now time.Time) []*store.Pipeline {
	t.Helper()
	ps, err := s.ClaimLeases(t.Context(), replica, now, ttl)
	if err != nil {
		t.Fatalf("ClaimLeases %s: %v", replica, err)
	}
	slices.SortFunc(ps, func(a, b *store.Pipeline) int { return strings.Compare(a.ID, b.ID) })
	return ps
}

func renew(t *testing.T, s store.Store, replica string, held []store.LeaseRef, now time.Time) []store.LeaseRef {
	t.Helper()
	kept, err := s.RenewLeases(t.Context(), replica, held, now, ttl)
	if err != nil {
		t.Fatalf("RenewLeases %s: %v", replica, err)
	}
	slices.SortFunc(kept, func(a, b store.LeaseRef) int { return strings.Compare(a.ID, b.ID) })
	return kept
}

func refs(ps []*store.Pipeline) []store.LeaseRef {
	var out []store.LeaseRef
	for _, p := range ps {
		out = append(out, store.LeaseRef{Tenant: p.Tenant, ID: p.ID, Epoch: p.Lease.Epoch})
	}
	return out
}

// testLeaseFencing: a pipeline created with a lease has epoch 1; a
// takeover moves the epoch on, and from then the old holder's save is
// refused with ErrFenced, nothing of it written, while the new holder's
// goes through.
func testLeaseFencing(t *testing.T, open Opener) {
	s, _ := open(t)
	p := CanaryPipeline(store.DefaultTenant, "p1", "web", t0)
	p.Lease = store.Lease{Owner: "a", Until: t0.Add(ttl)}
	create(t, s, p, events("created")...)
	want := store.Lease{Owner: "a", Until: t0.Add(ttl).UTC(), Epoch: 1}
	if diff := cmp.Diff(want, p.Lease); diff != "" {
		t.Errorf("lease after create (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, get(t, s, p.Tenant, p.ID).Lease); diff != "" {
		t.Errorf("stored lease (-want +got):\n%s", diff)
	}
	a := clone(p)
	save(t, s, a, events("by a")...)

	b, err := s.TakeLease(t.Context(), "b", p.Tenant, p.ID, t0.Add(time.Second), ttl)
	if err != nil {
		t.Fatal(err)
	}
	if b.Lease.Owner != "b" || b.Lease.Epoch != 2 || !b.Lease.Until.Equal(t0.Add(time.Second+ttl)) {
		t.Errorf("lease after TakeLease: %+v, want b's at epoch 2 until %v", b.Lease, t0.Add(time.Second+ttl))
	}
	if b.Version != a.Version || b.Source.File != p.Source.File {
		t.Errorf("TakeLease returned version %d source %q, want the stored pipeline (version %d) with its source", b.Version, b.Source.File, a.Version)
	}

	stale := clone(a)
	stale.State.Message = "written by a replica that lost its lease"
	es := events("fenced")
	err = s.SavePipeline(t.Context(), stale, es)
	wantErr(t, "SavePipeline with a taken-over epoch", err, store.ErrFenced)
	if stale.Version != a.Version || es[0].Seq != 0 {
		t.Errorf("a fenced save changed its arguments: version %d, seq %d", stale.Version, es[0].Seq)
	}
	if n := len(allEvents(t, s, p.Tenant, p.ID)); n != 2 {
		t.Errorf("%d events after a fenced save, want 2", n)
	}
	save(t, s, b, events("by b")...)
	got := get(t, s, p.Tenant, p.ID)
	if got.State.Message == stale.State.Message || got.Lease.Owner != "b" || got.Lease.Epoch != 2 {
		t.Errorf("after the takeover: message %q, lease %+v", got.State.Message, got.Lease)
	}
	// A version conflict under the right epoch is still a conflict.
	wantErr(t, "a's save after b saved", s.SavePipeline(t.Context(), clone(a), nil), store.ErrFenced)
	old := clone(b)
	old.Version--
	wantErr(t, "SavePipeline of an old version under the current epoch", s.SavePipeline(t.Context(), old, nil), store.ErrConflict)

	// A finished pipeline's lease is not taken; an unknown one is not found.
	save(t, s, withStatus(b, pipeline.StatusCancelled))
	ended, err := s.TakeLease(t.Context(), "c", p.Tenant, p.ID, t0.Add(2*time.Second), ttl)
	if err != nil {
		t.Fatal(err)
	}
	if ended.Lease.Owner != "b" || ended.Lease.Epoch != 2 || ended.Status != pipeline.StatusCancelled {
		t.Errorf("TakeLease of an ended pipeline: status %s lease %+v, want it unchanged", ended.Status, ended.Lease)
	}
	_, err = s.TakeLease(t.Context(), "c", p.Tenant, "nope", t0, ttl)
	wantErr(t, "TakeLease of an unknown pipeline", err, store.ErrNotFound)
	_, err = s.TakeLease(t.Context(), "c", "acme", p.ID, t0, ttl)
	wantErr(t, "TakeLease in another tenant", err, store.ErrNotFound)
}

// testLeaseExpiry: a held lease is not claimed while it lasts, nor after
// its holder renewed it; once it expired it is, with the epoch moved on,
// and the old holder's renewal no longer keeps it.
func testLeaseExpiry(t *testing.T, open Opener) {
	s, _ := open(t)
	all := fleet(t, s) // unfinished: a1, p2, p3, p6; nobody holds them
	a := claim(t, s, "a", t0)
	if diff := cmp.Diff([]string{"a1", "p2", "p3", "p6"}, ids(a)); diff != "" {
		t.Fatalf("claimed by the only replica (-want +got):\n%s", diff)
	}
	for _, p := range a {
		if p.Lease.Owner != "a" || p.Lease.Epoch != 1 || !p.Lease.Until.Equal(t0.Add(ttl)) {
			t.Errorf("%s: lease %+v, want a's at epoch 1", p.ID, p.Lease)
		}
		// They come whole, Source included: what the claimer resumes.
		want := clone(all[p.ID])
		want.Lease = p.Lease
		samePipeline(t, p, want)
	}
	if got := claim(t, s, "a", t0.Add(time.Second)); len(got) != 0 {
		t.Errorf("a claimed %v again", ids(got))
	}
	if got := claim(t, s, "b", t0.Add(time.Second)); len(got) != 0 {
		t.Errorf("b claimed %v while a's leases last", ids(got))
	}
	held := refs(a)
	if diff := cmp.Diff(held, renew(t, s, "a", held, t0.Add(5*time.Second))); diff != "" {
		t.Errorf("renewed (-want +got):\n%s", diff)
	}
	// Past the first expiry, but a renewed.
	if got := claim(t, s, "b", t0.Add(ttl+time.Second)); len(got) != 0 {
		t.Errorf("b claimed %v after a renewed", ids(got))
	}
	// a stops renewing: b, the only live replica now, takes all four.
	b := claim(t, s, "b", t0.Add(5*time.Second+ttl))
	if diff := cmp.Diff([]string{"a1", "p2", "p3", "p6"}, ids(b)); diff != "" {
		t.Errorf("claimed by b when a's leases expired (-want +got):\n%s", diff)
	}
	for _, p := range b {
		if p.Lease.Owner != "b" || p.Lease.Epoch != 2 {
			t.Errorf("%s after b's claim: %+v, want b's at epoch 2", p.ID, p.Lease)
		}
	}
	// a comes back: its renewal keeps nothing, its save is fenced.
	if kept := renew(t, s, "a", held, t0.Add(6*time.Second+ttl)); len(kept) != 0 {
		t.Errorf("a renewed %v after b took them over", refIDs(kept))
	}
	wantErr(t, "a's save after b took the pipeline over", s.SavePipeline(t.Context(), clone(a[3]), nil), store.ErrFenced)

	// A finished pipeline is neither renewed nor claimed.
	p2 := clone(b[1])
	save(t, s, withStatus(p2, pipeline.StatusSucceeded))
	kept := renew(t, s, "b", refs(b), t0.Add(7*time.Second+ttl))
	if diff := cmp.Diff([]string{"a1", "p3", "p6"}, refIDs(kept)); diff != "" {
		t.Errorf("renewed after p2 ended (-want +got):\n%s", diff)
	}
	if got := claim(t, s, "c", t0.Add(time.Hour)); slices.Contains(ids(got), "p2") {
		t.Errorf("c claimed the finished p2")
	}
}

func refIDs(rs []store.LeaseRef) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// testLeaseRelease: released leases are claimable at once; a nil release
// lets go of every lease of the replica; a lease the replica holds but
// does not renew by name is released by the renewal.
func testLeaseRelease(t *testing.T, open Opener) {
	s, _ := open(t)
	fleet(t, s)
	a := claim(t, s, "a", t0)
	if len(a) != 4 {
		t.Fatalf("a claimed %v, want the 4 unfinished", ids(a))
	}
	if err := s.ReleaseLeases(t.Context(), "a", refs(a[:1])); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, s, "b", t0.Add(time.Second)); len(got) != 1 || got[0].ID != a[0].ID {
		t.Errorf("b claimed %v after a released %s", ids(got), a[0].ID)
	}
	if err := s.ReleaseLeases(t.Context(), "a", nil); err != nil {
		t.Fatal(err)
	}
	// b is live, so a's fair share of the 4 is 2.
	got := claim(t, s, "a", t0.Add(2*time.Second))
	if len(got) != 2 {
		t.Fatalf("a claimed %v after releasing all, want 2 of its 3 back", ids(got))
	}
	for _, p := range got {
		if p.Lease.Epoch != 2 {
			t.Errorf("%s claimed again at epoch %d, want 2", p.ID, p.Lease.Epoch)
		}
	}
	// Renewing only one of the two lets go of the other.
	if kept := renew(t, s, "a", refs(got[:1]), t0.Add(3*time.Second)); len(kept) != 1 {
		t.Errorf("renewed %v, want 1", refIDs(kept))
	}
	if c := claim(t, s, "c", t0.Add(4*time.Second)); !slices.Contains(ids(c), got[1].ID) {
		t.Errorf("c claimed %v, want %s among them, which a did not renew", ids(c), got[1].ID)
	}
}

// testLeaseFairShare: with three live replicas and nine pipelines in
// flight, each claims at most three, however they race; a replica that
// dies leaves its share to the others, which then hold at most
// ceil(9/2) each.
func testLeaseFairShare(t *testing.T, open Opener) {
	s, _ := open(t)
	for i := range 9 {
		p := CanaryPipeline(store.DefaultTenant, fmt.Sprintf("p%d", i), fmt.Sprintf("app%d", i), t0.Add(time.Duration(i)*time.Second))
		create(t, s, p)
	}
	replicas := []string{"a", "b", "c"}
	for _, r := range replicas {
		renew(t, s, r, nil, t0) // live, holding nothing
	}
	got := make([][]*store.Pipeline, len(replicas))
	errs := make([]error, len(replicas))
	var wg sync.WaitGroup
	for i, r := range replicas {
		wg.Go(func() { got[i], errs[i] = s.ClaimLeases(t.Context(), r, t0.Add(time.Second), ttl) })
	}
	wg.Wait()
	owner := map[string]string{}
	for i, r := range replicas {
		if errs[i] != nil {
			t.Fatalf("ClaimLeases %s: %v", r, errs[i])
		}
		if len(got[i]) != 3 {
			t.Errorf("%s claimed %d (%v), want its fair share 3", r, len(got[i]), ids(got[i]))
		}
		for _, p := range got[i] {
			if o, ok := owner[p.ID]; ok {
				t.Errorf("%s claimed by %s and %s", p.ID, o, r)
			}
			owner[p.ID] = r
		}
	}
	// c stops renewing; a and b do. After c's lease and liveness expire,
	// a's claim takes ceil(9/2) - 3 = 2 of c's three, and b the last.
	later := t0.Add(ttl + 2*time.Second)
	renew(t, s, "a", refs(got[0]), t0.Add(5*time.Second))
	renew(t, s, "b", refs(got[1]), t0.Add(5*time.Second))
	if n := len(claim(t, s, "a", later)); n != 2 {
		t.Errorf("a took %d of the dead replica's pipelines, want 2 (its share of 9 among 2 is 5)", n)
	}
	if n := len(claim(t, s, "b", later)); n != 1 {
		t.Errorf("b took %d, want the last 1", n)
	}
}

// testWarmClaims: the removal of a warm version is the pipeline owner's:
// while the replica that finished it is live, only it gets the row; once
// it is not (its renewals stopped), one other replica takes it, however
// many claim at once; an unfinished pipeline's rows follow its lease.
func testWarmClaims(t *testing.T, open Opener) {
	s, reopen := open(t)
	s2 := reopen(t)
	ctx := t.Context()
	warmClaim := func(st store.Store, replica string, now time.Time) []string {
		t.Helper()
		ws, err := st.ClaimWarm(ctx, replica, now)
		if err != nil {
			t.Fatalf("ClaimWarm %s: %v", replica, err)
		}
		var out []string
		for _, w := range ws {
			out = append(out, w.Pipeline+"/"+w.Target)
		}
		return out
	}
	leased := func(id, owner string, st pipeline.Status) {
		p := CanaryPipeline(store.DefaultTenant, id, "web", t0)
		p.Lease = store.Lease{Owner: owner, Until: t0.Add(ttl)}
		create(t, s, p, events("created")...)
		if st != "" {
			save(t, s, withStatus(p, st))
		}
		if err := s.PutWarm(ctx, store.Warm{Tenant: store.DefaultTenant, Pipeline: id, Target: "prod", Until: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	// a, b and c are live until t0+ttl.
	for _, r := range []string{"a", "b", "c"} {
		claim(t, s, r, t0)
	}
	leased("done", "a", pipeline.StatusSucceeded)
	leased("going", "b", "")
	if diff := cmp.Diff([]string{"done/prod"}, warmClaim(s, "a", t0.Add(time.Second))); diff != "" {
		t.Errorf("a's warm versions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"going/prod"}, warmClaim(s2, "b", t0.Add(time.Second))); diff != "" {
		t.Errorf("b's warm versions while a is live (-want +got):\n%s", diff)
	}

	// a stops renewing; b and c do, and claim at once after a's expiry.
	now := t0.Add(ttl + time.Second)
	renew(t, s, "b", []store.LeaseRef{{Tenant: store.DefaultTenant, ID: "going", Epoch: 1}}, now)
	renew(t, s, "c", nil, now)
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		got = map[string][]string{}
	)
	for _, x := range []struct {
		st store.Store
		r  string
	}{{s, "b"}, {s2, "c"}} {
		wg.Go(func() {
			ws := warmClaim(x.st, x.r, now)
			mu.Lock()
			got[x.r] = ws
			mu.Unlock()
		})
	}
	wg.Wait()
	b, c := slices.Contains(got["b"], "done/prod"), slices.Contains(got["c"], "done/prod")
	if b == c {
		t.Errorf("after a's expiry: b got %v, c got %v; want done/prod claimed by exactly one", got["b"], got["c"])
	}
	if !slices.Contains(got["b"], "going/prod") || slices.Contains(got["c"], "going/prod") {
		t.Errorf("going/prod, of b's leased pipeline: b got %v, c got %v; want b's only", got["b"], got["c"])
	}
	if ws := warmClaim(s, "a", now); len(ws) != 0 {
		t.Errorf("a, back after the takeover, got %v", ws)
	}
}

// testLeaseHandOver: FairShare counts the live replicas; a replica over
// its share hands pipelines over and stays live, and another claims them
// at once; a hand-over at an old epoch changes nothing.
func testLeaseHandOver(t *testing.T, open Opener) {
	s, _ := open(t)
	ctx := t.Context()
	for i := 1; i <= 4; i++ {
		create(t, s, CanaryPipeline(store.DefaultTenant, fmt.Sprintf("p%d", i), "web", t0.Add(time.Duration(i)*time.Second)), events("created")...)
	}
	share := func(now time.Time) int {
		t.Helper()
		n, err := s.FairShare(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := share(t0); n != 4 {
		t.Errorf("FairShare with no replica live = %d, want all 4", n)
	}
	a := claim(t, s, "a", t0)
	if len(a) != 4 {
		t.Fatalf("a alone claimed %v, want all 4", ids(a))
	}
	if b := claim(t, s, "b", t0.Add(time.Second)); len(b) != 0 {
		t.Fatalf("b claimed %v while a held them all", ids(b))
	}
	if n := share(t0.Add(time.Second)); n != 2 {
		t.Errorf("FairShare with a and b live = %d, want 2", n)
	}
	if err := s.HandOver(ctx, "a", refs(a[2:])); err != nil {
		t.Fatal(err)
	}
	if n := share(t0.Add(2 * time.Second)); n != 2 {
		t.Errorf("FairShare after a handed over = %d, want 2: a is still live", n)
	}
	b := claim(t, s, "b", t0.Add(2*time.Second))
	if diff := cmp.Diff([]string{"p3", "p4"}, ids(b)); diff != "" {
		t.Errorf("b claimed after a handed over (-want +got):\n%s", diff)
	}
	if err := s.HandOver(ctx, "a", refs(a[2:])); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, store.DefaultTenant, "p3").Lease; got.Owner != "b" || got.Epoch != 2 {
		t.Errorf("p3 after a's hand-over at its old epoch: %+v, want b's at epoch 2", got)
	}
	if kept := renew(t, s, "a", refs(a), t0.Add(3*time.Second)); len(kept) != 2 {
		t.Errorf("a renewed %v, want p1 and p2", refIDs(kept))
	}
}

// testLeaseNextExpiry: NextExpiry is the earliest expiry after now of the
// leases the other replicas hold on unfinished pipelines; a renewal moves
// it, and a replica's own leases and expired ones count for nothing.
func testLeaseNextExpiry(t *testing.T, open Opener) {
	s, _ := open(t)
	ctx := t.Context()
	next := func(replica string, now time.Time) time.Time {
		t.Helper()
		at, err := s.NextExpiry(ctx, replica, now)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	if at := next("a", t0); !at.IsZero() {
		t.Errorf("NextExpiry with no pipeline = %v, want none", at)
	}
	for i := 1; i <= 3; i++ {
		create(t, s, CanaryPipeline(store.DefaultTenant, fmt.Sprintf("p%d", i), "web", t0.Add(time.Duration(i)*time.Second)), events("created")...)
	}
	if at := next("a", t0); !at.IsZero() {
		t.Errorf("NextExpiry with no lease held = %v, want none", at)
	}
	b := claim(t, s, "b", t0)
	if len(b) != 3 {
		t.Fatalf("b claimed %v, want all 3", ids(b))
	}
	if at := next("a", t0); !at.Equal(t0.Add(ttl)) {
		t.Errorf("NextExpiry for a = %v, want b's leases' %v", at, t0.Add(ttl))
	}
	if at := next("b", t0); !at.IsZero() {
		t.Errorf("NextExpiry for b, which holds them all = %v, want none", at)
	}
	// Renewed without the third, b lets go of it: the two renewed run out later.
	renew(t, s, "b", refs(b[:2]), t0.Add(3*time.Second))
	if at := next("a", t0.Add(3*time.Second)); !at.Equal(t0.Add(3*time.Second + ttl)) {
		t.Errorf("NextExpiry after b renewed two = %v, want %v", at, t0.Add(3*time.Second+ttl))
	}
	if at := next("a", t0.Add(3*time.Second+ttl)); !at.IsZero() {
		t.Errorf("NextExpiry once every lease ran out = %v, want none", at)
	}
}
