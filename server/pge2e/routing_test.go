package pge2e

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/agent"
	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/secrets"
	"github.com/sortie-cd/sortie/server"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/postgres"
	"github.com/sortie-cd/sortie/store/postgres/pgtest"
)

// startReplica runs one more server on a database another uses: it
// stores no bootstrap credential (tenant main has one).
func startReplica(t *testing.T, cfg server.Config) string {
	t.Helper()
	cfg.Addr, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	readyc := make(chan string, 1)
	cfg.Ready = func(addr, _ string) { readyc <- addr }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	select {
	case addr := <-readyc:
		return "http://" + addr
	case err := <-done:
		t.Fatalf("the replica did not start: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the replica did not start within a minute")
	}
	return ""
}

// instant answers every command at once, as if the cluster had done it,
// after one report. The agent is real (package agent, over real gRPC);
// its cluster is not what is under test here.
type instant struct {
	mu   sync.Mutex
	runs map[string]int
}

func (x *instant) Execute(ctx context.Context, job runner.Job) pipeline.CommandResult {
	x.mu.Lock()
	x.runs[job.Command.ID]++
	x.mu.Unlock()
	if job.Report != nil {
		_ = job.Report(ctx, store.Event{Type: "applied", Data: json.RawMessage(`{}`)})
	}
	w := job.Command.Weight
	if job.Command.Kind != pipeline.CmdSetWeight {
		w = 100
	}
	return pipeline.CommandResult{CommandID: job.Command.ID, Success: true, AchievedWeight: w}
}

func (x *instant) HasAccount(string, string) bool { return true }

// TestTwoReplicas: two servers on one PostgreSQL database and one master
// key. A token replica A issued is good on replica B (the signing keys are
// in the database); an agent connected to B runs the commands of a
// pipeline A drives; a client following that pipeline's events on B sees
// them live, the approval given on A included, up to the end; every
// command ran once; a credential deleted on A has its token refused and
// its stream ended on B.
func TestTwoReplicas(t *testing.T) {
	url := pgtest.Database(t)
	master, err := secrets.ParseKey(secrets.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	// Replicas behind one balancer share its URL: the tokens' issuer.
	const public = "http://sortie.invalid"
	a := clienttest.Start(t, server.Config{DatabaseURL: url, MasterKey: master, PublicURL: public})
	bURL := startReplica(t, server.Config{DatabaseURL: url, MasterKey: master, PublicURL: public})
	ctx := t.Context()

	ca, err := client.New(client.Options{Server: a.URL, ClientID: a.Credentials.ClientID, ClientSecret: a.Credentials.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ca.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := client.New(client.Options{Server: bURL, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cb.ListPipelines(ctx, client.ListOptions{}); err != nil {
		t.Fatalf("B refuses the token A issued: %v", err)
	}

	cred, err := ca.CreateCredential(ctx, api.CreateCredentialRequest{Name: "agent east", Roles: []string{pipeline.RoleAgent}})
	if err != nil {
		t.Fatal(err)
	}
	x := &instant{runs: map[string]int{}}
	ag, err := agent.New(agent.Options{ServerURL: bURL, AgentID: "east", ClientID: cred.ClientID, ClientSecret: cred.ClientSecret,
		Executor: func(string) runner.Executor { return x }, Version: "v-test", MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	actx, stopAgent := context.WithCancel(context.Background())
	agentDone := make(chan struct{})
	go func() { defer close(agentDone); ag.Run(actx) }()
	t.Cleanup(func() { stopAgent(); <-agentDone })
	pgtest.UntilNotified(t, url, postgres.ChannelStreams, "B records the agent", func() bool {
		l, err := ca.ListAgents(ctx)
		return err == nil && len(l) == 1 && l[0].ID == "east"
	})

	// The first deployment of a target goes straight in; the second runs
	// the canary, with its pause.
	first, err := ca.StartPipeline(ctx, api.StartRequest{FileName: "deploy.yml", File: pausedFile, Manifests: map[string]string{"web.yml": webManifest}})
	if err != nil {
		t.Fatal(err)
	}
	if p := clienttest.WaitEnd(t, ca, first.PipelineID); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first deployment %s\n%s", p.Status, clienttest.Dump(p))
	}
	start, err := ca.StartPipeline(ctx, api.StartRequest{FileName: "deploy.yml", File: pausedFile,
		Manifests: map[string]string{"web.yml": strings.Replace(webManifest, "web:1", "web:2", 1)}})
	if err != nil {
		t.Fatal(err)
	}
	id := start.PipelineID
	clienttest.WaitPipeline(t, ca, id, "the pause to wait for approval", func(p *api.PipelineView) bool {
		return strings.Contains(clienttest.Dump(p), "AWAITING_APPROVAL")
	})

	// Follow on B from the last event but one: the stream subscribes
	// before it replays, so once that last event came, everything after it
	// (the approval given on A, and what follows) comes live.
	past, err := cb.Events(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	after := past[len(past)-1].Seq - 1
	followed := make(chan error, 1)
	connected := make(chan struct{})
	var live []store.Event
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	go func() {
		followed <- cb.FollowPipeline(fctx, id, after, client.FollowOptions{}, func(ev store.Event) error {
			live = append(live, ev)
			if len(live) == 1 {
				close(connected)
			}
			if ev.Type == "status" && strings.Contains(string(ev.Data), `"SUCCEEDED"`) && !strings.Contains(string(ev.Data), `"target"`) {
				return client.ErrStop
			}
			return nil
		})
	}()
	select {
	case <-connected:
	case err := <-followed:
		t.Fatalf("following on B: %v", err)
	}
	if _, err := ca.Act(ctx, id, "approve", api.ActionRequest{Target: "prod"}); err != nil {
		t.Fatal(err)
	}
	if err := <-followed; err != nil {
		t.Fatalf("following on B: %v (got %d events)", err, len(live))
	}
	p := clienttest.WaitEnd(t, ca, id)
	if p.Status != pipeline.StatusSucceeded {
		t.Fatalf("pipeline %s\n%s", p.Status, clienttest.Dump(p))
	}
	all, err := cb.Events(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) < 3 || live[0].Seq != after+1 {
		t.Fatalf("B's stream: %v, want from seq %d to the end", live, after+1)
	}
	for i, ev := range live {
		if ev.Seq != live[0].Seq+int64(i) {
			t.Fatalf("B's stream: seqs not consecutive at %d: %v", i, live)
		}
	}
	if last := live[len(live)-1].Seq; last > all[len(all)-1].Seq {
		t.Errorf("B streamed seq %d past the stored %d", last, all[len(all)-1].Seq)
	}

	// A revocation on A reaches B: a viewer following on B with its token
	// is cut off when A deletes its credential, and the token is refused.
	viewer, err := ca.CreateCredential(ctx, api.CreateCredentialRequest{Name: "viewer", Roles: []string{pipeline.RoleViewer}})
	if err != nil {
		t.Fatal(err)
	}
	cv, err := client.New(client.Options{Server: a.URL, ClientID: viewer.ClientID, ClientSecret: viewer.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	vtok, err := cv.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cvb, err := client.New(client.Options{Server: bURL, Token: vtok})
	if err != nil {
		t.Fatal(err)
	}
	streaming := make(chan struct{})
	cut := make(chan error, 1)
	go func() {
		once := sync.Once{}
		cut <- cvb.FollowPipeline(fctx, id, all[len(all)-1].Seq-1, client.FollowOptions{}, func(store.Event) error {
			once.Do(func() { close(streaming) })
			return nil
		})
	}()
	select {
	case <-streaming:
	case err := <-cut:
		t.Fatalf("the viewer's stream on B: %v", err)
	}
	if err := ca.DeleteCredential(ctx, viewer.ClientID); err != nil {
		t.Fatal(err)
	}
	if err := <-cut; err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("the viewer's stream on B after A deleted its credential: %v, want it ended, revoked", err)
	}
	if _, err := cvb.ListPipelines(ctx, client.ListOptions{}); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("B with the revoked token: %v, want revoked", err)
	}

	x.mu.Lock()
	for cmd, n := range x.runs {
		if n != 1 {
			t.Errorf("command %s ran %d times", cmd, n)
		}
	}
	x.mu.Unlock()
}

const pausedFile = `version: v1
kind: kubernetes
application: web
targets:
  prod:
    account: east
    namespace: test
    strategy: canary
manifests:
  - path: web.yml
strategies:
  canary:
    canary:
      steps:
        - setWeight: 50
        - pause:
            untilApproved: true
        - setWeight: 100
`

const webManifest = `apiVersion: apps/v1
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
          image: registry.example/web:1
`
