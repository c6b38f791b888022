package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sortie-cd/sortie/tracing"
	"github.com/sortie-cd/sortie/webhook"
)

// TestWebhookTraceparent: a webhook sent in a traced context (the runner's
// command span) carries a W3C traceparent of that trace, each attempt a
// client span of the command's, with no secret in any attribute or status;
// sent without a span, it carries none.
func TestWebhookTraceparent(t *testing.T) {
	var mu sync.Mutex
	var got []string
	answers := []int{http.StatusBadGateway, http.StatusOK}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, r.Header.Get("traceparent"))
		w.WriteHeader(answers[(len(got)-1)%len(answers)])
		w.Write([]byte("echo " + r.URL.RawQuery))
	}))
	defer srv.Close()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())

	wh := hook("POST", srv.URL+"/hook/{{secrets.path-token}}?token={{secrets.ci-token}}", map[string]string{"Authorization": "Bearer {{secrets.ci-token}}"}, "")
	wh.RetryCount = 1
	req, err := webhook.Render(t.Context(), "main", wh, vars, secrets{"ci-token": "s3cr3t", "path-token": "p4th"})
	if err != nil {
		t.Fatal(err)
	}
	s := &webhook.Sender{Direct: local, Backoff: 1}
	ctx, command := tp.Tracer("test").Start(context.Background(), "command callWebhook")
	if _, err := s.Send(ctx, wh, webhook.Target{Tenant: "main"}, req); err != nil {
		t.Fatal(err)
	}
	command.End()

	spans := exp.GetSpans()
	mu.Lock()
	headers := append([]string(nil), got...)
	mu.Unlock()
	if len(headers) != 2 || len(spans) != 3 {
		t.Fatalf("%d calls, %d spans; want 2 attempts and their 2 spans beside the command's", len(headers), len(spans))
	}
	tid := command.SpanContext().TraceID()
	for i, h := range headers {
		sc := tracing.Parse(h)
		span := spans[i]
		if sc.TraceID() != tid || sc.SpanID() != span.SpanContext.SpanID() || span.Parent.SpanID() != command.SpanContext().SpanID() || span.Name != "webhook" {
			t.Errorf("attempt %d: traceparent %q, span %s %s under %s; want the trace %s, its own span under the command's", i+1, h, span.Name, span.SpanContext.SpanID(), span.Parent.SpanID(), tid)
		}
		if attr := attrs(span); !strings.Contains(attr, "http.response.status_code=") || !strings.Contains(attr, "sortie.webhook=notify") {
			t.Errorf("attempt %d attributes: %s", i+1, attr)
		}
		if text := attrs(span) + " " + span.Status.Description; strings.Contains(text, "s3cr3t") || strings.Contains(text, "p4th") {
			t.Errorf("attempt %d: a secret in the span: %s", i+1, text)
		}
	}

	// No span in the context: no traceparent, no span.
	exp.Reset()
	mu.Lock()
	got, answers = nil, []int{http.StatusOK}
	mu.Unlock()
	if _, err := s.Send(context.Background(), wh, webhook.Target{Tenant: "main"}, req); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != "" || len(exp.GetSpans()) != 0 {
		t.Errorf("untraced: traceparent %q, %d spans", got, len(exp.GetSpans()))
	}
}

func attrs(s tracetest.SpanStub) string {
	var out []string
	for _, a := range s.Attributes {
		out = append(out, string(a.Key)+"="+a.Value.String())
	}
	return strings.Join(out, " ")
}
