package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/notify"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/postgres"
	"github.com/sortie-cd/sortie/store/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// named is the real HTTP client of one replica's notifier, saying which
// replica sends (a header), so that the receiver can tell them apart.
type named struct{ name string }

func (c named) Do(r *http.Request) (*http.Response, error) {
	r.Header.Set("X-Replica", c.name)
	return http.DefaultClient.Do(r)
}

// TestTwoNotifiersDeliverOnce: two replicas' notifiers on one PostgreSQL
// database, started at once on the same events, deliver every message to
// a real HTTP receiver exactly once, though one of them is stopped in the
// middle of its work: the send it began is finished and recorded, the
// messages it had claimed and not sent are given back and sent by the
// other.
func TestTwoNotifiersDeliverOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	url := pgtest.Database(t)
	open := func() *postgres.Store {
		st, err := postgres.Open(ctx, url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	stA, stB := open(), open()

	var (
		mu       sync.Mutex
		got      = map[string]int{}
		by       = map[string]int{}
		aStopped = make(chan struct{})
		release  = sync.OnceFunc(func() { close(aStopped) })
	)
	ctxA, stopA := context.WithCancel(ctx)
	defer stopA()
	recv := newReceiver(t, nil)
	recv.got = make(chan struct{}, 1000)
	recv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m notify.Message
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			t.Errorf("not a message: %v", err)
		}
		replica := r.Header.Get("X-Replica")
		if replica == "b" {
			// B holds what it claimed until A is stopped, so A has
			// messages of its own to be stopped among.
			<-aStopped
		}
		mu.Lock()
		got[m.ID]++
		by[replica]++
		if replica == "a" && by["a"] == 3 {
			stopA() // A is stopped while this send is in flight
		}
		mu.Unlock()
	})
	if err := stA.CreateSubscription(ctx, store.Subscription{Tenant: store.DefaultTenant, ID: "ops", Application: "web",
		Events: []string{notify.EventStarted, notify.EventWaitingForApproval}, SinkType: notify.SinkWebhook,
		Sink: json.RawMessage(`{"url": "` + recv.URL + `"}`)}); err != nil {
		t.Fatal(err)
	}
	const perBatch = 10
	batch := func(n int) {
		for i := range perBatch {
			createWaiting(t, stA, fmt.Sprintf("p%d-%d", n, i), time.Now())
		}
	}
	batch(1)

	sent := make(chan store.OutboxMessage, 1000)
	run := func(ctx context.Context, st store.Store, name string, feed chan store.Event) chan struct{} {
		n := notify.New(notify.Options{Store: st, Client: named{name}, Recorded: func(m store.OutboxMessage) {
			if m.Status == store.OutboxSent {
				sent <- m
			}
		}})
		done := make(chan struct{})
		go func() {
			defer close(done)
			n.Run(ctx, func(context.Context) <-chan store.Event { return feed })
		}()
		return done
	}
	feedA, feedB := make(chan store.Event, 1), make(chan store.Event, 1)
	doneA := run(ctxA, stA, "a", feedA)
	doneB := run(ctx, stB, "b", feedB)
	defer func() { release(); cancel(); <-doneA; <-doneB }()

	// More events, told to both at once: both make their messages.
	batch(2)
	feedA <- store.Event{}
	feedB <- store.Event{}

	select {
	case <-doneA:
	case <-time.After(time.Minute):
		t.Fatal("notifier A was not stopped: it sent fewer than 3 messages")
	}
	release()
	feedB <- store.Event{} // an event another replica saved wakes B

	const want = 2 * 2 * perBatch // started and waiting, per pipeline
	for i := range want {
		select {
		case <-sent:
		case <-time.After(time.Minute):
			t.Fatalf("%d messages recorded sent, want %d", i, want)
		}
	}
	list, err := stB.ListDeliveries(ctx, store.DefaultTenant, "ops", 1000)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(list) != want || len(got) != want {
		t.Errorf("%d messages in the outbox, %d received, want %d", len(list), len(got), want)
	}
	for _, m := range list {
		if m.Status != store.OutboxSent || m.Attempts != 1 || got[m.Key] != 1 {
			t.Errorf("message %s: %s after %d attempts, received %d times; want sent once", m.Key, m.Status, m.Attempts, got[m.Key])
		}
	}
	if by["a"] < 3 || by["b"] == 0 {
		t.Errorf("sent by A %d, by B %d: want A's 3 before it stopped and the rest by B", by["a"], by["b"])
	}
	t.Logf("sent by A %d, by B %d", by["a"], by["b"])
}

// TestDeadReplicasClaimsAreTakenOver: messages another replica claimed and
// never recorded (it died while sending) are not sent while its claim
// holds, and are sent, once, by this notifier when it expired.
func TestDeadReplicasClaimsAreTakenOver(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	recv := newReceiver(t, nil)
	f.subscribe(t, store.Subscription{ID: "ops", Application: "web", Events: []string{notify.EventStarted, notify.EventWaitingForApproval},
		SinkType: notify.SinkWebhook, Sink: json.RawMessage(`{"url": "` + recv.URL + `"}`)})
	f.waitingPipeline(t, "p1")
	n := f.notifier(f.st)
	n.CatchUp(ctx)
	dead, err := f.st.ClaimOutbox(ctx, f.clock.Now(), f.clock.Now().Add(time.Minute), 0)
	if err != nil || len(dead) != 2 {
		t.Fatalf("the dead replica's claim: %d messages, %v; want started and waiting", len(dead), err)
	}
	n.DeliverDue(ctx)
	if got, _ := recv.requests(); len(got) != 0 {
		t.Fatalf("sent %d messages while another replica's claim held", len(got))
	}
	f.clock.Advance(time.Minute)
	n.DeliverDue(ctx)
	got, _ := recv.requests()
	seen := map[any]int{}
	for _, m := range got {
		seen[m["id"]]++
	}
	if len(got) != 2 || len(seen) != 2 {
		t.Errorf("after the claim expired: %d messages sent (%v), want the 2 once each", len(got), seen)
	}
	for _, m := range deliveries(t, f.st) {
		if m.Status != store.OutboxSent || m.Attempts != 1 {
			t.Errorf("message %s: %s after %d attempts, want sent at the first", m.Key, m.Status, m.Attempts)
		}
	}
	// The dead replica's late record, under its expired claim, is refused.
	late := dead[0]
	late.Status, late.Attempts = store.OutboxFailed, 1
	if err := f.st.RecordDelivery(ctx, late); !errors.Is(err, store.ErrConflict) {
		t.Errorf("the dead replica's late record: %v, want ErrConflict", err)
	}
}
