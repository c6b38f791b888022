package tracing

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Instrumentation is the name of Sortie's tracers.
const Instrumentation = "github.com/sortie-cd/sortie"

// Protocols of the OTLP exporter (OTEL_EXPORTER_OTLP_PROTOCOL's values
// that Go's exporters implement).
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
)

// Config is what the command line decided about tracing.
type Config struct {
	// Endpoint is the collector's base URL (http://host:4318 for
	// HTTP, http://host:4317 for gRPC; https for TLS), as
	// OTEL_EXPORTER_OTLP_ENDPOINT means it: for HTTP, /v1/traces is
	// appended to its path. Empty leaves it to the exporter, which reads
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and OTEL_EXPORTER_OTLP_ENDPOINT.
	Endpoint string
	// Protocol is ProtocolGRPC or ProtocolHTTP; empty means ProtocolHTTP,
	// the specification's default.
	Protocol string
	// ServiceName is service.name unless OTEL_SERVICE_NAME (or
	// OTEL_RESOURCE_ATTRIBUTES) says otherwise; ServiceVersion is
	// service.version.
	ServiceName, ServiceVersion string
}

// New returns a tracer provider that batches spans to the OTLP endpoint of
// c. Its Shutdown flushes them; call it before the process exits.
func New(ctx context.Context, c Config) (*sdktrace.TracerProvider, error) {
	var client otlptrace.Client
	switch c.Protocol {
	case "", ProtocolHTTP:
		var opts []otlptracehttp.Option
		if c.Endpoint != "" {
			u, err := endpointURL(c.Endpoint)
			if err != nil {
				return nil, err
			}
			u.Path = path.Join("/", u.Path, "v1/traces")
			opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
		}
		client = otlptracehttp.NewClient(opts...)
	case ProtocolGRPC:
		var opts []otlptracegrpc.Option
		if c.Endpoint != "" {
			u, err := endpointURL(c.Endpoint)
			if err != nil {
				return nil, err
			}
			opts = append(opts, otlptracegrpc.WithEndpointURL(u.String()))
		}
		client = otlptracegrpc.NewClient(opts...)
	default:
		return nil, fmt.Errorf("tracing: OTLP protocol %q is not supported: use %s or %s", c.Protocol, ProtocolGRPC, ProtocolHTTP)
	}
	exp, err := otlptrace.New(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", c.ServiceName)}
	if c.ServiceVersion != "" {
		attrs = append(attrs, attribute.String("service.version", c.ServiceVersion))
	}
	// The environment's service name and attributes come last: they win.
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithAttributes(attrs...), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithIDGenerator(IDGenerator())), nil
}

// endpointURL checks an endpoint given on the command line; the error
// shows no user info, path or query (a collector's URL may carry a token).
func endpointURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tracing: OTLP endpoint must be an http:// or https:// URL with a host, such as http://collector:4318")
	}
	return u, nil
}

type idsKey struct{}

type ids struct {
	trace trace.TraceID
	span  trace.SpanID
}

// WithIDs makes the next span started with ctx have span id sid and, when
// it has no parent, trace id tid, if the tracer provider uses
// IDGenerator. An invalid id is chosen at random as usual.
func WithIDs(ctx context.Context, tid trace.TraceID, sid trace.SpanID) context.Context {
	return context.WithValue(ctx, idsKey{}, ids{tid, sid})
}

// IDGenerator returns the span id generator New uses: random ids, but for
// a span started with a context of WithIDs. Tests give it to their own
// provider.
func IDGenerator() sdktrace.IDGenerator { return generator{} }

type generator struct{}

func (generator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	tid, sid := randomIDs()
	if f, ok := ctx.Value(idsKey{}).(ids); ok {
		if f.trace.IsValid() {
			tid = f.trace
		}
		if f.span.IsValid() {
			sid = f.span
		}
	}
	return tid, sid
}

func (generator) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if f, ok := ctx.Value(idsKey{}).(ids); ok && f.span.IsValid() {
		return f.span
	}
	_, sid := randomIDs()
	return sid
}

func randomIDs() (trace.TraceID, trace.SpanID) {
	var tid trace.TraceID
	var sid trace.SpanID
	for !tid.IsValid() {
		_, _ = rand.Read(tid[:])
	}
	for !sid.IsValid() {
		_, _ = rand.Read(sid[:])
	}
	return tid, sid
}

// SpanID is a span id derived from a trace id and names: the same
// arguments give the same id, in any process.
func SpanID(tid trace.TraceID, names ...string) trace.SpanID {
	h := sha256.New()
	h.Write(tid[:])
	for _, n := range names {
		h.Write([]byte{0})
		h.Write([]byte(n))
	}
	var sid trace.SpanID
	copy(sid[:], h.Sum(nil))
	if !sid.IsValid() {
		sid[7] = 1
	}
	return sid
}

var propagator = propagation.TraceContext{}

// Format is the W3C traceparent of sc; empty when sc is not valid.
func Format(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	carrier := propagation.MapCarrier{}
	propagator.Inject(trace.ContextWithSpanContext(context.Background(), sc), carrier)
	return carrier["traceparent"]
}

// Parse is the remote span context of a traceparent; not valid when s is
// empty or malformed.
func Parse(s string) trace.SpanContext {
	if s == "" {
		return trace.SpanContext{}
	}
	ctx := propagator.Extract(context.Background(), propagation.MapCarrier{"traceparent": strings.TrimSpace(s)})
	return trace.SpanContextFromContext(ctx)
}

// Inject sets the traceparent (and tracestate) of ctx's span in h, unless
// h has a traceparent already or ctx holds no valid span.
func Inject(ctx context.Context, h http.Header) {
	if h.Get("traceparent") != "" || !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	propagator.Inject(ctx, propagation.HeaderCarrier(h))
}
