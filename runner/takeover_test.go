package runner_test

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/postgres"
	"github.com/sortie-cd/sortie/store/postgres/pgtest"
)

// listenFeed is the feed of saved events a server sharing st gets: the
// database's own notifications (the events trigger), as package replicas
// passes them on.
type listenFeed chan runner.Saved

func (f listenFeed) Saved() <-chan runner.Saved { return f }

func newListenFeed(t *testing.T, st *postgres.Store) listenFeed {
	f := make(listenFeed, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	got := func(n postgres.Notification) {
		fs := strings.Fields(n.Payload)
		if len(fs) != 4 {
			return
		}
		first, err1 := strconv.ParseInt(fs[2], 10, 64)
		last, err2 := strconv.ParseInt(fs[3], 10, 64)
		if err1 == nil && err2 == nil {
			f <- runner.Saved{Tenant: fs[0], Pipeline: fs[1], First: first, Last: last}
		}
	}
	if err := st.Listen(ctx, []string{postgres.ChannelEvents}, got, func() { f <- runner.Saved{Lost: true} }); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestOldOwnerLetsGoWhenAnotherTakesOver: replica A drives a canary to its
// approval; the approval reaches replica B, which takes the pipeline over
// and finishes it. A's clock is stopped, so no renewal of A's can notice
// the loss: A lets the pipeline go because B's events reach it through the
// database's notifications, and from then on A answers reads of it from
// the store (the pipeline's end), not from the copy that stopped moving.
func TestOldOwnerLetsGoWhenAnotherTakesOver(t *testing.T) {
	url := pgtest.Database(t)
	open := func() *postgres.Store {
		st, err := postgres.Open(context.Background(), url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	const ttl = time.Minute
	clockA := &pausable{}
	logA := newLogSignal(t)
	stA, stB := open(), open()
	a := newEnvOpts(t, runner.Options{Store: stA, Clock: clockA, Log: slog.New(logA).With("replica", "a"), Replica: "a", LeaseTTL: ttl, Feed: newListenFeed(t, stA)})
	b := newEnvOpts(t, runner.Options{Store: stB, Replica: "b", LeaseTTL: ttl, Feed: newListenFeed(t, stB)})
	b.ns = a.ns

	if p := a.waitEnd(a.start(a.file("web", a.oneTarget("staging", "c"), canaryWithApproval, "web:v1", ""))); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first deployment ended %s\n%s", p.Status, dump(p))
	}
	id := a.start(a.file("web", a.oneTarget("staging", "c"), canaryWithApproval, "web:v2", ""))
	a.waitFor(id, "awaiting approval", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })
	if p, err := a.r.Get(context.Background(), store.DefaultTenant, id); err != nil || p.Lease.Owner != "a" {
		t.Fatalf("a's pipeline: %v %+v", err, p)
	}

	lost := logA.on("pipeline lease lost; no longer driving it here")
	clockA.pause()
	defer clockA.resume()
	rm := pipeline.Principal{Name: "bob", Roles: []string{"release-manager"}}
	if _, err := b.r.Act(context.Background(), store.DefaultTenant, id, pipeline.Approve{By: rm}); err != nil {
		t.Fatal(err)
	}
	if p := b.waitEnd(id); p.Status != pipeline.StatusSucceeded || p.Lease.Owner != "b" {
		t.Fatalf("canary ended %s with lease %+v, want SUCCEEDED on b\n%s", p.Status, p.Lease, dump(p))
	}
	// Each event b saves reaches a's subscribers through the feed, after
	// a checked its copy against the store.
	a.waitFor(id, "a answers the end b reached", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusSucceeded })
	waitSignal(t, lost, "a lets go of the pipeline b took over")
}
