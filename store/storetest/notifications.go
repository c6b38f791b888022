package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie-cd/sortie/store"
)

func testSubscriptions(t *testing.T, open Opener) {
	s, reopen := open(t)
	ctx := t.Context()
	createTenant(t, s, "acme")
	a := store.Subscription{Tenant: store.DefaultTenant, ID: "ops", Application: "web", Target: "prod",
		Events: []string{"failed", "rolled_back"}, SinkType: "slack",
		Sink: json.RawMessage(`{"webhookUrlSecret": "slack-url"}`), CreatedBy: "admin", CreatedAt: t0}
	b := store.Subscription{Tenant: store.DefaultTenant, ID: "audit", Events: []string{"succeeded"}, SinkType: "webhook",
		Sink: json.RawMessage(`{"url": "https://hooks.example.com/x"}`), CreatedBy: "admin", CreatedAt: t0}
	acme := b
	acme.Tenant = "acme"
	for _, sub := range []store.Subscription{a, b, acme} {
		if err := s.CreateSubscription(ctx, sub); err != nil {
			t.Fatalf("CreateSubscription %s/%s: %v", sub.Tenant, sub.ID, err)
		}
	}
	wantErr(t, "CreateSubscription of a taken id", s.CreateSubscription(ctx, a), store.ErrConflict)
	bad := a
	bad.Tenant = "nobody"
	wantErr(t, "CreateSubscription in an unknown tenant", s.CreateSubscription(ctx, bad), store.ErrNotFound)

	got, err := s.GetSubscription(ctx, store.DefaultTenant, "ops")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, *got, opts); diff != "" {
		t.Errorf("GetSubscription (-want +got):\n%s", diff)
	}
	_, err = s.GetSubscription(ctx, "acme", "ops")
	wantErr(t, "GetSubscription of another tenant's id", err, store.ErrNotFound)
	list, err := reopen(t).ListSubscriptions(ctx, store.DefaultTenant)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.Subscription{b, a}, list, opts); diff != "" {
		t.Errorf("ListSubscriptions, by id, after reopening (-want +got):\n%s", diff)
	}
	wantErr(t, "DeleteSubscription of another tenant's id", s.DeleteSubscription(ctx, "acme", "ops"), store.ErrNotFound)
	if err := s.DeleteSubscription(ctx, store.DefaultTenant, "audit"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteSubscription twice", s.DeleteSubscription(ctx, store.DefaultTenant, "audit"), store.ErrNotFound)
	if _, err := s.GetSubscription(ctx, "acme", "audit"); err != nil {
		t.Errorf("deleting main's audit removed acme's: %v", err)
	}
}

// testOutbox: the backlog is every event past its pipeline's cursor;
// Enqueue moves the cursor with the messages, once per key, so a
// restarted notifier makes each message exactly once.
func testOutbox(t *testing.T, open Opener) {
	s, reopen := open(t)
	ctx := t.Context()
	createTenant(t, s, "acme")
	p := create(t, s, CanaryPipeline(store.DefaultTenant, "p1", "web", t0), events("created", "started")...)
	create(t, s, CanaryPipeline("acme", "p1", "web", t0), events("created")...)

	backlog := func(s store.Store) []string {
		t.Helper()
		es, err := s.NotifyBacklog(ctx, t0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.Tenant+"/"+e.Pipeline+"/"+e.Type)
		}
		return out
	}
	if diff := cmp.Diff([]string{"acme/p1/created", "main/p1/created", "main/p1/started"}, backlog(s)); diff != "" {
		t.Errorf("backlog of new pipelines (-want +got):\n%s", diff)
	}
	if es, err := s.NotifyBacklog(ctx, time.Now().Add(time.Hour), 0); err != nil || len(es) != 0 {
		t.Errorf("backlog of pipelines updated after an hour from now: %v, %v; want none", es, err)
	}

	msg := func(key string, next time.Time) store.OutboxMessage {
		return store.OutboxMessage{Key: key, Subscription: "ops", Pipeline: "p1", Kind: "started",
			Payload: json.RawMessage(`{"text": "web started"}`), CreatedAt: t0, NextAttempt: next}
	}
	if err := s.Enqueue(ctx, store.DefaultTenant, "p1", 2, []store.OutboxMessage{msg("ops/p1/2/started", t0)}); err != nil {
		t.Fatal(err)
	}
	// The same event again (a notifier that crashed before it saw its
	// commit) changes nothing.
	if err := s.Enqueue(ctx, store.DefaultTenant, "p1", 2, []store.OutboxMessage{msg("ops/p1/2/started", t0.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	// A cursor never goes back.
	if err := s.Enqueue(ctx, store.DefaultTenant, "p1", 1, nil); err != nil {
		t.Fatal(err)
	}
	s2 := reopen(t)
	if diff := cmp.Diff([]string{"acme/p1/created"}, backlog(s2)); diff != "" {
		t.Errorf("backlog after enqueueing main/p1 up to 2, reopened (-want +got):\n%s", diff)
	}
	save(t, s2, p, events("status")...)
	if diff := cmp.Diff([]string{"acme/p1/created", "main/p1/status"}, backlog(s2)); diff != "" {
		t.Errorf("backlog after a new event (-want +got):\n%s", diff)
	}
	wantErr(t, "Enqueue for an unknown pipeline", s.Enqueue(ctx, store.DefaultTenant, "nope", 1, nil), store.ErrNotFound)

	if err := s.Enqueue(ctx, "acme", "", 0, []store.OutboxMessage{msg("test/1", t0.Add(time.Minute))}); err != nil {
		t.Fatal(err)
	}
	due, err := s2.ClaimOutbox(ctx, t0, t0.Add(30*time.Second), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].Key != "ops/p1/2/started" || due[0].Status != store.OutboxPending || due[0].Attempts != 0 ||
		!due[0].NextAttempt.Equal(t0) || !due[0].Claim.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("ClaimOutbox at t0 = %+v, want main's one pending message, claimed until t0+30s", due)
	}
	first := due[0]
	if diff := cmp.Diff(json.RawMessage(`{"text": "web started"}`), first.Payload, opts); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
	next, err := s2.NextOutboxDue(ctx)
	if err != nil || !next.Equal(t0.Add(30*time.Second)) {
		t.Errorf("NextOutboxDue of a claimed message = %v, %v; want its claim's expiry t0+30s", next, err)
	}

	first.Attempts, first.LastError, first.NextAttempt, first.UpdatedAt = 1, "POST answered 503", t0.Add(2*time.Minute), t0.Add(time.Second)
	if err := s2.RecordDelivery(ctx, first); err != nil {
		t.Fatal(err)
	}
	next, err = s2.NextOutboxDue(ctx)
	if err != nil || !next.Equal(t0.Add(time.Minute)) {
		t.Errorf("NextOutboxDue after a retry was put off = %v, %v; want acme's at t0+1m", next, err)
	}
	due, err = s2.ClaimOutbox(ctx, t0.Add(2*time.Minute), t0.Add(3*time.Minute), 0)
	if err != nil || len(due) != 2 || due[0].Tenant != "acme" || due[1].ID != first.ID {
		t.Fatalf("ClaimOutbox at t0+2m = %+v, %v; want acme's then main's", due, err)
	}
	first.Claim = due[1].Claim
	first.Status, first.Attempts, first.LastError, first.UpdatedAt = store.OutboxSent, 2, "", t0.Add(3*time.Minute)
	if err := s2.RecordDelivery(ctx, first); err != nil {
		t.Fatal(err)
	}
	other := first
	other.Tenant = "acme"
	wantErr(t, "RecordDelivery of another tenant's message", s2.RecordDelivery(ctx, other), store.ErrNotFound)

	list, err := s.ListDeliveries(ctx, store.DefaultTenant, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.OutboxMessage{{Tenant: store.DefaultTenant, ID: first.ID, Key: "ops/p1/2/started", Subscription: "ops", Pipeline: "p1",
		Kind: "started", Status: store.OutboxSent, Attempts: 2, NextAttempt: t0.Add(2 * time.Minute), CreatedAt: t0, UpdatedAt: t0.Add(3 * time.Minute)}}
	if diff := cmp.Diff(want, list, opts); diff != "" {
		t.Errorf("ListDeliveries of main (-want +got):\n%s", diff)
	}
	if list, err := s.ListDeliveries(ctx, store.DefaultTenant, "other", 0); err != nil || len(list) != 0 {
		t.Errorf("ListDeliveries of another subscription = %v, %v; want none", list, err)
	}
	if list, err := s.ListDeliveries(ctx, "acme", "ops", 0); err != nil || len(list) != 1 || list[0].Key != "test/1" {
		t.Errorf("ListDeliveries of acme = %+v, %v; want its test message", list, err)
	}
}

// testOutboxClaims: of notifiers claiming the outbox at once (replicas
// on one database), each message goes to exactly one; a claim lasts until
// its expiry, then the message is due for another, and the first
// claimer's late record is refused; a message given back is due at once;
// the same event enqueued by two notifiers at once is one message.
func testOutboxClaims(t *testing.T, open Opener) {
	s, reopen := open(t)
	s2 := reopen(t)
	ctx := t.Context()
	create(t, s, CanaryPipeline(store.DefaultTenant, "p1", "web", t0), events("created", "started")...)

	var keys []string
	for i := range 12 {
		keys = append(keys, fmt.Sprintf("ops/p1/%d/started", i))
	}
	// The same messages enqueued by two notifiers at once.
	var wg sync.WaitGroup
	for _, st := range []store.Store{s, s2, s, s2} {
		wg.Go(func() {
			var msgs []store.OutboxMessage
			for _, k := range keys {
				msgs = append(msgs, store.OutboxMessage{Key: k, Subscription: "ops", Pipeline: "p1", Kind: "started", CreatedAt: t0, NextAttempt: t0})
			}
			if err := st.Enqueue(ctx, store.DefaultTenant, "p1", 2, msgs); err != nil {
				t.Errorf("enqueue: %v", err)
			}
		})
	}
	wg.Wait()
	if list, err := s.ListDeliveries(ctx, store.DefaultTenant, "", 0); err != nil || len(list) != len(keys) {
		t.Fatalf("after 4 racing enqueues of %d messages: %d messages, %v", len(keys), len(list), err)
	}

	// Claims at once, 3 at a time, from both stores.
	claim := func(st store.Store, now time.Time) []store.OutboxMessage {
		t.Helper()
		out, err := st.ClaimOutbox(ctx, now, now.Add(time.Minute), 3)
		if err != nil {
			t.Errorf("claim: %v", err)
		}
		return out
	}
	var (
		mu  sync.Mutex
		got = map[string]int{}
		all []store.OutboxMessage
	)
	for _, st := range []store.Store{s, s2, s, s2, s, s2} {
		wg.Go(func() {
			for {
				ms := claim(st, t0)
				if len(ms) == 0 {
					return
				}
				mu.Lock()
				for _, m := range ms {
					got[m.Key]++
					all = append(all, m)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, k := range keys {
		if got[k] != 1 {
			t.Errorf("message %s claimed %d times by racing claimers, want once", k, got[k])
		}
	}
	if ms := claim(s2, t0.Add(59*time.Second)); len(ms) != 0 {
		t.Errorf("claimed before the claims' expiry: %+v", ms)
	}

	// One is sent, one given back (recorded as it was), the rest left.
	sent, back := all[0], all[1]
	sent.Status, sent.Attempts, sent.UpdatedAt = store.OutboxSent, 1, t0.Add(time.Second)
	if err := s.RecordDelivery(ctx, sent); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDelivery(ctx, back); err != nil {
		t.Fatal(err)
	}
	if ms := claim(s2, t0.Add(2*time.Second)); len(ms) != 1 || ms[0].ID != back.ID {
		t.Errorf("claim after one was given back = %+v, want that one", ms)
	}
	// The claimers died: at the expiry, the others' messages are due for
	// another, and a late record under an expired claim is refused.
	late := all[2]
	var taken []store.OutboxMessage
	for {
		ms := claim(s, t0.Add(time.Minute))
		if len(ms) == 0 {
			break
		}
		taken = append(taken, ms...)
	}
	if len(taken) != len(keys)-2 {
		t.Errorf("taken over at the claims' expiry: %d, want %d (all but the sent one and the one given back, claimed again)", len(taken), len(keys)-2)
	}
	late.Status, late.Attempts = store.OutboxSent, 1
	wantErr(t, "RecordDelivery under an expired claim taken over", s2.RecordDelivery(ctx, late), store.ErrConflict)
	for _, m := range taken {
		if m.ID == late.ID {
			m.Status, m.Attempts = store.OutboxSent, 1
			if err := s.RecordDelivery(ctx, m); err != nil {
				t.Errorf("RecordDelivery under the new claim: %v", err)
			}
		}
	}
	list, err := s.ListDeliveries(ctx, store.DefaultTenant, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var sentN int
	for _, m := range list {
		if m.Status == store.OutboxSent {
			sentN++
		}
	}
	if sentN != 2 {
		t.Errorf("%d messages sent, want 2", sentN)
	}
	if next, err := s.NextOutboxDue(ctx); err != nil || !next.Equal(t0.Add(time.Minute+2*time.Second)) {
		t.Errorf("NextOutboxDue = %v, %v; want the given back one's new claim's expiry", next, err)
	}
}

func testActionLinks(t *testing.T, open Opener) {
	s, reopen := open(t)
	ctx := t.Context()
	createTenant(t, s, "acme")
	if used, err := s.ActionLinkUsed(ctx, store.DefaultTenant, "n1"); err != nil || used {
		t.Errorf("ActionLinkUsed before its use = %v, %v", used, err)
	}
	if err := s.UseActionLink(ctx, store.DefaultTenant, "n1", t0); err != nil {
		t.Fatal(err)
	}
	if used, err := s.ActionLinkUsed(ctx, store.DefaultTenant, "n1"); err != nil || !used {
		t.Errorf("ActionLinkUsed after its use = %v, %v", used, err)
	}
	if used, err := s.ActionLinkUsed(ctx, "acme", "n1"); err != nil || used {
		t.Errorf("ActionLinkUsed in another tenant = %v, %v", used, err)
	}
	wantErr(t, "UseActionLink twice, after reopening", reopen(t).UseActionLink(ctx, store.DefaultTenant, "n1", t0), store.ErrConflict)
	if err := s.UseActionLink(ctx, "acme", "n1", t0); err != nil {
		t.Errorf("the same nonce in another tenant: %v", err)
	}
	wantErr(t, "UseActionLink in an unknown tenant", s.UseActionLink(ctx, "nobody", "n2", t0), store.ErrNotFound)

	// Of racing uses, one wins.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for range 8 {
		wg.Go(func() {
			err := s.UseActionLink(ctx, store.DefaultTenant, "race", t0)
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("racing use: %v", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d racing uses succeeded, want 1", wins)
	}
}
