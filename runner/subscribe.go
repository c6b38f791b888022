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
	list := make([]*subscriber, 0, len(ss.subs[tenant]))
	for s := range ss.subs[tenant] {
		list = append(list, s)
	}
	ss.mu.Unlock()
	var dropped []*subscriber
	for _, s := range list {
		if ss.delivering != nil {
			ss.delivering(tenant)
		}
		if !s.send(events) {
			dropped = append(dropped, s)
		}
	}
	for _, s := range dropped {
		ss.remove(tenant, s)
	}
}
