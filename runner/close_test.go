package runner_test

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/leaktest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
)

// manualClock is a clock whose time moves when the test says, and whose
// timers fire when the test calls them.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
}

type manualTimer struct {
	at time.Time
	f  func()
}

func (*manualTimer) Stop() bool { return true }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) runner.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

// last returns the latest timer, with the clock moved to its time.
func (c *manualClock) last() *manualTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.timers[len(c.timers)-1]
	c.now = t.at
	return t
}

// hanging is an executor whose commands run until their context ends: the
// subject here is the runner's own timer, so no cluster plays a part.
type hanging struct{ started chan struct{} }

func (hanging) HasAccount(string, string) bool { return true }

func (x hanging) Execute(ctx context.Context, job runner.Job) pipeline.CommandResult {
	x.started <- struct{}{}
	<-ctx.Done()
	return pipeline.CommandResult{Message: ctx.Err().Error()}
}

// Close waits for a timer's callback that already runs: none outlives it.
func TestCloseWaitsForARunningTimer(t *testing.T) {
	st := openStore(t)
	clock := &manualClock{now: time.Now()}
	x := hanging{started: make(chan struct{}, 4)}
	r := runner.New(runner.Options{Store: st, Executor: x, Clock: clock})
	e := &env{t: t, r: r, store: st, ns: "default"}
	e.start(e.file("timer", "  prod: {account: local, namespace: default, strategy: canary}",
		"  canary: {canary: {steps: [{setWeight: {weight: 50}}]}}", "example/web:v1", ""))
	<-x.started
	// The timer at the command's deadline fires; its callback stops, with
	// no lock held, while it hands the timeout's events to a subscriber.
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	runner.SetDelivering(r, func(string) {
		once.Do(func() {
			close(entered)
			<-release
		})
	})
	r.Subscribe(t.Context(), store.DefaultTenant) // so that there is a delivery
	tm := clock.last()
	go tm.f()
	<-entered
	closed := make(chan struct{})
	go func() { r.Close(); close(closed) }()
	// Either Close returns, too early, or it waits for the callback.
	for waiting := false; !waiting; {
		select {
		case <-closed:
			close(release)
			t.Fatal("Close returned while a timer's callback ran")
		default:
		}
		for _, g := range leaktest.Running("github.com/sortie-cd/sortie/runner.(*Runner).Close") {
			waiting = waiting || strings.Contains(g, "sync.(*WaitGroup).Wait")
		}
		runtime.Gosched()
	}
	close(release)
	<-closed
	leaktest.Check(t, "github.com/sortie-cd/sortie/runner.")
}
