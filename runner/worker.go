package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/progress"
	"github.com/sortie-cd/sortie/store"
)

// worker executes the commands of one target of one pipeline. Cluster
// commands run one at a time in emission order; a rollback supersedes
// (cancels) whatever runs or waits. Gate commands (webhooks, analysis) run
// concurrently, since a target's gates run in parallel.
type worker struct {
	r      *Runner
	tenant string
	pipe   *pipe

	mu      sync.Mutex
	queue   []queued
	busy    bool
	current context.CancelFunc
	gates   map[string]context.CancelFunc
	stopped bool
}

func gate(k pipeline.CommandKind) bool {
	return k == pipeline.CmdCallWebhook || k == pipeline.CmdRunAnalysis
}

// dispatch hands a command to its target's worker. Runs under pp.mu.
func (r *Runner) dispatch(pp *pipe, c pipeline.Command) {
	w, ok := pp.workers[c.Target]
	if !ok {
		w = &worker{r: r, tenant: pp.p.Tenant, pipe: pp, gates: map[string]context.CancelFunc{}}
		pp.workers[c.Target] = w
	}
	tenant, id := pp.p.Tenant, pp.p.ID
	job := Job{Tenant: tenant, Command: c, Spec: &pp.p.State.Spec,
		Report: func(ctx context.Context, ev store.Event) error { return r.report(ctx, tenant, id, ev) },
		trace:  pp.p.Source.Trace}
	job.Target, job.planErr = pp.target(c.Target)
	deadline := commandDeadline(pp.p.State, c.ID)
	w.submit(job, deadline)
}

// commandDeadline is when the engine gives up on the command, less a margin
// so that the executor's own, more precise failure (which pods are not
// Ready and why) reaches the engine before its timeout does.
func commandDeadline(s pipeline.State, id string) time.Time {
	for _, t := range s.Targets {
		steps := t.Steps
		if t.Rollback != nil {
			steps = append(steps[:len(steps):len(steps)], *t.Rollback)
		}
		for _, st := range steps {
			if st.CommandID == id && !st.Deadline.IsZero() {
				window := st.Deadline.Sub(st.StartedAt)
				margin := min(window/20, 2*time.Second)
				return st.Deadline.Add(-margin)
			}
		}
	}
	return time.Time{}
}

func (w *worker) submit(job Job, deadline time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	if gate(job.Command.Kind) {
		ctx, cancel := w.ctx(deadline)
		w.gates[job.Command.ID] = cancel
		w.r.wg.Go(func() {
			defer cancel()
			w.run(ctx, job)
			w.mu.Lock()
			delete(w.gates, job.Command.ID)
			w.mu.Unlock()
		})
		return
	}
	if job.Command.Kind == pipeline.CmdRollback {
		w.queue = nil
		if w.current != nil {
			w.current()
		}
		for _, cancel := range w.gates {
			cancel()
		}
	}
	w.queue = append(w.queue, queued{job, deadline})
	if !w.busy {
		w.busy = true
		w.r.wg.Go(w.loop)
	}
}

// idle reports whether no command of w's is queued or running.
func (w *worker) idle() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.busy && len(w.queue) == 0 && len(w.gates) == 0
}

type queued struct {
	job      Job
	deadline time.Time
}

func (w *worker) ctx(deadline time.Time) (context.Context, context.CancelFunc) {
	if deadline.IsZero() {
		return context.WithCancel(w.r.ctx)
	}
	return context.WithDeadline(w.r.ctx, deadline)
}

func (w *worker) loop() {
	for {
		w.mu.Lock()
		if len(w.queue) == 0 || w.stopped {
			w.busy = false
			w.mu.Unlock()
			return
		}
		next := w.queue[0]
		w.queue = w.queue[1:]
		ctx, cancel := w.ctx(next.deadline)
		w.current = cancel
		w.mu.Unlock()

		w.run(ctx, next.job)
		cancel()
		w.mu.Lock()
		w.current = nil
		w.mu.Unlock()
	}
}

func (w *worker) run(ctx context.Context, job Job) {
	var res pipeline.CommandResult
	ctx, span := w.r.trace.command(ctx, job)
	if job.planErr != nil {
		res.Message = job.planErr.Error()
	} else {
		res = w.execute(ctx, job)
	}
	status := pipeline.StatusFailed
	switch {
	case res.Success:
		status = pipeline.StatusSucceeded
	case ctx.Err() == context.Canceled:
		status = pipeline.StatusCancelled // superseded, ended, or shutting down
	}
	finish(span, status, res.Message, time.Time{})
	if w.r.ctx.Err() != nil {
		return // shutting down: the pipeline resumes, and repeats the command, on the next start
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return // superseded by a rollback, or the pipeline ended
	}
	res.CommandID = job.Command.ID
	w.report(job.Command, res)
}

// Waits between the runs of a command that failed transiently.
const (
	retryMin = 500 * time.Millisecond
	retryMax = 8 * time.Second
)

// execute runs a command and, while it fails transiently (a timeout, a
// 5xx, a broken connection) and its deadline leaves time for another run,
// runs it again after a wait that doubles from retryMin to retryMax. Each
// retry is an event in the pipeline's log (progress.EventRetry). Commands
// are idempotent, so a run again does no harm; the engine sees only the
// last result.
func (w *worker) execute(ctx context.Context, job Job) pipeline.CommandResult {
	c := job.Command
	delay := retryMin
	for attempt := 2; ; attempt++ {
		start := time.Now()
		res := w.r.exec.Execute(ctx, job)
		w.r.metrics.command(c.Kind, res.Success, time.Since(start))
		if res.Success || !res.Transient || ctx.Err() != nil {
			return res
		}
		at := time.Now().Add(delay)
		if d, ok := ctx.Deadline(); ok && d.Before(at) {
			return res
		}
		msg := fmt.Sprintf("retrying %s: %s (attempt %d)", c.Step, res.Message, attempt)
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.AddEvent("retry", trace.WithAttributes(attribute.Int("attempt", attempt), attribute.String("reason", res.Message)))
		}
		w.r.log.Warn("command failed transiently", "pipeline", c.Pipeline, "target", c.Target, "step", c.Step, "err", res.Message, "attempt", attempt, "retry_in", delay)
		data, err := json.Marshal(progress.RetryEvent{Target: c.Target, Step: c.Step, Command: c.ID, Attempt: attempt, Reason: res.Message, Message: msg, RetryAt: at})
		if err == nil {
			err = job.Report(ctx, store.Event{Type: progress.EventRetry, Data: data})
		}
		if err != nil {
			w.r.log.Error("record a retry", "pipeline", c.Pipeline, "command", c.ID, "err", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return res
		case <-t.C:
		}
		delay = min(2*delay, retryMax)
	}
}

// report feeds a command's result to the engine. A result is only lost with
// the process (the command then runs again after the restart), so a store
// that fails for a moment is retried with backoff, on timers, until it takes
// the result or the runner closes.
func (w *worker) report(c pipeline.Command, res pipeline.CommandResult) {
	delay := 100 * time.Millisecond
	for {
		// To this pipeline in memory, never by id: a result of a pipeline
		// whose lease was lost must not take the lease back.
		_, err := w.r.applyTo(w.r.ctx, w.pipe, res)
		if err == nil || errors.Is(err, errEnded) || errors.Is(err, store.ErrNotFound) || lost(err) || pipeline.ErrorCode(err) != "" {
			return
		}
		w.r.log.Error("report command result", "pipeline", c.Pipeline, "target", c.Target, "command", c.ID, "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-w.r.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, 10*time.Second)
	}
}

func (w *worker) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.queue = nil
	if w.current != nil {
		w.current()
	}
	for _, cancel := range w.gates {
		cancel()
	}
}
