package auth

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxIdleKeys is how many keys a limiters map holds before it forgets those
// whose bucket is full again (they behave exactly like a new key), so
// requests with made-up client ids cannot grow it without bound.
const maxIdleKeys = 10000

// limiters is one token bucket per key (a remote address or a client id).
type limiters struct {
	limit Limit
	mu    sync.Mutex
	m     map[string]*rate.Limiter
}

func newLimiters(l Limit) *limiters {
	return &limiters{limit: l, m: map[string]*rate.Limiter{}}
}

// reserve takes a token for key at now. When none is left it takes nothing
// and returns how long to wait; otherwise it returns a func that gives the
// token back (for the client limiter, which only counts failures).
func (ls *limiters) reserve(key string, now time.Time) (wait time.Duration, giveBack func()) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l, ok := ls.m[key]
	if !ok {
		if len(ls.m) >= maxIdleKeys {
			ls.sweep(now)
		}
		l = rate.NewLimiter(ls.limit.Rate, ls.limit.Burst)
		ls.m[key] = l
	}
	r := l.ReserveN(now, 1)
	if !r.OK() {
		return time.Minute, nil
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, nil
	}
	return 0, func() {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		r.CancelAt(now)
	}
}

func (ls *limiters) sweep(now time.Time) {
	for k, l := range ls.m {
		if l.TokensAt(now) >= float64(ls.limit.Burst) {
			delete(ls.m, k)
		}
	}
}
