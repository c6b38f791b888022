package runner

import (
	"context"
	"sync"

	"github.com/sortie-cd/sortie/store"
)

// subscriber receives a tenant's events. A subscriber that does not keep up
// is dropped (its channel closed): it reconnects and replays from the store
// with its last sequence number, so nothing is lost and no writer blocks.
type subscriber struct {
	mu     sync.Mutex // serialises sends and the close
	ch     chan store.Event
	closed bool
}

const subscriberBuffer = 256

// send delivers events without blocking; false means the subscriber is
// (now) closed.
func (s *subscriber) send(events []store.Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	for _, ev := range events {
		select {
		case s.ch <- ev:
		default:
			s.closed = true
			close(s.ch)
			return false
		}
	}
	return true
}

func (s *subscriber) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

// subscribers is the registry of every tenant's subscribers. Its lock is
// its own, never the runner's: the fan-out to many viewers must not hold
// up other pipelines' transitions, which take the runner's lock.
type subscribers struct {
	mu   sync.Mutex
	subs map[string]map[*subscriber]struct{}
	// seen is the last seq published per tenant/pipeline, when other
	// servers' events are fed in too (Options.Feed): an event comes here
	// from this server's save and from the feed, and goes out once.
	seen map[string]int64
	// delivering, when not nil (tests), runs before each delivery, with no
	// lock held.
	delivering func(tenant string)
}

// Subscribe delivers every event of tenant saved from now on, until ctx
// ends or the subscriber falls behind; then the channel is closed.
func (r *Runner) Subscribe(ctx context.Context, tenant string) <-chan store.Event {
	s := &subscriber{ch: make(chan store.Event, subscriberBuffer)}
	r.subs.mu.Lock()
	if r.subs.subs[tenant] == nil {
		r.subs.subs[tenant] = map[*subscriber]struct{}{}
	}
	r.subs.subs[tenant][s] = struct{}{}
	r.subs.mu.Unlock()
	context.AfterFunc(ctx, func() { r.subs.remove(tenant, s) })
	return s.ch
}

// allTenants is the registry key of SubscribeAll's subscribers; no tenant
// has an empty name.
const allTenants = ""

// SubscribeAll is Subscribe for every tenant at once: the notifier's feed.
func (r *Runner) SubscribeAll(ctx context.Context) <-chan store.Event {
	return r.Subscribe(ctx, allTenants)
}

func (ss *subscribers) remove(tenant string, s *subscriber) {
	ss.mu.Lock()
	delete(ss.subs[tenant], s)
	if len(ss.subs[tenant]) == 0 {
		delete(ss.subs, tenant)
	}
	ss.mu.Unlock()
	s.close()
}

// publish delivers events to tenant's subscribers. Callers hold no lock:
// neither the runner's nor a pipeline's.
func (r *Runner) publish(tenant string, events []store.Event) {
	if len(events) == 0 {
		return
	}
	ss := &r.subs
	ss.mu.Lock()
	if ss.seen != nil {
		events = ss.unseen(tenant, events)
		if len(events) == 0 {
			ss.mu.Unlock()
			return
		}
	}
	type sub struct {
		key string
		s   *subscriber
	}
	list := make([]sub, 0, len(ss.subs[tenant])+len(ss.subs[allTenants]))
	for _, k := range []string{tenant, allTenants} {
		for s := range ss.subs[k] {
			list = append(list, sub{k, s})
		}
	}
	ss.mu.Unlock()
	var dropped []sub
	for _, s := range list {
		if ss.delivering != nil {
			ss.delivering(tenant)
		}
		if !s.s.send(events) {
			dropped = append(dropped, s)
		}
	}
	for _, s := range dropped {
		ss.remove(s.key, s.s)
	}
}

// maxSeen bounds the seq cursors kept per pipeline; past it they are
// forgotten at once, and an event seen again then reaches subscribers
// twice, which drop it by its seq (the API's streams and the console do).
const maxSeen = 100000

// unseen keeps the events after the pipeline's cursor and moves it. Runs
// under ss.mu.
func (ss *subscribers) unseen(tenant string, events []store.Event) []store.Event {
	if len(ss.seen) > maxSeen {
		clear(ss.seen)
	}
	out := events[:0:0]
	for _, ev := range events {
		k := key(tenant, ev.Pipeline)
		if ev.Seq > ss.seen[k] {
			out = append(out, ev)
			ss.seen[k] = ev.Seq
		}
	}
	return out
}

// Feed tells a runner of events saved by other servers sharing its store.
type Feed interface {
	// Saved delivers a note for each batch of events saved (by any
	// server), until it is closed.
	Saved() <-chan Saved
}

// Saved says that events First to Last of a pipeline were saved; Lost
// says instead that notes may have been lost.
type Saved struct {
	Tenant, Pipeline string
	First, Last      int64
	Lost             bool
}

// follow publishes the events other servers saved: on each note it reads
// the events past what this runner published of that pipeline (nothing,
// when it published them itself). When notes were lost every subscriber is
// dropped: it replays from the store with its last seq.
func (r *Runner) follow(f Feed) {
	for {
		var s Saved
		var ok bool
		select {
		case <-r.ctx.Done():
			return
		case s, ok = <-f.Saved():
			if !ok {
				return
			}
		}
		if s.Lost {
			r.subs.dropAll()
			continue
		}
		ss := &r.subs
		ss.mu.Lock()
		after, known := ss.seen[key(s.Tenant, s.Pipeline)]
		wanted := len(ss.subs[s.Tenant])+len(ss.subs[allTenants]) > 0
		ss.mu.Unlock()
		if known && s.Last <= after {
			continue // this runner saved (or published) them
		}
		r.savedElsewhere(s.Tenant, s.Pipeline)
		if !wanted {
			continue
		}
		if !known {
			after = s.First - 1
		}
		events, err := r.store.Events(r.ctx, s.Tenant, s.Pipeline, after)
		if err != nil {
			if r.ctx.Err() == nil {
				r.log.Warn("read another server's events", "tenant", s.Tenant, "pipeline", s.Pipeline, "err", err)
			}
			continue
		}
		for i := range events {
			events[i].Tenant = s.Tenant
		}
		r.publish(s.Tenant, events)
	}
}

// savedElsewhere is told that another server saved events of a pipeline.
// When this runner holds that pipeline in memory, another replica may have
// taken it over (an action reached it): the copy here is checked against
// the store at once and let go when the lease is no longer this runner's,
// so Get answers from the store from then on, not from a copy that stops
// moving until the next renewal would notice.
func (r *Runner) savedElsewhere(tenant, id string) {
	r.mu.Lock()
	pp, ok := r.pipes[key(tenant, id)]
	r.mu.Unlock()
	if ok {
		r.stale(r.ctx, pp)
	}
}

// dropAll closes every subscriber: each replays from the store.
func (ss *subscribers) dropAll() {
	ss.mu.Lock()
	var all []*subscriber
	for _, m := range ss.subs {
		for s := range m {
			all = append(all, s)
		}
	}
	ss.subs = map[string]map[*subscriber]struct{}{}
	ss.mu.Unlock()
	for _, s := range all {
		s.close()
	}
}
