package e2e

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/tracing"
)

// otlpReceiver is an OTLP/HTTP endpoint (POST /v1/traces) that decodes
// the real protobuf export requests and keeps every span with the
// service.name of its resource.
type otlpReceiver struct {
	*httptest.Server
	mu      sync.Mutex
	spans   []span
	changed chan struct{} // closed, and replaced, on each export
}

type span struct {
	service string
	*tracepb.Span
}

func (s span) id() string     { return hex.EncodeToString(s.SpanId) }
func (s span) parent() string { return hex.EncodeToString(s.ParentSpanId) }
func (s span) trace() string  { return hex.EncodeToString(s.TraceId) }

func (s span) attr(key string) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.GetStringValue()
		}
	}
	return ""
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	o := &otlpReceiver{changed: make(chan struct{})}
	o.Server = httptest.NewServer(http.HandlerFunc(o.export))
	t.Cleanup(o.Close)
	return o
}

func (o *otlpReceiver) export(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want POST /v1/traces of application/x-protobuf", http.StatusBadRequest)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.ResourceSpans {
		var service string
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.Key == "service.name" {
				service = kv.Value.GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				o.spans = append(o.spans, span{service, sp})
			}
		}
	}
	close(o.changed)
	o.changed = make(chan struct{})
	o.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// wait waits, export by export, until cond holds for the spans received.
func (o *otlpReceiver) wait(t *testing.T, what string, cond func([]span) bool) []span {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		o.mu.Lock()
		spans, changed := append([]span(nil), o.spans...), o.changed
		o.mu.Unlock()
		if cond(spans) {
			return spans
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("the OTLP receiver did not get %s; it has:\n%s", what, dumpSpans(spans))
		}
	}
}

func dumpSpans(spans []span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "  %s %s %s parent=%s trace=%s pipeline=%s\n", s.service, s.Name, s.id(), s.parent(), s.trace(), s.attr("sortie.pipeline"))
	}
	return b.String()
}

const tracedCanary = `version: v1
kind: kubernetes
application: web
targets:
  prod:
    account: prod
    namespace: %s
    strategy: canary
strategies:
  canary:
    canary:
      steps:
        - setWeight: 50
        - runWebhook: {name: notify}
        - pause: {untilApproved: true}
        - setWeight: 100
webhooks:
  - name: notify
    method: POST
    uriTemplate: %s/notify
    disableCallback: true
manifests:
  - inline: |
%s`

// TestTraceThroughAgent runs `sortie server` and `sortie agent` as
// processes exporting to an OTLP/HTTP receiver in the test, through a
// canary with a webhook and an approval, the server restarted while it
// waits: the receiver gets one trace for the pipeline, its root span (from
// the server) once, the agent's spans for the commands inside it as
// children of the server's command spans, the agent's Kubernetes calls as
// children of those; the webhook's receiver gets a traceparent of that
// trace. The pipeline before it is another trace.
func TestTraceThroughAgent(t *testing.T) {
	rcv := newOTLPReceiver(t)
	var mu sync.Mutex
	var traceparents []string
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		traceparents = append(traceparents, r.Header.Get("traceparent"))
		mu.Unlock()
	}))
	defer hooks.Close()
	s := newSortieEnv(t, nil, []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + rcv.URL, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_BSP_SCHEDULE_DELAY=50",
	})
	s.startAgent()
	file := func(image string) api.StartRequest {
		return api.StartRequest{FileName: "deploy.yml", File: fmt.Sprintf(tracedCanary, s.ns, hooks.URL, kubetest.Inline(kubetest.SampleApp("web", 2, image), kubetest.SampleService("web", "web")))}
	}
	var res api.StartResult
	s.call("POST", "/api/v1/pipelines", file("web:v1"), http.StatusAccepted, &res)
	first := res.PipelineID
	if p := s.waitPipeline(first, "the first deployment ends", ended); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first deployment: %s", clienttest.Dump(p))
	}
	s.call("POST", "/api/v1/pipelines", file("web:v2"), http.StatusAccepted, &res)
	id := res.PipelineID
	s.waitPipeline(id, "the approval", func(p *api.PipelineView) bool { return p.Status == pipeline.StatusAwaitingApproval })
	s.restartServer()
	s.agent.WaitLine(connected)
	s.call("POST", "/api/v1/pipelines/"+id+"/approve", nil, http.StatusOK, nil)
	if p := s.waitPipeline(id, "the canary ends", ended); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("canary: %s", clienttest.Dump(p))
	}

	rootOf := func(spans []span, pipe string) (span, int) {
		var root span
		n := 0
		for _, sp := range spans {
			if sp.Name == "pipeline" && sp.attr("sortie.pipeline") == pipe {
				root, n = sp, n+1
			}
		}
		return root, n
	}
	// What the trace must hold once every process flushed: the root, the
	// agent's three commands (two setWeight, a finalize), each with
	// Kubernetes calls under it, and no span whose parent is missing.
	complete := func(spans []span) bool {
		root, n := rootOf(spans, id)
		if n == 0 {
			return false
		}
		ids := map[string]span{}
		for _, sp := range spans {
			if sp.trace() == root.trace() {
				ids[sp.id()] = sp
			}
		}
		agentCmds, kubeCalls := 0, 0
		for _, sp := range ids {
			if sp.id() != root.id() {
				if _, ok := ids[sp.parent()]; !ok {
					return false
				}
			}
			if sp.service == "sortie-agent" && strings.HasPrefix(sp.Name, "agent ") {
				agentCmds++
			}
			if sp.service == "sortie-agent" && strings.HasPrefix(sp.Name, "HTTP ") && strings.HasPrefix(ids[sp.parent()].Name, "agent ") {
				kubeCalls++
			}
		}
		return agentCmds >= 3 && kubeCalls > 0
	}
	spans := rcv.wait(t, "the canary's whole trace", complete)
	root, n := rootOf(spans, id)
	if n != 1 || root.service != "sortie-server" || len(root.ParentSpanId) != 0 {
		t.Errorf("%d root spans for the pipeline; the one from %s has parent %q", n, root.service, root.parent())
	}
	if r1, _ := rootOf(spans, first); r1.trace() == root.trace() {
		t.Error("the two pipelines share a trace")
	}
	byID := map[string]span{}
	for _, sp := range spans {
		if sp.trace() == root.trace() {
			byID[sp.id()] = sp
		}
	}
	var agentSpans []string
	for _, sp := range byID {
		if sp.service != "sortie-agent" || !strings.HasPrefix(sp.Name, "agent ") {
			continue
		}
		agentSpans = append(agentSpans, sp.Name)
		parent := byID[sp.parent()]
		if parent.service != "sortie-server" || parent.Name != "command "+strings.TrimPrefix(sp.Name, "agent ") || parent.attr("sortie.command") != sp.attr("sortie.command") {
			t.Errorf("agent span %s (%s) has parent %s %s (%s)", sp.Name, sp.attr("sortie.command"), parent.service, parent.Name, parent.attr("sortie.command"))
		}
	}
	t.Logf("the pipeline's trace has %d spans; the agent's commands: %s", len(byID), strings.Join(agentSpans, ", "))
	for _, want := range []string{"gate webhook", "gate approval", "command callWebhook", "webhook", "target"} {
		found := false
		for _, sp := range byID {
			found = found || (sp.Name == want && sp.service == "sortie-server")
		}
		if !found {
			t.Errorf("no %q span from the server in the trace:\n%s", want, dumpSpans(spans))
		}
	}

	mu.Lock()
	defer mu.Unlock()
	if len(traceparents) != 1 {
		t.Fatalf("the webhook was called %d times, want once (the first deployment has no canary steps)", len(traceparents))
	}
	sc := tracing.Parse(traceparents[0])
	if hook, ok := byID[sc.SpanID().String()]; sc.TraceID().String() != root.trace() || !ok || hook.Name != "webhook" {
		t.Errorf("the webhook's traceparent %q is not the webhook span of the pipeline's trace %s", traceparents[0], root.trace())
	}
}
