package notify_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/notify"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/sqlite"
)

// doneExecutor answers every command with success at once: a stand-in for
// the cluster (whose part the runner's and kube's tests run for real),
// since this test is about the events the real runner saves and the
// messages they make.
type doneExecutor struct{}

func (doneExecutor) Execute(_ context.Context, job runner.Job) pipeline.CommandResult {
	return pipeline.CommandResult{CommandID: job.Command.ID, Success: true, AchievedWeight: job.Command.Weight}
}
func (doneExecutor) HasAccount(string, string) bool { return true }

const deployFile = `version: v1
kind: kubernetes
application: web
targets:
  prod:
    account: local
    namespace: web
    strategy: c
strategies:
  c:
    canary:
      steps:
        - setWeight: 50
        - pause: {untilApproved: true}
        - setWeight: 100
manifests:
  - inline: |
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        replicas: 2
        selector:
          matchLabels: {app: web}
        template:
          metadata:
            labels: {app: web}
          spec:
            containers:
              - name: web
                image: web:IMAGE
`

// TestRunnerEventsNotify: the real runner's events, through SubscribeAll,
// become the right messages: started and succeeded for a first deployment,
// then a wait for approval with links, and succeeded after the approval.
func TestRunnerEventsNotify(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "sortie.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := runner.New(runner.Options{Store: st, Executor: doneExecutor{}})
	defer r.Close()

	got := make(chan notify.Message, 20)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var m notify.Message
		if err := json.NewDecoder(req.Body).Decode(&m); err != nil {
			t.Errorf("not a message: %v", err)
		}
		got <- m
	}))
	defer recv.Close()
	if err := st.CreateSubscription(ctx, store.Subscription{Tenant: store.DefaultTenant, ID: "all", Application: "web", Target: "prod",
		Events: notify.Events, SinkType: notify.SinkWebhook, Sink: json.RawMessage(`{"url": "` + recv.URL + `"}`)}); err != nil {
		t.Fatal(err)
	}
	links := notify.NewLinks([]byte("k-k-k-k-k-k-k-k-k-k-k-k-k-k-k-k-"), "https://sortie.test", time.Hour)
	n := notify.New(notify.Options{Store: st, Links: links})
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx, r.SubscribeAll) }()
	defer func() { cancel(); <-done }()

	next := func() notify.Message {
		t.Helper()
		select {
		case m := <-got:
			return m
		case <-time.After(time.Minute):
			t.Fatal("no message")
			return notify.Message{}
		}
	}
	by := pipeline.Principal{Name: "alice", Roles: []string{pipeline.RoleDeployer}}
	start := func(image string) string {
		res, err := r.Start(ctx, by, store.DefaultTenant, runner.StartRequest{FileName: "deploy.yml", File: strings.ReplaceAll(deployFile, "IMAGE", image)})
		if err != nil {
			t.Fatal(err)
		}
		return res.PipelineID
	}
	first := start("v1")
	for _, want := range []string{notify.EventStarted, notify.EventSucceeded} {
		if m := next(); m.Event != want || m.Pipeline != first {
			t.Fatalf("message %+v, want %s of %s", m, want, first)
		}
	}
	second := start("v2")
	if m := next(); m.Event != notify.EventStarted || m.Pipeline != second {
		t.Fatalf("message %+v, want started of %s", m, second)
	}
	m := next()
	if m.Event != notify.EventWaitingForApproval || m.Target != "prod" || m.Step == "" || !strings.HasPrefix(m.ApproveURL, "https://sortie.test/links/") || m.RollbackURL == "" {
		t.Fatalf("message %+v, want the wait with links", m)
	}
	link, err := links.Verify(strings.TrimPrefix(m.ApproveURL, "https://sortie.test/links/"), time.Now())
	if err != nil || link.Pipeline != second || link.Step != m.Step {
		t.Fatalf("approve link %+v, %v", link, err)
	}
	if _, err := r.Act(ctx, store.DefaultTenant, second, pipeline.Approve{Target: link.Target, Step: link.Step, By: by}); err != nil {
		t.Fatal(err)
	}
	if m := next(); m.Event != notify.EventSucceeded || m.Pipeline != second {
		t.Fatalf("message %+v, want succeeded of %s", m, second)
	}
	select {
	case m := <-got:
		t.Errorf("an extra message: %+v", m)
	default:
	}
}
