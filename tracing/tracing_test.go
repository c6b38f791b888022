package tracing_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/sortie-cd/sortie/tracing"
)

func provider() (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	exp := tracetest.NewInMemoryExporter()
	return sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithIDGenerator(tracing.IDGenerator())), exp
}

// A span started with WithIDs has those ids, as root and as child, and a
// traceparent goes to text and back.
func TestIDsAndTraceparent(t *testing.T) {
	tp, exp := provider()
	tr := tp.Tracer("test")
	tid := trace.TraceID{1, 2, 3}
	sid := tracing.SpanID(tid, "target", "prod")
	if sid != tracing.SpanID(tid, "target", "prod") || sid == tracing.SpanID(tid, "target", "staging") || sid == tracing.SpanID(tid, "targetp", "rod") {
		t.Fatal("SpanID is not a function of its names")
	}
	ctx, root := tr.Start(tracing.WithIDs(context.Background(), tid, sid), "root")
	child := tracing.SpanID(tid, "child")
	_, c := tr.Start(tracing.WithIDs(ctx, trace.TraceID{}, child), "child")
	c.End()
	root.End()
	spans := exp.GetSpans()
	if len(spans) != 2 || spans[1].SpanContext.TraceID() != tid || spans[1].SpanContext.SpanID() != sid ||
		spans[0].SpanContext.SpanID() != child || spans[0].Parent.SpanID() != sid {
		t.Fatalf("spans: %+v", spans)
	}
	tp2 := tracing.Format(root.SpanContext())
	if !strings.HasPrefix(tp2, "00-01020300000000000000000000000000-") || !strings.HasSuffix(tp2, "-01") {
		t.Errorf("traceparent %q", tp2)
	}
	back := tracing.Parse(tp2)
	if back.TraceID() != tid || back.SpanID() != sid || !back.IsSampled() || !back.IsRemote() {
		t.Errorf("parsed %+v", back)
	}
	if tracing.Parse("nonsense").IsValid() || tracing.Format(trace.SpanContext{}) != "" {
		t.Error("an invalid traceparent parsed, or an invalid span context formatted")
	}
}

// Transport makes a request in a span's context a child span that sends
// traceparent, shows no query, and leaves other requests alone.
func TestTransport(t *testing.T) {
	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("traceparent")
	}))
	defer srv.Close()
	tp, exp := provider()
	hc := &http.Client{Transport: &tracing.Transport{}}

	req, _ := http.NewRequest("GET", srv.URL+"/hook/abc?token=s3cret", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := <-got; h != "" || len(exp.GetSpans()) != 0 {
		t.Fatalf("a request without a span sent traceparent %q or made spans", h)
	}

	ctx, parent := tp.Tracer("test").Start(context.Background(), "parent")
	req, _ = http.NewRequestWithContext(ctx, "GET", srv.URL+"/hook/abc?token=s3cret", nil)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	parent.End()
	h := <-got
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("spans: %d", len(spans))
	}
	span := spans[0]
	if span.Name != "HTTP GET" || span.Parent.SpanID() != parent.SpanContext().SpanID() || tracing.Parse(h).SpanID() != span.SpanContext.SpanID() {
		t.Errorf("span %s (parent %s), traceparent %q", span.Name, span.Parent.SpanID(), h)
	}
	for _, a := range span.Attributes {
		if v := a.Value.String(); strings.Contains(v, "s3cret") || strings.Contains(v, "/hook") {
			t.Errorf("attribute %s = %q shows the query or the path", a.Key, v)
		}
	}
}

// collector is an OTLP trace service over gRPC on loopback.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	got chan *coltracepb.ExportTraceServiceRequest
}

func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.got <- req
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// TestNewExports: New's provider sends spans over OTLP/gRPC and
// OTLP/HTTP (at /v1/traces under the endpoint's path) with the service
// name, and refuses a protocol or an endpoint it cannot use without
// showing the endpoint.
func TestNewExports(t *testing.T) {
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	c := &collector{got: make(chan *coltracepb.ExportTraceServiceRequest, 4)}
	coltracepb.RegisterTraceServiceServer(gs, c)
	go gs.Serve(ln)
	defer gs.Stop()

	paths := make(chan string, 4)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		paths <- r.URL.Path
		c.got <- &req
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer hs.Close()

	for _, cfg := range []tracing.Config{
		{Endpoint: "http://" + ln.Addr().String(), Protocol: tracing.ProtocolGRPC, ServiceName: "sortie-agent"},
		{Endpoint: hs.URL + "/otlp", Protocol: tracing.ProtocolHTTP, ServiceName: "sortie-server"},
	} {
		tp, err := tracing.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, span := tp.Tracer("test").Start(ctx, "hello")
		span.End()
		if err := tp.Shutdown(ctx); err != nil {
			t.Fatalf("%s: %v", cfg.Protocol, err)
		}
		req := <-c.got
		rs := req.ResourceSpans[0]
		var service string
		for _, kv := range rs.Resource.Attributes {
			if kv.Key == "service.name" {
				service = kv.Value.GetStringValue()
			}
		}
		if service != cfg.ServiceName || rs.ScopeSpans[0].Spans[0].Name != "hello" {
			t.Errorf("%s: service %q, spans %v", cfg.Protocol, service, rs.ScopeSpans)
		}
	}
	if p := <-paths; p != "/otlp/v1/traces" {
		t.Errorf("OTLP/HTTP path %q, want /otlp/v1/traces", p)
	}
	if _, err := tracing.New(ctx, tracing.Config{Protocol: "http/json"}); err == nil || !strings.Contains(err.Error(), "grpc") {
		t.Errorf("http/json: %v", err)
	}
	if _, err := tracing.New(ctx, tracing.Config{Endpoint: "collector:4318/tok3n"}); err == nil || strings.Contains(err.Error(), "tok3n") {
		t.Errorf("an endpoint without a scheme: %v", err)
	}
}
