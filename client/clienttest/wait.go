package clienttest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/store"
)

// WaitLimit bounds WaitPipeline.
const WaitLimit = 2 * time.Minute

var errHolds = errors.New("the condition holds")

// WaitPipeline waits until cond holds for pipeline id as c sees it: it
// looks once, then again after each event of the pipeline's event stream
// (never on a timer). It fails the test, with the pipeline described by
// Dump, when the pipeline ends before cond holds or WaitLimit passes.
func WaitPipeline(t testing.TB, c *client.Client, id, what string, cond func(*api.PipelineView) bool) *api.PipelineView {
	t.Helper()
	return WaitPipelineFor(t, c, id, what, WaitLimit, cond)
}

// WaitPipelineFor is WaitPipeline with another limit than WaitLimit, for a
// pipeline whose files set long analysis intervals.
func WaitPipelineFor(t testing.TB, c *client.Client, id, what string, limit time.Duration, cond func(*api.PipelineView) bool) *api.PipelineView {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var last *api.PipelineView
	check := func() error {
		p, err := c.GetPipeline(ctx, id)
		if err != nil {
			return err
		}
		last = p
		if cond(p) {
			return errHolds
		}
		if p.Status.Terminal() {
			return fmt.Errorf("pipeline ended %s (%s) before %s\n%s", p.Status, p.Message, what, Dump(p))
		}
		return nil
	}
	err := check()
	if err == nil {
		err = c.FollowPipeline(ctx, id, 0, client.FollowOptions{}, func(store.Event) error { return check() })
	}
	if !errors.Is(err, errHolds) {
		if last != nil && !strings.Contains(fmt.Sprint(err), "\n") {
			err = fmt.Errorf("%w\n%s", err, Dump(last))
		}
		t.Fatalf("pipeline %s: waiting until %s: %v", id, what, err)
	}
	return last
}

// WaitEnd waits until pipeline id has ended and returns it.
func WaitEnd(t testing.TB, c *client.Client, id string) *api.PipelineView {
	t.Helper()
	return WaitPipeline(t, c, id, "it ends", func(p *api.PipelineView) bool { return p.Status.Terminal() })
}

// Dump describes a pipeline for a failure message: its status, and each
// target's and step's (the rollback's included) status and message.
func Dump(p *api.PipelineView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "pipeline %s: %s %s\n", p.ID, p.Status, p.Message)
	for _, t := range p.Targets {
		fmt.Fprintf(&b, "  target %s: %s %s\n", t.Name, t.Status, t.Message)
		steps := t.Steps
		if t.Rollback != nil {
			steps = append(steps, *t.Rollback)
		}
		for _, s := range steps {
			fmt.Fprintf(&b, "    %s: %s %s\n", s.ID, s.Status, s.Message)
		}
	}
	return b.String()
}
