package leaktest

import (
	"strings"
	"testing"
)

func parked(started chan<- struct{}, stop <-chan struct{}) {
	close(started)
	<-stop
}

func TestRunningFindsAGoroutineAndNotTheCaller(t *testing.T) {
	const fn = "github.com/sortie-cd/sortie/leaktest.parked"
	if got := Running("github.com/sortie-cd/sortie/leaktest."); len(got) != 0 {
		t.Fatalf("the caller's own goroutine counted:\n%s", strings.Join(got, "\n\n"))
	}
	started, stop, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() { parked(started, stop); close(done) }()
	<-started
	if got := Running(fn); len(got) != 1 {
		t.Fatalf("Running(%s) = %d goroutines, want the parked one", fn, len(got))
	}
	close(stop)
	<-done
	Check(t, fn)
}
