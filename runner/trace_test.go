package runner_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/tracing"
)

// memoryTracer is a tracer provider that keeps every ended span in memory
// (the SDK's own in-memory exporter: no process boundary here).
func memoryTracer(t *testing.T) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithIDGenerator(tracing.IDGenerator()))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return tp, exp
}

// TestPipelineTrace runs a canary with an approval on the real cluster,
// restarting the runner while it waits for the approval: the pipeline is
// one trace, stored with it, whose root span runs from its creation to its
// end and whose target, step, gate and command spans all hang under it,
// across the restart. A second pipeline is another trace, a runner
// without a tracer stores none, and a root its sampler drops records
// nothing.
func TestPipelineTrace(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	tp, exp := memoryTracer(t)
	e := newEnvOpts(t, runner.Options{Store: st, Tracer: tp})
	straight := "  c:\n    canary:\n      steps:\n        - setWeight: 100"
	first := e.waitEnd(e.start(e.file("traced", e.oneTarget("prod", "c"), straight, "web:v1", "")))
	strategies := "  c:\n    canary:\n      steps:\n        - setWeight: 50\n        - pause: {untilApproved: true}\n        - setWeight: 100"
	id := e.start(e.file("traced", e.oneTarget("prod", "c"), strategies, "web:v2", ""))
	e.waitFor(id, "awaiting approval", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })

	// A restart: the next runner ends the trace the first one began.
	e.r.Close()
	r := runner.New(runner.Options{Store: st, Executor: e.exec, Tracer: tp})
	t.Cleanup(r.Close)
	if err := r.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	e.r = r
	e.waitFor(id, "awaiting approval", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })
	if _, err := r.Act(ctx, store.DefaultTenant, id, pipeline.Approve{By: deployer}); err != nil {
		t.Fatal(err)
	}
	p := e.waitEnd(id)
	if p.Status != pipeline.StatusSucceeded {
		t.Fatalf("pipeline ended %s\n%s", p.Status, dump(p))
	}
	root := tracing.Parse(p.Source.Trace)
	if !root.IsValid() || !root.IsSampled() {
		t.Fatalf("the pipeline's stored trace %q is not a sampled traceparent", p.Source.Trace)
	}

	// The first pipeline (a first deployment: finalize only) is another
	// trace.
	if tracing.Parse(first.Source.Trace).TraceID() == root.TraceID() {
		t.Error("two pipelines share a trace")
	}
	spans := traceOf(exp.GetSpans(), root.TraceID())
	if n := len(exp.GetSpans()) - len(traceOf(exp.GetSpans(), tracing.Parse(first.Source.Trace).TraceID())); n != len(spans) {
		t.Errorf("%d of %d spans are of neither pipeline's trace", n-len(spans), n)
	}
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range spans {
		if _, dup := byID[s.SpanContext.SpanID()]; dup {
			t.Errorf("two spans have id %s (the second: %s)", s.SpanContext.SpanID(), s.Name)
		}
		byID[s.SpanContext.SpanID()] = s
	}
	rs, ok := byID[root.SpanID()]
	switch {
	case !ok:
		t.Fatalf("no root span with the stored id %s among %s", root.SpanID(), names(spans))
	case rs.Name != "pipeline" || rs.Parent.IsValid():
		t.Errorf("root span %q has parent %s", rs.Name, rs.Parent.SpanID())
	case !rs.StartTime.Equal(p.CreatedAt) || !rs.EndTime.Equal(p.State.EndedAt):
		t.Errorf("root span runs %s to %s, the pipeline %s to %s", rs.StartTime, rs.EndTime, p.CreatedAt, p.State.EndedAt)
	}
	if attr(rs, "sortie.pipeline") != id || attr(rs, "sortie.status") != string(pipeline.StatusSucceeded) {
		t.Errorf("root span attributes: %v", rs.Attributes)
	}
	// Every span but the root hangs under a span of the trace.
	for _, s := range spans {
		if s.SpanContext.SpanID() == root.SpanID() {
			continue
		}
		if _, ok := byID[s.Parent.SpanID()]; !ok {
			t.Errorf("span %s (%v) has parent %s, which is not in the trace", s.Name, s.Attributes, s.Parent.SpanID())
		}
	}
	// The tree: pipeline > target > steps (the approval a gate) > commands.
	var got []string
	for _, s := range spans {
		if s.SpanContext.SpanID() == root.SpanID() {
			continue
		}
		got = append(got, byID[s.Parent.SpanID()].Name+" > "+s.Name)
	}
	sort.Strings(got)
	want := []string{
		"pipeline > target",
		"step finalize > command finalize",
		"step setWeight > command setWeight",
		"step setWeight > command setWeight",
		"target > gate approval",
		"target > step finalize",
		"target > step setWeight",
		"target > step setWeight",
	}
	if !slices.Equal(got, want) {
		t.Errorf("spans by parent:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, s := range spans {
		if s.Name == "gate approval" && (attr(s, "sortie.gate") != "approval" || attr(s, "sortie.target") != "prod") {
			t.Errorf("approval span attributes: %v", s.Attributes)
		}
	}

	// No tracer: no trace stored, nothing recorded.
	exp.Reset()
	e.r.Close()
	off := runner.New(runner.Options{Store: st, Executor: e.exec})
	t.Cleanup(off.Close)
	e.r = off
	third := e.waitEnd(e.start(e.file("traced", e.oneTarget("prod", "c"), straight, "web:v3", "")))
	if third.Source.Trace != "" || len(exp.GetSpans()) != 0 {
		t.Errorf("without a tracer: stored trace %q, %d spans", third.Source.Trace, len(exp.GetSpans()))
	}

	// A sampler that drops the root: the trace is stored (not sampled),
	// and nothing of it is recorded.
	dropped := tracetest.NewInMemoryExporter()
	never := sdktrace.NewTracerProvider(sdktrace.WithSyncer(dropped), sdktrace.WithIDGenerator(tracing.IDGenerator()), sdktrace.WithSampler(sdktrace.NeverSample()))
	e.r.Close()
	sampled := runner.New(runner.Options{Store: st, Executor: e.exec, Tracer: never})
	t.Cleanup(sampled.Close)
	e.r = sampled
	fourth := e.waitEnd(e.start(e.file("traced", e.oneTarget("prod", "c"), straight, "web:v4", "")))
	if sc := tracing.Parse(fourth.Source.Trace); !sc.IsValid() || sc.IsSampled() || len(dropped.GetSpans()) != 0 {
		t.Errorf("root not sampled: stored trace %q, %d spans", fourth.Source.Trace, len(dropped.GetSpans()))
	}
}

func traceOf(spans tracetest.SpanStubs, tid trace.TraceID) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.SpanContext.TraceID() == tid {
			out = append(out, s)
		}
	}
	return out
}

func names(spans []tracetest.SpanStub) string {
	var out []string
	for _, s := range spans {
		out = append(out, fmt.Sprintf("%s(%s)", s.Name, s.SpanContext.SpanID()))
	}
	return strings.Join(out, " ")
}

func attr(s tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value.String()
		}
	}
	return ""
}
