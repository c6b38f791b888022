package runner_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/kubeexec"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/progress"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
)

// writes are the requests that change the cluster.
func writes(r *http.Request) bool { return r.Method != http.MethodGet }

// retries returns the retry events of a pipeline.
func (e *env) retries(id string) []progress.RetryEvent {
	e.t.Helper()
	evs, err := e.r.Events(context.Background(), store.DefaultTenant, id, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []progress.RetryEvent
	for _, ev := range evs {
		if ev.Type != progress.EventRetry {
			continue
		}
		var r progress.RetryEvent
		if err := json.Unmarshal(ev.Data, &r); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// A canary whose API server fails for a while (503s, 429s, resets, an
// outage of every request) completes, retrying what failed transiently
// where the user can see it; a forbidden write still fails at once.
func TestCanarySurvivesAPIServerFaults(t *testing.T) {
	proxy := kubetest.NewFaultProxy(t)
	kx, err := kube.New(proxy.Config(), nil)
	if err != nil {
		t.Fatal(err)
	}
	exec := kubeexec.New(store.DefaultTenant, map[string]*kube.Executor{"local": kx}, nil)
	e := newEnvOpts(t, runner.Options{Store: openStore(t), Executor: exec})
	strategies := "  c:\n    canary:\n      steps:\n        - setWeight: 25\n        - setWeight: 50\n        - setWeight: 100"
	deploy := func(image string) *store.Pipeline {
		return e.waitEnd(e.start(e.file("faults", e.oneTarget("t", "c"), strategies, image, "")))
	}
	if p := deploy("web:v1"); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first deployment ended %s\n%s", p.Status, dump(p))
	}

	proxy.Inject(writes, kubetest.Unavailable, kubetest.Unavailable, kubetest.Reset, kubetest.TooManyRequests, kubetest.Outage(10*time.Second))
	p := deploy("web:v2")
	if p.Status != pipeline.StatusSucceeded {
		t.Fatalf("canary through faults ended %s\n%s\ninjected: %v", p.Status, dump(p), proxy.Injected())
	}
	if n := proxy.Pending(); n != 0 {
		t.Fatalf("%d faults were never met: the canary did not go through them", n)
	}
	if got := e.images(); got["web:v2"] != 4 || len(got) != 1 {
		t.Errorf("pods after the canary: %v", got)
	}
	injected := proxy.Injected()
	retries := e.retries(p.ID)
	t.Logf("injected %v; %d retries", injected, len(retries))
	// Every fault of a write failed one run of its command; the outage
	// failed several.
	if min := injected["503"] + injected["429"] + 1 + 1; len(retries) < min {
		t.Errorf("%d retries recorded, want at least %d (injected %v)", len(retries), min, injected)
	}
	for _, r := range retries {
		want := "retrying " + r.Step + ": "
		if !strings.HasPrefix(r.Message, want) || !strings.HasSuffix(r.Message, ")") || !strings.Contains(r.Message, "(attempt ") || r.Attempt < 2 || r.Target != "t" {
			t.Errorf("retry event %+v: want a message %q...(attempt n), n >= 2, for target t", r, want)
		}
	}
	var reasons []string
	for _, r := range retries {
		reasons = append(reasons, r.Reason)
	}
	all := strings.Join(reasons, "\n")
	for _, want := range []string{"injected fault: Service Unavailable", "injected fault: Too Many Requests", "connection reset"} {
		if !strings.Contains(all, want) {
			t.Errorf("no retry says %q; reasons:\n%s", want, all)
		}
	}

	proxy.Inject(writes, kubetest.Forbidden)
	p = deploy("web:v3")
	if p.Status != pipeline.StatusFailed {
		t.Fatalf("canary with a forbidden write ended %s, want FAILED\n%s", p.Status, dump(p))
	}
	if got := e.retries(p.ID); len(got) != 0 {
		t.Errorf("a forbidden write was retried: %+v", got)
	}
	if !strings.Contains(dump(p), "injected fault: Forbidden") {
		t.Errorf("the failure does not say why:\n%s", dump(p))
	}
}
