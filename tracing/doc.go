// Package tracing is Sortie's OpenTelemetry plumbing: the tracer provider
// that exports spans over OTLP (gRPC or HTTP/protobuf) when the server or
// the agent is configured to, span ids chosen by the caller, the W3C
// traceparent of a span context as text (how a pipeline's trace is stored,
// and how a command carries its trace to an agent), and an HTTP transport
// that makes each request a client span of the span in its context and
// sends it traceparent.
//
// # What it provides
//
//   - New builds an *sdktrace.TracerProvider from a Config: the endpoint,
//     the protocol and the default service name the command line parsed;
//     the SDK reads the other standard OTEL_* settings (headers, TLS,
//     timeouts, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
//     OTEL_TRACES_SAMPLER and its argument, the batch settings) as the
//     OpenTelemetry specification says. Tracing that is not configured is
//     no provider at all: callers then use a no-op one, which costs nothing.
//   - IDGenerator honours ids put in a context by WithIDs, and SpanID
//     derives a stable span id from a trace id and names: a pipeline's
//     target and step spans have ids computed from the pipeline's stored
//     trace, so that the server that ends them (after a restart, say) gives
//     them the ids their children already point at.
//   - Format and Parse turn a span context into a traceparent and back.
//   - Transport wraps an http.RoundTripper: a request whose context holds a
//     recording span becomes a child span (method, host, status; the path
//     only when asked) and carries traceparent. Without such a span it is
//     the wrapped transport, untouched.
//
// # What it must not do
//
// Put a secret in a span: no URL query, no header, no body, and no path
// unless the caller says the path holds none. It imports no Sortie package
// and nothing of Kubernetes, reads no flag and no SORTIE_* variable, and
// keeps no global state (no global provider or propagator is set).
package tracing
