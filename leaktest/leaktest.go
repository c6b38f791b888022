package leaktest

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Within is how long Check waits for goroutines to end.
const Within = 10 * time.Second

// Check fails t unless, within Within, no goroutine but the caller's is in
// a function whose name starts with one of prefixes.
func Check(t testing.TB, prefixes ...string) {
	t.Helper()
	deadline := time.Now().Add(Within)
	delay := time.Millisecond
	for {
		left := Running(prefixes...)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines outlived their owner:\n\n%s", len(left), strings.Join(left, "\n\n"))
		}
		// No event marks a goroutine's end: read the stacks again shortly.
		t := time.NewTimer(delay)
		<-t.C
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// Running returns the stacks of the goroutines, other than the caller's,
// that are in a function whose name starts with one of prefixes.
func Running(prefixes ...string) []string {
	var out []string
	for i, g := range strings.Split(stacks(), "\n\n") {
		if i == 0 {
			continue // the caller's, which runtime.Stack lists first
		}
		if in(g, prefixes) {
			out = append(out, g)
		}
	}
	return out
}

// in reports whether a goroutine's stack has a frame in one of prefixes
// (its "created by" line, naming the creator, does not count).
func in(stack string, prefixes []string) bool {
	for _, line := range strings.Split(stack, "\n") {
		if strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "created by ") {
			continue
		}
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				return true
			}
		}
	}
	return false
}

func stacks() string {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}
