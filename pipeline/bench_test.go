package pipeline

import (
	"testing"
	"time"
)

// BenchmarkTransition runs whole pipelines in memory: three targets (two in
// parallel after the first), each a 3-step canary with a webhook gate, every
// command answered at once. It reports engine transitions per second; the
// store, not the engine, is meant to bound a real server.
func BenchmarkTransition(b *testing.B) {
	c := canary(weight(10), weight(50), weight(100))
	sp := spec(
		target("staging", c).after(notify("smoke")),
		target("prod-east", c, "staging"),
		target("prod-west", c, "staging"),
	)
	transitions := 0
	b.ReportAllocs()
	for b.Loop() {
		s, err := New("p1", sp, t0)
		if err != nil {
			b.Fatal(err)
		}
		now := t0
		s, _, _, _ = Transition(s, Start{}, now)
		transitions++
		for !s.Status.Terminal() {
			now = now.Add(time.Second)
			s, _, _, err = Transition(s, CommandResult{CommandID: s.Outstanding[0].ID, Success: true, AchievedWeight: 50}, now)
			if err != nil {
				b.Fatal(err)
			}
			transitions++
		}
		if s.Status != StatusSucceeded {
			b.Fatalf("pipeline ended %s", s.Status)
		}
	}
	b.ReportMetric(float64(transitions)/b.Elapsed().Seconds(), "transitions/s")
	b.ReportMetric(float64(transitions)/float64(b.N), "transitions/pipeline")
}
