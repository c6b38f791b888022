package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/kubeexec"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/postgres"
	"github.com/sortie-cd/sortie/store/postgres/pgtest"
	"github.com/sortie-cd/sortie/store/storetest"
)

// pausable is the real clock of a replica that can be paused, as a
// process stopped by SIGSTOP, a long GC pause or a VM migration is: while
// paused, no timer of it fires (its lease renewals, its pipelines' wake-
// ups); they all fire, late, when it resumes.
type pausable struct {
	mu     sync.Mutex
	paused bool
	held   []func()
}

func (c *pausable) Now() time.Time { return time.Now() }

func (c *pausable) AfterFunc(d time.Duration, f func()) runner.Timer {
	return time.AfterFunc(d, func() {
		c.mu.Lock()
		if c.paused {
			c.held = append(c.held, f)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		f()
	})
}

func (c *pausable) pause() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused = true
}

func (c *pausable) resume() {
	c.mu.Lock()
	held := c.held
	c.paused, c.held = false, nil
	c.mu.Unlock()
	for _, f := range held {
		go f()
	}
}

// logSignal is a slog handler that closes a channel at the first record
// with a given message: how a test waits for something a runner logs.
type logSignal struct {
	slog.Handler
	mu   sync.Mutex
	wait map[string]chan time.Time
}

func newLogSignal(t *testing.T) *logSignal {
	return &logSignal{Handler: slog.NewTextHandler(tWriter{t}, nil), wait: map[string]chan time.Time{}}
}

func (l *logSignal) on(msg string) chan time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch, ok := l.wait[msg]
	if !ok {
		ch = make(chan time.Time, 1)
		l.wait[msg] = ch
	}
	return ch
}

func (l *logSignal) Handle(ctx context.Context, r slog.Record) error {
	ch := l.on(r.Message)
	select {
	case ch <- r.Time:
	default:
	}
	return l.Handler.Handle(ctx, r)
}

func (l *logSignal) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrs{l, l.Handler.WithAttrs(as)}
}

type attrs struct {
	l *logSignal
	slog.Handler
}

func (a *attrs) Handle(ctx context.Context, r slog.Record) error { return a.l.Handle(ctx, r) }

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Logf("%s", b)
	return len(b), nil
}

func waitSignal(t *testing.T, ch <-chan time.Time, what string) time.Time {
	t.Helper()
	select {
	case at := <-ch:
		return at
	case <-time.After(2 * time.Minute):
		t.Fatalf("timed out waiting until %s", what)
		return time.Time{}
	}
}

// TestPausedReplicaIsFencedAndAnotherFinishes runs two runners on one
// PostgreSQL database, as two replicas. A starts a canary and is paused
// at its approval gate; once its lease expired B claims the pipeline,
// takes the approval and drives it to the end. When A resumes, its late
// timers find the lease gone (or their save fenced): A writes nothing
// more. The cluster ends exact and no command ran twice.
func TestPausedReplicaIsFencedAndAnotherFinishes(t *testing.T) {
	open, exec := sharedDatabase(t)
	const ttl = 2 * time.Second
	clockA := &pausable{}
	logA, logB := newLogSignal(t), newLogSignal(t)
	a := newEnvOpts(t, runner.Options{Store: open(), Executor: exec, Clock: clockA, Log: slog.New(logA).With("replica", "a"), Replica: "a", LeaseTTL: ttl})
	b := newEnvOpts(t, runner.Options{Store: open(), Executor: exec, Log: slog.New(logB).With("replica", "b"), Replica: "b", LeaseTTL: ttl})
	b.ns = a.ns

	first := a.start(a.file("web", a.oneTarget("staging", "c"), canaryWithApproval, "web:v1", ""))
	if p := a.waitEnd(first); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first deployment ended %s\n%s", p.Status, dump(p))
	}
	id := a.start(a.file("web", a.oneTarget("staging", "c"), canaryWithApproval, "web:v2", ""))
	p := a.waitFor(id, "awaiting approval", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })
	if p.Lease.Owner != "a" || p.Lease.Epoch != 1 {
		t.Fatalf("lease of the new pipeline: %+v, want a's at epoch 1", p.Lease)
	}

	claimed := logB.on("claimed pipelines")
	clockA.pause()
	paused := time.Now()
	at := waitSignal(t, claimed, "b claims the paused replica's pipeline")
	t.Logf("takeover: b claimed the pipeline %v after a was paused (lease TTL %v)", at.Sub(paused).Round(time.Millisecond), ttl)
	got, err := b.store.GetPipeline(context.Background(), store.DefaultTenant, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Lease.Owner != "b" || got.Lease.Epoch != 2 {
		t.Fatalf("lease after the takeover: %+v, want b's at epoch 2", got.Lease)
	}

	rm := pipeline.Principal{Name: "bob", Roles: []string{"release-manager"}}
	if _, err := b.r.Act(context.Background(), store.DefaultTenant, id, pipeline.Approve{By: rm}); err != nil {
		t.Fatal(err)
	}
	p = b.waitEnd(id)
	if p.Status != pipeline.StatusSucceeded {
		t.Fatalf("canary ended %s on b\n%s", p.Status, dump(p))
	}
	before := allEvents(t, b.store, id)

	lostA := logA.on("pipeline lease lost; no longer driving it here")
	clockA.resume()
	waitSignal(t, lostA, "a lets go of the pipeline it lost")
	after := allEvents(t, b.store, id)
	if len(after) != len(before) {
		t.Errorf("a wrote %d events after it lost the lease: %s", len(after)-len(before), eventTypes(after[len(before):]))
	}

	if got := b.images(); got["web:v2"] != 4 || len(got) != 1 {
		t.Errorf("pods after the canary: %v", got)
	}
	if got := b.deploymentNames(); len(got) != 1 || got[0] != "web=web:v2" {
		t.Errorf("deployments after the canary: %v, want only the user's, on v2", got)
	}
	storetest.NoStepTwice(t, after)
}

// sharedDatabase makes a PostgreSQL database for replicas to share:
// open opens a store on it (as each replica does, closed at the test's
// end), and exec is the cluster's executor.
func sharedDatabase(t *testing.T) (open func() *postgres.Store, exec runner.Executor) {
	t.Helper()
	url := pgtest.Database(t)
	open = func() *postgres.Store {
		t.Helper()
		st, err := postgres.Open(context.Background(), url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	kx, err := kube.New(kubetest.Config(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return open, kubeexec.New(store.DefaultTenant, map[string]*kube.Executor{"local": kx}, nil)
}

func allEvents(t *testing.T, st store.Store, id string) []store.Event {
	t.Helper()
	es, err := st.Events(context.Background(), store.DefaultTenant, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func eventTypes(es []store.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Type+" "+string(e.Data))
	}
	return out
}

// holdNext is an executor that, once armed, holds the next command until
// released and then answers it succeeded without running it: the result a
// replica that lost its lease still reports, of a command whose real run
// the replica that took over does.
type holdNext struct {
	runner.Executor
	mu      sync.Mutex
	armed   bool
	held    chan struct{} // closed when the command is held
	release chan struct{}
}

func (h *holdNext) Execute(ctx context.Context, job runner.Job) pipeline.CommandResult {
	h.mu.Lock()
	hold := h.armed
	h.armed = false
	h.mu.Unlock()
	if !hold {
		return h.Executor.Execute(ctx, job)
	}
	close(h.held)
	<-h.release
	return pipeline.CommandResult{CommandID: job.Command.ID, Success: true, Message: "answered by a replica that lost its lease"}
}

// TestLateResultOfAFencedReplicaIsNotWritten: replica A's command is in
// flight when A is paused; B claims the pipeline, runs the command again
// and finishes. A's result, reported after the takeover, is refused by the
// store (ErrFenced): A lets the pipeline go and nothing of it is written.
func TestLateResultOfAFencedReplicaIsNotWritten(t *testing.T) {
	open, exec := sharedDatabase(t)
	hold := &holdNext{Executor: exec, held: make(chan struct{}), release: make(chan struct{})}
	const ttl = 2 * time.Second
	clockA := &pausable{}
	logA, logB := newLogSignal(t), newLogSignal(t)
	a := newEnvOpts(t, runner.Options{Store: open(), Executor: hold, Clock: clockA, Log: slog.New(logA).With("replica", "a"), Replica: "a", LeaseTTL: ttl})
	b := newEnvOpts(t, runner.Options{Store: open(), Executor: exec, Log: slog.New(logB).With("replica", "b"), Replica: "b", LeaseTTL: ttl})
	b.ns = a.ns

	first := a.start(a.file("web", a.oneTarget("staging", "c"), canaryWithApproval, "web:v1", ""))
	if p := a.waitEnd(first); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first deployment ended %s\n%s", p.Status, dump(p))
	}
	id := a.start(a.file("web", a.oneTarget("staging", "c"), canaryWithApproval, "web:v2", ""))
	a.waitFor(id, "awaiting approval", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })
	hold.mu.Lock()
	hold.armed = true
	hold.mu.Unlock()
	rm := pipeline.Principal{Name: "bob", Roles: []string{"release-manager"}}
	if _, err := a.r.Act(context.Background(), store.DefaultTenant, id, pipeline.Approve{By: rm}); err != nil {
		t.Fatal(err)
	}
	select { // setWeight 50 is in flight on a
	case <-hold.held:
	case <-time.After(2 * time.Minute):
		t.Fatal("a's next command never came")
	}
	claimed := logB.on("claimed pipelines")
	clockA.pause()
	waitSignal(t, claimed, "b claims the pipeline")

	lostA := logA.on("pipeline lease lost; no longer driving it here")
	close(hold.release) // a's late result
	waitSignal(t, lostA, "a's save of its late result is fenced")
	p := b.waitEnd(id)
	if p.Status != pipeline.StatusSucceeded {
		t.Fatalf("canary ended %s on b\n%s", p.Status, dump(p))
	}
	events := allEvents(t, b.store, id)
	for _, e := range events {
		if strings.Contains(string(e.Data), "answered by a replica that lost its lease") {
			t.Errorf("a's fenced result was written: %s %s", e.Type, e.Data)
		}
	}
	storetest.NoStepTwice(t, events)
	clockA.resume()
	if got := b.images(); got["web:v2"] != 4 || len(got) != 1 {
		t.Errorf("pods after the canary: %v", got)
	}
}

// TestQueueAcrossReplicas: a deployment queued on replica B behind one that
// A drives starts when A's ends (A takes its lease, from B if B claimed
// it), and an approval given on B takes it over there and finishes it.
func TestQueueAcrossReplicas(t *testing.T) {
	open, exec := sharedDatabase(t)
	a := newEnvOpts(t, runner.Options{Store: open(), Executor: exec, Replica: "a", LeaseTTL: 2 * time.Second})
	b := newEnvOpts(t, runner.Options{Store: open(), Executor: exec, Replica: "b", LeaseTTL: 2 * time.Second})
	b.ns = a.ns
	strategies := "  c:\n    canary:\n      steps:\n        - setWeight: 50\n        - pause: {untilApproved: true}"
	a.waitEnd(a.start(a.file("solo", a.oneTarget("t", "c"), strategies, "web:v1", "")))
	id := a.start(a.file("solo", a.oneTarget("t", "c"), strategies, "web:v2", ""))
	a.waitFor(id, "awaiting approval", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })

	q := b.file("solo", b.oneTarget("t", "c"), strategies, "web:v3", "")
	q.File = "deploymentConfig:\n  ifDeploymentInProgress: {strategy: enqueueOne}\n" + q.File
	res, err := b.r.Start(context.Background(), deployer, store.DefaultTenant, q)
	if err != nil || !res.Queued {
		t.Fatalf("enqueueOne start on b: %+v, %v", res, err)
	}
	if _, err := a.r.Act(context.Background(), store.DefaultTenant, id, pipeline.Approve{By: deployer}); err != nil {
		t.Fatal(err)
	}
	if p := a.waitEnd(id); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first canary ended %s\n%s", p.Status, dump(p))
	}
	p := a.waitFor(res.PipelineID, "awaiting approval", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })
	if p.Lease.Owner != "a" {
		t.Errorf("the queued pipeline started with lease %+v, want a's", p.Lease)
	}
	if _, err := b.r.Act(context.Background(), store.DefaultTenant, res.PipelineID, pipeline.Approve{By: deployer}); err != nil {
		t.Fatal(err)
	}
	p = b.waitEnd(res.PipelineID)
	if p.Status != pipeline.StatusSucceeded || p.Lease.Owner != "b" {
		t.Fatalf("queued canary ended %s with lease %+v, want SUCCEEDED on b\n%s", p.Status, p.Lease, dump(p))
	}
	storetest.NoStepTwice(t, allEvents(t, b.store, res.PipelineID))
	if got := b.images(); got["web:v3"] != 4 || len(got) != 1 {
		t.Errorf("pods after the queued canary: %v", got)
	}
}

// dropSpy is the cluster's executor of one replica, telling which replica
// sent each removal of a warm version.
type dropSpy struct {
	runner.Executor
	name  string
	drops chan string
}

func (d dropSpy) Execute(ctx context.Context, job runner.Job) pipeline.CommandResult {
	if job.Command.Kind == pipeline.CmdDropWarm {
		d.drops <- d.name
	}
	return d.Executor.Execute(ctx, job)
}

// TestWarmRemovalFollowsTheOwner: two replicas on one PostgreSQL database,
// each on a clock the test moves. The previous version a deployment on A
// keeps warm is removed at its deadline by A alone, though B's clock
// passed the deadline first; then A dies (its clock stops: no timer of it
// fires again) with another warm version pending, and B, once A is no
// longer live, arms its removal at the stored deadline and removes it.
func TestWarmRemovalFollowsTheOwner(t *testing.T) {
	open, exec := sharedDatabase(t)
	drops := make(chan string, 10)
	const ttl = 10 * time.Minute
	start := time.Now()
	clockA, clockB := newTickClock(start), newTickClock(start)
	logA, logB := newLogSignal(t), newLogSignal(t)
	a := newEnvOpts(t, runner.Options{Store: open(), Executor: dropSpy{exec, "a", drops}, Clock: clockA, Log: slog.New(logA).With("replica", "a"), Replica: "a", LeaseTTL: ttl})
	b := newEnvOpts(t, runner.Options{Store: open(), Executor: dropSpy{exec, "b", drops}, Clock: clockB, Log: slog.New(logB).With("replica", "b"), Replica: "b", LeaseTTL: ttl})
	b.ns = a.ns
	step := func(c *tickClock, to time.Time) { c.advance(t, to) }
	warmUntil := func(id string) time.Time {
		p, err := a.store.GetPipeline(context.Background(), store.DefaultTenant, id)
		if err != nil {
			t.Fatal(err)
		}
		return target(p, "prod").WarmUntil
	}
	noDrop := func(when string) {
		select {
		case who := <-drops:
			t.Errorf("%s: %s removed a warm version", when, who)
		default:
		}
	}

	// removed waits until replica want removed version, and checks that
	// it alone did, and that no warm version is left.
	removed := func(signal <-chan time.Time, want, version string) {
		t.Helper()
		waitSignal(t, signal, want+" removes "+version)
		if who := <-drops; who != want {
			t.Errorf("%s was removed by %s, want %s", version, who, want)
		}
		noDrop("after " + want + " removed " + version)
		if ws, err := b.store.ListWarm(context.Background()); err != nil || len(ws) != 0 {
			t.Errorf("warm versions after %s's removal: %+v, %v", version, ws, err)
		}
	}

	a.deployed("web:v1", "")
	clockA.Advance(clockA.Now().Add(time.Second))
	until := warmUntil(a.deployed("web:v2", keepWarm))
	// Both replicas live, B ahead of A: B's clock passes the deadline
	// first, A's then.
	for clockA.Now().Before(until.Add(-time.Minute)) {
		to := clockA.Now().Add(3 * time.Minute)
		step(clockA, to)
		step(clockB, to)
	}
	removedA := logA.on("warm version removed")
	step(clockB, until.Add(time.Minute))
	step(clockA, until.Add(time.Minute))
	removed(removedA, "a", "v1")

	until = warmUntil(a.deployed("web:v3", keepWarm))
	// A dies: its clock stops. B claims the removal once A is not live.
	armedB := logB.on("warm version: removal armed here")
	step(clockB, clockA.Now().Add(ttl+ttl/2))
	waitSignal(t, armedB, "b arms the removal of v2")
	noDrop("after b armed v2's removal, before its deadline")
	removedB := logB.on("warm version removed")
	step(clockB, until.Add(time.Minute))
	removed(removedB, "b", "v2")
	if got := kubetest.ReadyByImage(t, b.ns); got["web:v3"] != 4 {
		t.Errorf("Ready pods after the removals: %v, want v3's 4", got)
	}
}

// tickClock is a fakeClock that knows when its runner's next lease tick
// is due (the timer armLeases sets at the end of each tick), so that
// advance can wait for each tick on the way: a replica's renewals then
// keep up with the time the test moves.
type tickClock struct {
	*fakeClock
	mu     sync.Mutex
	next   time.Time
	ticked chan struct{}
}

func newTickClock(now time.Time) *tickClock {
	return &tickClock{fakeClock: &fakeClock{now: now}, ticked: make(chan struct{}, 100)}
}

func (c *tickClock) AfterFunc(d time.Duration, f func()) runner.Timer {
	t := c.fakeClock.AfterFunc(d, f)
	if calledFrom("(*Runner).armLeases") {
		c.mu.Lock()
		c.next = c.Now().Add(d)
		c.mu.Unlock()
		c.ticked <- struct{}{}
	}
	return t
}

// calledFrom reports whether a function whose name ends in fn is on the
// caller's stack.
func calledFrom(fn string) bool {
	pcs := make([]uintptr, 16)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		f, more := frames.Next()
		if strings.HasSuffix(f.Function, fn) {
			return true
		}
		if !more {
			return false
		}
	}
}

// advance moves the clock to to, waiting for each lease tick due by then
// to end.
func (c *tickClock) advance(t *testing.T, to time.Time) {
	t.Helper()
	for {
		c.mu.Lock()
		next := c.next
		c.mu.Unlock()
		if next.IsZero() || next.After(to) {
			break
		}
		for len(c.ticked) > 0 {
			<-c.ticked
		}
		c.Advance(next)
		select {
		case <-c.ticked:
		case <-time.After(2 * time.Minute):
			t.Fatal("a lease tick did not end")
		}
	}
	c.Advance(to)
}

// TestReplicaThatJoinsGetsItsShare: ten pipelines wait for approval, all
// leased by replica A; B joins. Within a few renewal periods (the clocks
// the test moves), A hands the ones over its fair share to B at a safe
// point (between events, writing nothing), B claims and resumes them, and
// the split is five and five; then it stays so (no pipeline passed back
// and forth). Each pipeline, approved on the replica that holds it, ends
// once, no step run twice.
func TestReplicaThatJoinsGetsItsShare(t *testing.T) {
	open, exec := sharedDatabase(t)
	const ttl = 30 * time.Second
	start := time.Now()
	clockA, clockB := newTickClock(start), newTickClock(start)
	logB := newLogSignal(t)
	a := newEnvOpts(t, runner.Options{Store: open(), Executor: exec, Clock: clockA, Replica: "a", LeaseTTL: ttl})
	strategies := "  c:\n    canary:\n      steps:\n        - setWeight: 50\n        - pause: {untilApproved: true}"
	const n = 10
	start10 := func(image string) []string {
		var ids []string
		for i := range n {
			name := fmt.Sprintf("app%d", i)
			ids = append(ids, a.start(a.fileOf(name, name, 2, a.oneTarget("t", "c"), strategies, image, "")))
		}
		return ids
	}
	for _, id := range start10("web:v1") {
		if p := a.waitEnd(id); p.Status != pipeline.StatusSucceeded {
			t.Fatalf("first deployment ended %s\n%s", p.Status, dump(p))
		}
	}
	ids := start10("web:v2")
	for _, id := range ids {
		a.waitFor(id, "awaiting approval", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })
	}
	b := newEnvOpts(t, runner.Options{Store: open(), Executor: exec, Clock: clockB, Log: slog.New(logB).With("replica", "b"), Replica: "b", LeaseTTL: ttl})
	b.ns = a.ns

	leases := func() (map[string]int, map[string]store.Lease) {
		t.Helper()
		count, by := map[string]int{}, map[string]store.Lease{}
		for _, id := range ids {
			p, err := a.store.GetPipeline(context.Background(), store.DefaultTenant, id)
			if err != nil {
				t.Fatal(err)
			}
			count[p.Lease.Owner]++
			by[id] = store.Lease{Owner: p.Lease.Owner, Epoch: p.Lease.Epoch} // renewals move Until
		}
		return count, by
	}
	if count, _ := leases(); count["a"] != n {
		t.Fatalf("leases before the renewals: %v, want all %d on a", count, n)
	}
	// One renewal period on both clocks.
	renewal := func() {
		t.Helper()
		to := clockA.Now().Add(ttl / 3)
		clockA.advance(t, to)
		clockB.advance(t, to)
	}
	even := func(count map[string]int) bool {
		return count["a"]+count["b"] == n && count["a"]-count["b"] <= 1 && count["b"]-count["a"] <= 1
	}
	periods := 0
	for count, _ := leases(); !even(count); count, _ = leases() {
		if periods == 6 {
			t.Fatalf("leases after %d renewal periods: %v, want %d/%d within one", periods, count, n/2, n/2)
		}
		renewal()
		periods++
	}
	count, before := leases()
	t.Logf("split %v after %d renewal periods (TTL/3 each)", count, periods)
	for range 4 {
		renewal()
	}
	if _, after := leases(); !reflect.DeepEqual(before, after) {
		t.Errorf("leases moved after the split: %v, then %v", before, after)
	}

	envs := map[string]*env{"a": a, "b": b}
	for _, id := range ids {
		owner := before[id].Owner
		if _, err := envs[owner].r.Act(context.Background(), store.DefaultTenant, id, pipeline.Approve{By: deployer}); err != nil {
			t.Fatalf("approve %s on %s: %v", id, owner, err)
		}
	}
	for _, id := range ids {
		owner := before[id].Owner
		p := envs[owner].waitEnd(id)
		if p.Status != pipeline.StatusSucceeded || p.Lease.Owner != owner {
			t.Errorf("%s ended %s with lease %+v, want SUCCEEDED on %s\n%s", id, p.Status, p.Lease, owner, dump(p))
		}
		events := allEvents(t, a.store, id)
		storetest.NoStepTwice(t, events)
		ends := 0
		for _, e := range events {
			var c pipeline.Change
			if e.Type == "status" && json.Unmarshal(e.Data, &c) == nil && c.Target == "" && c.Step == "" && c.To.Terminal() {
				ends++
			}
		}
		if ends != 1 {
			t.Errorf("%s: %d ends in its events, want 1", id, ends)
		}
	}
}

// TestDeadReplicasPipelineIsClaimedWhenItsLeaseExpires: A starts a
// pipeline between two of B's lease ticks and dies (its clock stops: it
// never renews). B claims the pipeline the moment A's lease runs out, not
// at its next regular tick up to TTL/3 later, and finishes it once.
func TestDeadReplicasPipelineIsClaimedWhenItsLeaseExpires(t *testing.T) {
	open, exec := sharedDatabase(t)
	const ttl = 30 * time.Second
	start := time.Now()
	clockA, clockB := newTickClock(start), newTickClock(start)
	a := newEnvOpts(t, runner.Options{Store: open(), Executor: exec, Clock: clockA, Replica: "a", LeaseTTL: ttl})
	strategies := "  c:\n    canary:\n      steps:\n        - setWeight: 50\n        - pause: {untilApproved: true}"
	first := a.start(a.fileOf("web", "web", 2, a.oneTarget("t", "c"), strategies, "web:v1", ""))
	if p := a.waitEnd(first); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first deployment ended %s\n%s", p.Status, dump(p))
	}
	clockA.Advance(start.Add(ttl / 6))
	id := a.start(a.fileOf("web", "web", 2, a.oneTarget("t", "c"), strategies, "web:v2", ""))
	p := a.waitFor(id, "awaiting approval", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })
	expiry := p.Lease.Until
	if p.Lease.Owner != "a" || !expiry.Equal(start.Add(ttl/6+ttl)) {
		t.Fatalf("lease after the start on a: %+v, want a's until %v", p.Lease, start.Add(ttl/6+ttl))
	}
	b := newEnvOpts(t, runner.Options{Store: open(), Executor: exec, Clock: clockB, Replica: "b", LeaseTTL: ttl})
	b.ns = a.ns
	owner := func() string {
		t.Helper()
		p, err := b.store.GetPipeline(context.Background(), store.DefaultTenant, id)
		if err != nil {
			t.Fatal(err)
		}
		return p.Lease.Owner
	}
	// B's regular ticks fall at start + k·TTL/3; the expiry falls between
	// two of them.
	clockB.advance(t, expiry.Add(-time.Millisecond))
	if o := owner(); o != "a" {
		t.Fatalf("owner just before a's lease expires: %q, want a", o)
	}
	clockB.advance(t, expiry)
	if o := owner(); o != "b" {
		t.Fatalf("owner once a's lease expired: %q, want b (claimed at the expiry, not at b's next tick at %v)",
			o, start.Add(4*ttl/3).Sub(start))
	}
	if _, err := b.r.Act(context.Background(), store.DefaultTenant, id, pipeline.Approve{By: deployer}); err != nil {
		t.Fatalf("approve on b: %v", err)
	}
	if p := b.waitEnd(id); p.Status != pipeline.StatusSucceeded || p.Lease.Owner != "b" {
		t.Errorf("ended %s with lease %+v, want SUCCEEDED on b\n%s", p.Status, p.Lease, dump(p))
	}
	storetest.NoStepTwice(t, allEvents(t, a.store, id))
}
