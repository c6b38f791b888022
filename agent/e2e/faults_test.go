package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/progress"
)

// retries reads the pipeline's log and returns its retry events.
func (s *sortie) retries(id string) []progress.RetryEvent {
	s.t.Helper()
	var list api.EventList
	s.call("GET", "/api/v1/pipelines/"+id+"/events", nil, http.StatusOK, &list)
	var out []progress.RetryEvent
	for _, ev := range list.Events {
		var r progress.RetryEvent
		if ev.Type == progress.EventRetry && json.Unmarshal(ev.Data, &r) == nil {
			out = append(out, r)
		}
	}
	return out
}

// The agent's API server fails for a while during a canary (503s, a
// reset, an outage of every request): the transient failures cross the
// agent's stream as such, the server retries them, the canary completes
// and its log shows the retries; a forbidden write fails at once.
func TestCanaryThroughAgentSurvivesAPIServerFaults(t *testing.T) {
	s := newSortie(t)
	proxy := kubetest.NewFaultProxy(t)
	s.kubeconfig = proxy.Kubeconfig(t)
	s.startAgent()
	first := s.startPipeline("web:v1")
	if p := s.waitPipeline(first, "the first deployment ends", ended); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first deployment: %s", clienttest.Dump(p))
	}

	writes := func(r *http.Request) bool { return r.Method != http.MethodGet }
	proxy.Inject(writes, kubetest.Unavailable, kubetest.Reset, kubetest.Unavailable, kubetest.Outage(10*time.Second))
	id := s.startPipeline("web:v2")
	for _, w := range []int{25, 50} {
		s.waitPipeline(id, "the pause", awaiting(w))
		s.call("POST", "/api/v1/pipelines/"+id+"/approve", nil, http.StatusOK, nil)
	}
	if p := s.waitPipeline(id, "the canary ends", ended); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("canary through faults: %s\ninjected: %v", clienttest.Dump(p), proxy.Injected())
	}
	if n := proxy.Pending(); n != 0 {
		t.Fatalf("%d faults were never met", n)
	}
	s.wantPods("after the canary", 0, 4)
	retries := s.retries(id)
	t.Logf("injected %v; %d retries", proxy.Injected(), len(retries))
	if len(retries) < 4 {
		t.Errorf("%d retries recorded, want one per fault at least: %+v", len(retries), retries)
	}
	for _, r := range retries {
		if !strings.HasPrefix(r.Message, "retrying "+r.Step+": ") || r.Attempt < 2 {
			t.Errorf("retry event %+v", r)
		}
	}

	proxy.Inject(writes, kubetest.Forbidden)
	id = s.startPipeline("web:v3")
	p := s.waitPipeline(id, "the forbidden canary ends", ended)
	if p.Status != pipeline.StatusFailed {
		t.Fatalf("canary with a forbidden write: %s", clienttest.Dump(p))
	}
	if got := s.retries(id); len(got) != 0 {
		t.Errorf("a forbidden write was retried: %+v", got)
	}
}
