package auth

import (
	"fmt"
	"sync"
)

// DefaultMaxStreams is how many event streams one principal may hold open
// at once when nothing else is configured: enough for a few browser tabs
// and a CLI watching, far fewer than what exhausts the server.
const DefaultMaxStreams = 20

// StreamLimit caps the long-lived event streams (the API's Server-Sent
// Events and the console's) each principal holds open at once. One value
// is shared by the API and the console, so the cap is for both together.
// The zero value is not usable; use NewStreamLimit.
type StreamLimit struct {
	max  int
	mu   sync.Mutex
	open map[string]int // by tenant and subject
}

// NewStreamLimit returns a limit of max streams per principal (max < 1
// means DefaultMaxStreams).
func NewStreamLimit(max int) *StreamLimit {
	if max < 1 {
		max = DefaultMaxStreams
	}
	return &StreamLimit{max: max, open: map[string]int{}}
}

// StreamsError is the refusal of one stream too many.
type StreamsError struct{ Max int }

func (e *StreamsError) Error() string {
	return fmt.Sprintf("%d event streams are open for this principal, the most allowed at once; close one and retry", e.Max)
}

// Acquire counts one more stream of p, or refuses it with a *StreamsError
// when p holds the maximum. Call release, once, when the stream ends.
func (l *StreamLimit) Acquire(p Principal) (release func(), err error) {
	k := p.Tenant + "\x00" + p.ClientID
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[k] >= l.max {
		return nil, &StreamsError{Max: l.max}
	}
	l.open[k]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.open[k]--; l.open[k] <= 0 {
				delete(l.open, k)
			}
		})
	}, nil
}
