package runner

import (
	"context"

	"github.com/sortie-cd/sortie/store"
)

// subscriber receives a tenant's events. A subscriber that does not keep up
// is dropped (its channel closed): it reconnects and replays from the store
// with its last sequence number, so nothing is lost and no writer blocks.
type subscriber struct {
	ch chan store.Event
}

const subscriberBuffer = 256

// Subscribe delivers every event of tenant saved from now on, until ctx
// ends or the subscriber falls behind; then the channel is closed.
func (r *Runner) Subscribe(ctx context.Context, tenant string) <-chan store.Event {
	s := &subscriber{ch: make(chan store.Event, subscriberBuffer)}
	r.mu.Lock()
	if r.subs[tenant] == nil {
		r.subs[tenant] = map[*subscriber]struct{}{}
	}
	r.subs[tenant][s] = struct{}{}
	r.mu.Unlock()
	context.AfterFunc(ctx, func() { r.unsubscribe(tenant, s) })
	return s.ch
}

func (r *Runner) unsubscribe(tenant string, s *subscriber) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.subs[tenant][s]; ok {
		delete(r.subs[tenant], s)
		close(s.ch)
	}
}

func (r *Runner) publish(tenant string, events []store.Event) {
	if len(events) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := range r.subs[tenant] {
		for _, ev := range events {
			select {
			case s.ch <- ev:
			default:
				delete(r.subs[tenant], s)
				close(s.ch)
			}
			if _, ok := r.subs[tenant][s]; !ok {
				break
			}
		}
	}
}
