package agent

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// The heartbeat loop, on synctest's clock: a heartbeat exactly every
// interval while the peer talks, and the end of the stream after
// MissedHeartbeats intervals of silence, no earlier, no later.
func TestHeartbeatIntervalOnAFakeClock(t *testing.T) {
	const interval = 10 * time.Second
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		var sent []time.Duration
		// A peer that answers every heartbeat.
		last := start
		err := heartbeat(ctx, interval, "server", time.Now, func() time.Time { return last }, func() error {
			sent = append(sent, time.Since(start))
			last = time.Now()
			if len(sent) == 10 {
				cancel()
			}
			return nil
		})
		if err != nil {
			t.Fatalf("heartbeat with a talking peer ended with %v", err)
		}
		for i, d := range sent {
			if want := time.Duration(i+1) * interval; d != want {
				t.Errorf("heartbeat %d sent at %s, want %s", i+1, d, want)
			}
		}
	})
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		sends := 0
		// A peer that said nothing since start.
		err := heartbeat(t.Context(), interval, "agent", time.Now, func() time.Time { return start }, func() error {
			sends++
			return nil
		})
		var quiet *silence
		if !errors.As(err, &quiet) {
			t.Fatalf("heartbeat with a silent peer ended with %v, want silence", err)
		}
		// Silence of exactly MissedHeartbeats intervals is still allowed;
		// the next tick ends the stream.
		if took, want := time.Since(start), (MissedHeartbeats+1)*interval; took != want {
			t.Errorf("a silent peer was dropped after %s, want %s", took, want)
		}
		if sends != MissedHeartbeats {
			t.Errorf("%d heartbeats sent to a silent peer, want %d", sends, MissedHeartbeats)
		}
		if want := "no heartbeat from the agent for 40s"; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		broken := errors.New("stream broken")
		start := time.Now()
		err := heartbeat(t.Context(), interval, "server", time.Now, time.Now, func() error { return broken })
		if !errors.Is(err, broken) || time.Since(start) != interval {
			t.Errorf("a failed send ended the loop with %v after %s, want %v after %s", err, time.Since(start), broken, interval)
		}
	})
}

// The reconnect loop, on synctest's clock: the wait before retry n grows
// from lo by doubling, within [ceil/2, ceil] of ceil = min(lo·2ⁿ, hi),
// stays capped at hi, and starts from lo again after an accepted stream.
func TestReconnectBackoffOnAFakeClock(t *testing.T) {
	const lo, hi = 500 * time.Millisecond, 30 * time.Second
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		var at []time.Time
		var told []time.Duration
		// Attempt 10 is accepted (then the stream drops); all others fail.
		const accepted, attempts = 10, 16
		reconnect(ctx, lo, hi, func(context.Context) (bool, error) {
			at = append(at, time.Now())
			if len(at) == attempts {
				cancel()
			}
			return len(at) == accepted, errors.New("refused")
		}, func(err error, d time.Duration) { told = append(told, d) })
		if len(at) != attempts {
			t.Fatalf("%d attempts, want %d", len(at), attempts)
		}
		n := 0 // failures since the last accepted attempt
		for i := 1; i < len(at); i++ {
			if i == accepted {
				n = 0
			}
			ceil := min(lo<<n, hi)
			gap := at[i].Sub(at[i-1])
			if gap < ceil/2 || gap > ceil {
				t.Errorf("wait before attempt %d: %s, want within [%s, %s]", i+1, gap, ceil/2, ceil)
			}
			if told[i-1] != gap {
				t.Errorf("wait before attempt %d: told %s, waited %s", i+1, told[i-1], gap)
			}
			n++
		}
	})
}
