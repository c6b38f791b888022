package notify

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/sortie-cd/sortie/store"
)

// Store is what a Notifier needs of the store: store.Store has it.
type Store interface {
	store.Notifications
	GetPipeline(ctx context.Context, tenant, id string) (*store.Pipeline, error)
}

// Clock is time as the Notifier sees it; tests pass a fake.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a stoppable timer.
type Timer interface{ Stop() bool }

type realClock struct{}

func (realClock) Now() time.Time                            { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Defaults of Options.
const (
	DefaultBackoff     = 10 * time.Second
	DefaultMaxBackoff  = 10 * time.Minute
	DefaultMaxAttempts = 8
	// DefaultClaim is how long a message a notifier took stays its own:
	// longer than a send may take (the default client's timeout is 30 s),
	// so that a message another replica's notifier is sending is not sent
	// again, and short enough that the messages of a replica that died are
	// sent soon by another.
	DefaultClaim = 2 * time.Minute
	// DefaultHorizon: events of pipelines not updated for this long are
	// not notified (a database from before notifications, a server down
	// for days).
	DefaultHorizon = 24 * time.Hour
)

// Options configure a Notifier.
type Options struct {
	Store Store
	// Secrets resolves the sinks' secrets; nil resolves none.
	Secrets SecretResolver
	// Client makes the sinks' HTTP calls; nil means an http.Client with a
	// 30 s timeout.
	Client Doer
	// Links signs approve and roll back links; nil sends messages without.
	Links *Links
	// ConsoleURL is the console's base URL for pipeline links; empty
	// leaves them out.
	ConsoleURL string
	// Clock: nil means the real clock.
	Clock Clock
	// Log: nil discards. It never receives a secret.
	Log *slog.Logger
	// Backoff is the wait after a first failed attempt, doubled after each
	// (at most MaxBackoff); MaxAttempts is when a message is given up.
	Backoff, MaxBackoff time.Duration
	MaxAttempts         int
	// Claim is how long a message taken for delivery is this notifier's
	// (0: DefaultClaim); see store.Notifications.ClaimOutbox.
	Claim   time.Duration
	Horizon time.Duration
	// Batch is how many events CatchUp reads at a time (0: 500).
	Batch int
	// Recorded, when not nil, is called with each attempt once it is
	// recorded: what tests wait on.
	Recorded func(store.OutboxMessage)
}

// Notifier turns pipeline events into messages and delivers them.
type Notifier struct {
	o    Options
	wake chan struct{}
}

// New returns a Notifier; Run starts it.
func New(o Options) *Notifier {
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.Claim <= 0 {
		o.Claim = DefaultClaim
	}
	if o.Horizon <= 0 {
		o.Horizon = DefaultHorizon
	}
	if o.Batch <= 0 {
		o.Batch = 500
	}
	return &Notifier{o: o, wake: make(chan struct{}, 1)}
}

// Run reads events and delivers messages until ctx ends. subscribe is the
// runner's live feed of every tenant's events (it may close the channel
// when the reader falls behind: Run subscribes again). The feed only wakes
// it: what to notify is read from the store, past each pipeline's cursor,
// so an event saved while the server was down is notified after it
// starts, and one already enqueued is not again.
func (n *Notifier) Run(ctx context.Context, subscribe func(context.Context) <-chan store.Event) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.deliverLoop(ctx)
	}()
	for ctx.Err() == nil {
		n.follow(ctx, subscribe(ctx))
	}
	<-done
}

// follow catches up, then again at each event, until ch closes or ctx
// ends.
func (n *Notifier) follow(ctx context.Context, ch <-chan store.Event) {
	n.CatchUp(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ch:
			if !ok {
				return
			}
		}
		// Whatever else queued up is read from the store at once.
		for drained := false; !drained; {
			select {
			case _, ok := <-ch:
				if !ok {
					return
				}
			default:
				drained = true
			}
		}
		n.CatchUp(ctx)
	}
}

// CatchUp turns every event past its pipeline's cursor into outbox
// messages; errors are logged and retried at the next event.
func (n *Notifier) CatchUp(ctx context.Context) {
	for ctx.Err() == nil {
		limit := n.o.Batch
		since := n.o.Clock.Now().Add(-n.o.Horizon)
		events, err := n.o.Store.NotifyBacklog(ctx, since, limit)
		if err != nil {
			n.o.Log.Error("notify: read events", "err", err)
			return
		}
		full := len(events) == limit
		for len(events) > 0 {
			i := 1
			for i < len(events) && events[i].Tenant == events[0].Tenant && events[i].Pipeline == events[0].Pipeline {
				i++
			}
			if err := n.enqueue(ctx, events[:i]); err != nil {
				n.o.Log.Error("notify: enqueue", "tenant", events[0].Tenant, "pipeline", events[0].Pipeline, "err", err)
				return
			}
			events = events[i:]
		}
		n.poke()
		if !full {
			return
		}
	}
}

// enqueue makes the messages of one pipeline's events.
func (n *Notifier) enqueue(ctx context.Context, events []store.Event) error {
	tenant, id := events[0].Tenant, events[0].Pipeline
	last := events[len(events)-1].Seq
	var occ []struct {
		ev store.Event
		o  occurrence
	}
	for _, ev := range events {
		for _, o := range classify(ev) {
			occ = append(occ, struct {
				ev store.Event
				o  occurrence
			}{ev, o})
		}
	}
	if len(occ) == 0 {
		return n.o.Store.Enqueue(ctx, tenant, id, last, nil)
	}
	subs, err := n.o.Store.ListSubscriptions(ctx, tenant)
	if err != nil {
		return err
	}
	p, err := n.o.Store.GetPipeline(ctx, tenant, id)
	if err != nil {
		return err
	}
	var targets []string
	for _, t := range p.State.Targets {
		targets = append(targets, t.Name)
	}
	var msgs []store.OutboxMessage
	for _, x := range occ {
		for _, sub := range subs {
			if !matches(sub, x.o, p.Application, targets) {
				continue
			}
			key := fmt.Sprintf("%s/%s/%d/%s/%s/%s", sub.ID, id, x.ev.Seq, x.o.kind, x.o.target, x.o.step)
			m := Message{ID: key, Event: x.o.kind, Tenant: tenant, Application: p.Application, Pipeline: id,
				Target: x.o.target, Step: x.o.step, Status: x.o.status, Text: x.o.text(p.Application, id), At: x.ev.At}
			if n.o.ConsoleURL != "" {
				m.URL = n.o.ConsoleURL + "/pipelines/" + id
			}
			if x.o.waiting && n.o.Links != nil {
				now := n.o.Clock.Now()
				m.ApproveURL = n.o.Links.New(tenant, id, x.o.target, x.o.step, ActionApprove, now)
				m.RollbackURL = n.o.Links.New(tenant, id, x.o.target, x.o.step, ActionRollback, now)
			}
			payload, err := json.Marshal(m)
			if err != nil {
				return err
			}
			msgs = append(msgs, store.OutboxMessage{Key: key, Subscription: sub.ID, Pipeline: id, Kind: x.o.kind, Payload: payload,
				CreatedAt: n.o.Clock.Now()})
		}
	}
	return n.o.Store.Enqueue(ctx, tenant, id, last, msgs)
}

func (n *Notifier) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// deliverLoop sends what is due, then waits for the next due time or a
// new message.
func (n *Notifier) deliverLoop(ctx context.Context) {
	var timer Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for ctx.Err() == nil {
		n.DeliverDue(ctx)
		if timer != nil {
			timer.Stop()
			timer = nil
		}
		next, err := n.o.Store.NextOutboxDue(ctx)
		if err != nil && ctx.Err() == nil {
			n.o.Log.Error("notify: read the outbox", "err", err)
		}
		if !next.IsZero() {
			timer = n.o.Clock.AfterFunc(max(next.Sub(n.o.Clock.Now()), 0), n.poke)
		}
		select {
		case <-ctx.Done():
		case <-n.wake:
		}
	}
}

// DeliverDue makes one attempt at every message due now. Messages are
// claimed first (ClaimOutbox), so with several replicas on one database
// each message is sent by one of them. A send begun is finished and
// recorded even when ctx ends (within the client's timeout); the messages
// claimed and not begun are given back, due at once for another replica.
func (n *Notifier) DeliverDue(ctx context.Context) {
	for ctx.Err() == nil {
		const limit = 100
		now := n.o.Clock.Now()
		due, err := n.o.Store.ClaimOutbox(ctx, now, now.Add(n.o.Claim), limit)
		if err != nil {
			n.o.Log.Error("notify: read the outbox", "err", err)
			return
		}
		for i, m := range due {
			if ctx.Err() != nil {
				n.giveBack(due[i:])
				return
			}
			n.attempt(ctx, m)
		}
		if len(due) < limit {
			return
		}
	}
}

// giveBack makes claimed messages due again as they were.
func (n *Notifier) giveBack(ms []store.OutboxMessage) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, m := range ms {
		if err := n.o.Store.RecordDelivery(ctx, m); err != nil {
			n.o.Log.Info("notify: give a message back", "message", m.ID, "err", err)
		}
	}
}

// attempt delivers m once and records how it went.
func (n *Notifier) attempt(ctx context.Context, m store.OutboxMessage) {
	// Not cut short by ctx: a message the sink got is recorded as sent,
	// or another replica would send it again. It is bounded well within
	// the claim, so that no other replica takes it while it is sent.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.o.Claim/2)
	defer cancel()
	err := n.sendStored(ctx, m)
	m.Attempts++
	m.UpdatedAt = n.o.Clock.Now()
	m.LastError = ""
	switch de, _ := errors.AsType[*deliveryError](err); {
	case err == nil:
		m.Status = store.OutboxSent
	case de != nil && de.retry && m.Attempts < n.o.MaxAttempts:
		m.Status, m.LastError = store.OutboxPending, err.Error()
		m.NextAttempt = m.UpdatedAt.Add(n.backoff(m.Attempts))
	default:
		m.Status, m.LastError = store.OutboxFailed, err.Error()
	}
	if err != nil {
		n.o.Log.Info("notify: delivery failed", "tenant", m.Tenant, "subscription", m.Subscription, "message", m.ID,
			"attempt", m.Attempts, "status", m.Status, "err", m.LastError)
	}
	if err := n.o.Store.RecordDelivery(ctx, m); err != nil {
		// ErrConflict: the claim had expired and another replica took
		// the message (a send longer than the claim).
		n.o.Log.Error("notify: record delivery", "message", m.ID, "err", err)
		return
	}
	if n.o.Recorded != nil {
		n.o.Recorded(m)
	}
}

func (n *Notifier) backoff(attempts int) time.Duration {
	d := n.o.Backoff
	for i := 1; i < attempts && d < n.o.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, n.o.MaxBackoff)
}

// sendStored sends an outbox message to its subscription's sink. A
// subscription deleted since is a failure not worth a retry.
func (n *Notifier) sendStored(ctx context.Context, m store.OutboxMessage) error {
	sub, err := n.o.Store.GetSubscription(ctx, m.Tenant, m.Subscription)
	if errors.Is(err, store.ErrNotFound) {
		return &deliveryError{msg: "subscription " + m.Subscription + " was deleted"}
	}
	if err != nil {
		return &deliveryError{msg: "read the subscription: " + err.Error(), retry: true}
	}
	var msg Message
	if err := json.Unmarshal(m.Payload, &msg); err != nil {
		return &deliveryError{msg: "the stored message does not decode: " + err.Error()}
	}
	return n.Send(ctx, *sub, msg)
}

// Send sends msg to sub's sink once. Its error says why in words safe to
// record: every secret value masked.
func (n *Notifier) Send(ctx context.Context, sub store.Subscription, msg Message) error {
	sink, err := ParseSink(sub.SinkType, sub.Sink)
	if err != nil {
		return &deliveryError{msg: "the subscription's sink: " + err.Error()}
	}
	secrets := n.o.Secrets
	if secrets == nil {
		secrets = noSecrets{}
	}
	req, err := render(ctx, sub.SinkType, sink, msg, sub.Tenant, secrets)
	if err != nil {
		// A secret not set yet may be set: worth another try.
		return &deliveryError{msg: err.Error(), retry: true}
	}
	return send(ctx, n.o.Client, req)
}

type noSecrets struct{}

func (noSecrets) Secret(_ context.Context, _, name string) (string, []string, error) {
	return "", nil, errors.New("this server keeps no secrets")
}

// Test sends a sample message to a subscription's sink once, now, and
// records it with the deliveries; the record says how it went.
func (n *Notifier) Test(ctx context.Context, tenant, id string) (store.OutboxMessage, error) {
	sub, err := n.o.Store.GetSubscription(ctx, tenant, id)
	if err != nil {
		return store.OutboxMessage{}, err
	}
	now := n.o.Clock.Now()
	key := "test/" + rand.Text()
	msg := Message{ID: key, Event: EventTest, Tenant: tenant, Application: sub.Application, Target: sub.Target,
		Text: "Sortie test message for subscription " + id, At: now}
	payload, err := json.Marshal(msg)
	if err != nil {
		return store.OutboxMessage{}, err
	}
	rec := store.OutboxMessage{Tenant: tenant, Key: key, Subscription: id, Kind: EventTest, Payload: payload, CreatedAt: now,
		NextAttempt: now.Add(time.Duration(1 << 62))}
	if err := n.o.Store.Enqueue(ctx, tenant, "", 0, []store.OutboxMessage{rec}); err != nil {
		return rec, err
	}
	list, err := n.o.Store.ListDeliveries(ctx, tenant, id, 1)
	if err != nil || len(list) == 0 || list[0].Key != key {
		return rec, fmt.Errorf("notify: find the test message: %v", err)
	}
	rec = list[0]
	rec.Attempts, rec.UpdatedAt = 1, now
	if err := n.Send(ctx, *sub, msg); err != nil {
		rec.Status, rec.LastError = store.OutboxFailed, err.Error()
	} else {
		rec.Status = store.OutboxSent
	}
	return rec, n.o.Store.RecordDelivery(ctx, rec)
}
