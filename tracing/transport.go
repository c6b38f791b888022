package tracing

import (
	"net"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Transport is an http.RoundTripper that makes each request whose context
// holds a recording span a client span of it, named "HTTP <method>", and
// sends its traceparent. The span has the method, the host, the port and
// the answer's status; the URL's path only with Path (a Kubernetes API
// path names objects, a webhook's may hold a token); never the query, a
// header or a body.
type Transport struct {
	Base http.RoundTripper // nil: http.DefaultTransport
	Path bool
}

// Wrap returns a function wrapping a transport in a Transport: the shape
// of client-go's rest.Config.Wrap.
func Wrap(path bool) func(http.RoundTripper) http.RoundTripper {
	return func(rt http.RoundTripper) http.RoundTripper { return &Transport{Base: rt, Path: path} }
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	parent := trace.SpanFromContext(req.Context())
	if !parent.IsRecording() {
		return base.RoundTrip(req)
	}
	attrs := []attribute.KeyValue{attribute.String("http.request.method", req.Method)}
	host, port, err := net.SplitHostPort(req.URL.Host)
	if err != nil {
		host = req.URL.Host
	}
	attrs = append(attrs, attribute.String("server.address", host))
	if port != "" {
		attrs = append(attrs, attribute.String("server.port", port))
	}
	if t.Path {
		attrs = append(attrs, attribute.String("url.path", req.URL.Path))
	}
	ctx, span := parent.TracerProvider().Tracer(Instrumentation).Start(req.Context(), "HTTP "+req.Method,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()
	req = req.Clone(ctx)
	Inject(ctx, req.Header)
	resp, err := base.RoundTrip(req)
	if err != nil {
		span.SetStatus(codes.Error, "the request failed")
		return nil, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, resp.Status)
	}
	return resp, nil
}

// WrappedRoundTripper returns the wrapped transport, so that client-go
// finds the TLS configuration and dialer under it (its
// net.RoundTripperWrapper).
func (t *Transport) WrappedRoundTripper() http.RoundTripper {
	if t.Base == nil {
		return http.DefaultTransport
	}
	return t.Base
}
