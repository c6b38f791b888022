package replicas

import (
	"sync"

	"github.com/sortie-cd/sortie/runner"
)

// maxQueued is how many notes of saved events wait for the runner before
// they are replaced by one Lost note (its subscribers then replay from the
// store), so a slow runner never holds up the listener.
const maxQueued = 10000

// feed queues the notes of saved events for the runner.
type feed struct {
	mu     sync.Mutex
	queue  []runner.Saved
	wake   chan struct{}
	out    chan runner.Saved
	done   chan struct{}
	closed bool
}

func newFeed() *feed {
	f := &feed{wake: make(chan struct{}, 1), out: make(chan runner.Saved), done: make(chan struct{})}
	go f.forward()
	return f
}

// Saved implements runner.Feed.
func (f *feed) Saved() <-chan runner.Saved { return f.out }

func (f *feed) push(s runner.Saved) {
	f.mu.Lock()
	if len(f.queue) >= maxQueued || s.Lost {
		f.queue = []runner.Saved{{Lost: true}}
	} else {
		f.queue = append(f.queue, s)
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *feed) forward() {
	defer close(f.out)
	for {
		f.mu.Lock()
		q := f.queue
		f.queue = nil
		f.mu.Unlock()
		for _, s := range q {
			select {
			case f.out <- s:
			case <-f.done:
				return
			}
		}
		select {
		case <-f.wake:
		case <-f.done:
			return
		}
	}
}

func (f *feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.done)
	}
}
