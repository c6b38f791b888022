package runner

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/tracing"
)

// tracer makes a pipeline's trace: one root span from its creation to its
// terminal state, one span per target and per step (gates included),
// emitted when they end, and one per command run, around its execution.
//
// The root's span context is stored with the pipeline (Source.Trace). Target
// and step spans get ids derived from it (tracing.SpanID), so a command
// knows its step's span id before the step ended, and a server that ends a
// step or the pipeline after a restart emits them with the ids their
// children point at. The root span lives in memory until the pipeline
// ends; after a restart it is started again with its stored ids and
// creation time.
type tracer struct {
	t trace.Tracer // nil: tracing is off

	mu    sync.Mutex
	roots map[string]trace.Span // live root spans by tenant/id
}

func newTracer(tp trace.TracerProvider) *tracer {
	t := &tracer{roots: map[string]trace.Span{}}
	if tp != nil {
		t.t = tp.Tracer(tracing.Instrumentation)
	}
	return t
}

// Span attribute keys.
const (
	attrPipeline    = attribute.Key("sortie.pipeline")
	attrTenant      = attribute.Key("sortie.tenant")
	attrApplication = attribute.Key("sortie.application")
	attrTarget      = attribute.Key("sortie.target")
	attrStep        = attribute.Key("sortie.step")
	attrKind        = attribute.Key("sortie.step.kind")
	attrGate        = attribute.Key("sortie.gate")
	attrStatus      = attribute.Key("sortie.status")
	attrCommand     = attribute.Key("sortie.command")
	attrCommandKind = attribute.Key("sortie.command.kind")
	attrAccount     = attribute.Key("sortie.account")
)

// begin starts the root span of a pipeline being created; its traceparent
// goes into the pipeline's source. A nil span: tracing is off.
func (t *tracer) begin(ctx context.Context, tenant, id, app string, now time.Time) trace.Span {
	if t.t == nil {
		return nil
	}
	_, span := t.t.Start(ctx, "pipeline", trace.WithNewRoot(), trace.WithTimestamp(now),
		trace.WithAttributes(attrTenant.String(tenant), attrPipeline.String(id), attrApplication.String(app)))
	return span
}

// keep holds the root span of a pipeline that was stored.
func (t *tracer) keep(tenant, id string, span trace.Span) {
	if span == nil {
		return
	}
	t.mu.Lock()
	t.roots[key(tenant, id)] = span
	t.mu.Unlock()
}

// observe emits the spans of what ended between prev and next, two saved
// states of one pipeline.
func (t *tracer) observe(prev, next *store.Pipeline) {
	if t.t == nil {
		return
	}
	root := tracing.Parse(next.Source.Trace)
	if !root.IsSampled() {
		// No trace, or one its root's sampler dropped: its spans would be
		// dropped too (and a root started again after a restart must not
		// be recorded).
		t.forget(next)
		return
	}
	ctx := context.Background()
	for i := range next.State.Targets {
		nt := &next.State.Targets[i]
		pt := prev.State.Target(nt.Name)
		if pt == nil {
			pt = &pipeline.TargetState{}
		}
		steps := nt.Steps
		if nt.Rollback != nil {
			steps = append(steps[:len(steps):len(steps)], *nt.Rollback)
		}
		for _, ns := range steps {
			var from pipeline.Status
			if ps := pt.Step(ns.ID); ps != nil {
				from = ps.Status
			}
			if ns.Status.Terminal() && !from.Terminal() && !ns.StartedAt.IsZero() {
				t.step(ctx, root, nt.Name, ns)
			}
		}
		if nt.Status.Terminal() && !pt.Status.Terminal() && !nt.StartedAt.IsZero() {
			t.emit(ctx, root, root.SpanID(), tracing.SpanID(root.TraceID(), "target", nt.Name), "target",
				nt.StartedAt, nt.EndedAt, nt.Status, nt.Message, attrTarget.String(nt.Name))
		}
	}
	if next.Status.Terminal() && !prev.Status.Terminal() {
		t.end(ctx, root, next)
	}
}

func (t *tracer) step(ctx context.Context, root trace.SpanContext, target string, st pipeline.StepState) {
	name := "step " + string(st.Kind)
	attrs := []attribute.KeyValue{attrTarget.String(target), attrStep.String(st.ID), attrKind.String(string(st.Kind))}
	if g := gateOf(st.Kind); g != "" {
		name = "gate " + g
		attrs = append(attrs, attrGate.String(g))
	}
	t.emit(ctx, root, stepParent(root, target), stepSpan(root, target, st.ID), name, st.StartedAt, st.EndedAt, st.Status, st.Message, attrs...)
}

// gateOf names the gate a step kind is: webhook, analysis, approval, or
// none.
func gateOf(k pipeline.StepKind) string {
	switch k {
	case pipeline.KindRunWebhook:
		return "webhook"
	case pipeline.KindAnalysis:
		return "analysis"
	case pipeline.KindApproval:
		return "approval"
	}
	return ""
}

func stepParent(root trace.SpanContext, target string) trace.SpanID {
	return tracing.SpanID(root.TraceID(), "target", target)
}

func stepSpan(root trace.SpanContext, target, step string) trace.SpanID {
	return tracing.SpanID(root.TraceID(), "step", target, step)
}

// emit starts and ends a span of the pipeline's trace with id sid under
// parent, from start to end (end zero: now).
func (t *tracer) emit(ctx context.Context, root trace.SpanContext, parent, sid trace.SpanID, name string, start, end time.Time, status pipeline.Status, msg string, attrs ...attribute.KeyValue) {
	pc := root.WithSpanID(parent)
	ctx = tracing.WithIDs(trace.ContextWithRemoteSpanContext(ctx, pc), trace.TraceID{}, sid)
	_, span := t.t.Start(ctx, name, trace.WithTimestamp(start), trace.WithAttributes(append(attrs, attrStatus.String(string(status)))...))
	finish(span, status, msg, end)
}

// finish sets a span's status from a pipeline status and ends it at end
// (zero: now). Messages are what the API shows: secrets masked already.
func finish(span trace.Span, status pipeline.Status, msg string, end time.Time) {
	switch status {
	case pipeline.StatusFailed, pipeline.StatusRolledBack:
		span.SetStatus(codes.Error, msg)
	case pipeline.StatusSucceeded:
		span.SetStatus(codes.Ok, "")
	}
	if end.IsZero() {
		span.End()
		return
	}
	span.End(trace.WithTimestamp(end))
}

// forget drops the live root span of a pipeline that ended.
func (t *tracer) forget(p *store.Pipeline) {
	if p.Status.Terminal() {
		t.mu.Lock()
		delete(t.roots, key(p.Tenant, p.ID))
		t.mu.Unlock()
	}
}

// end ends the root span of a pipeline that reached its terminal state:
// the one in memory, or, after a restart, one started again with the
// stored ids at the pipeline's creation.
func (t *tracer) end(ctx context.Context, root trace.SpanContext, p *store.Pipeline) {
	k := key(p.Tenant, p.ID)
	t.mu.Lock()
	span, ok := t.roots[k]
	delete(t.roots, k)
	t.mu.Unlock()
	if !ok {
		ctx = tracing.WithIDs(ctx, root.TraceID(), root.SpanID())
		_, span = t.t.Start(ctx, "pipeline", trace.WithNewRoot(), trace.WithTimestamp(p.CreatedAt),
			trace.WithAttributes(attrTenant.String(p.Tenant), attrPipeline.String(p.ID), attrApplication.String(p.Application)))
	}
	span.SetAttributes(attrStatus.String(string(p.Status)))
	finish(span, p.Status, p.State.Message, p.State.EndedAt)
}

// command starts the span of one command's execution, a child of its
// step's span. With tracing off, or a pipeline without a trace, ctx and a
// non-recording span.
func (t *tracer) command(ctx context.Context, job Job) (context.Context, trace.Span) {
	root := tracing.Parse(job.trace)
	if t.t == nil || !root.IsValid() {
		return ctx, trace.SpanFromContext(context.Background())
	}
	c := job.Command
	ctx = trace.ContextWithRemoteSpanContext(ctx, root.WithSpanID(stepSpan(root, c.Target, c.Step)))
	return t.t.Start(ctx, "command "+string(c.Kind), trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attrCommand.String(c.ID), attrCommandKind.String(string(c.Kind)), attrTarget.String(c.Target), attrStep.String(c.Step), attrAccount.String(c.Account)))
}
