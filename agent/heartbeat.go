package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// silence is heartbeat's error when the peer said nothing for too long.
type silence struct {
	peer string
	d    time.Duration
}

func (s *silence) Error() string {
	return fmt.Sprintf("no heartbeat from the %s for %s", s.peer, s.d.Round(time.Millisecond))
}

// heartbeat keeps one side of a stream alive: every interval it sends a
// heartbeat, unless the peer (named peer in the error) has been heard of
// last (heard) more than MissedHeartbeats intervals ago by the clock now;
// then it returns a *silence. It returns send's error, or nil when ctx
// ends. The agent and the hub both run it; the ticker is the runtime's,
// so a test controls its time with testing/synctest.
func heartbeat(ctx context.Context, interval time.Duration, peer string, now, heard func() time.Time, send func() error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if quiet := now().Sub(heard()); quiet > MissedHeartbeats*interval {
			return &silence{peer: peer, d: quiet}
		}
		if err := send(); err != nil {
			return err
		}
	}
}

// reconnect calls attempt until ctx ends, waiting backoff(n, lo, hi)
// before retry n, where n counts the attempts since the last one that
// attempt reports accepted (the server took the stream). retrying, when
// not nil, is told each error and the wait that follows it. The timer is
// the runtime's, so a test controls its time with testing/synctest.
func reconnect(ctx context.Context, lo, hi time.Duration, attempt func(context.Context) (accepted bool, err error), retrying func(err error, wait time.Duration)) {
	failures := 0
	for {
		accepted, err := attempt(ctx)
		if ctx.Err() != nil {
			return
		}
		if accepted {
			failures = 0
		}
		d := backoff(failures, lo, hi)
		failures++
		if retrying != nil {
			retrying(err, d)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff is the delay before retry n (from 0): exponential from lo, capped
// at hi, with half of it random so that agents cut off together do not
// come back together.
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}
