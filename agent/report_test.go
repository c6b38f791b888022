package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/sortie-cd/sortie/agent/agentpb"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
)

// handAgent is an agent stream driven by the test over real gRPC: it says
// Hello, heartbeats on its own, and hands the commands it gets to the test,
// which sends what it likes.
type handAgent struct {
	t        *testing.T
	stream   agentpb.Agent_ConnectClient
	sendMu   sync.Mutex
	commands chan *agentpb.Command
	ended    chan error
}

func (e *env) handAgent(t *testing.T, id string) *handAgent {
	t.Helper()
	cc, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+e.token(t, pipeline.RoleAgent))
	stream, err := agentpb.NewAgentClient(cc).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a := &handAgent{t: t, stream: stream, commands: make(chan *agentpb.Command, 16), ended: make(chan error, 1)}
	a.send(&agentpb.AgentMessage{Msg: &agentpb.AgentMessage_Hello{Hello: &agentpb.Hello{AgentId: id, Instance: id}}})
	if m, err := stream.Recv(); err != nil || m.GetWelcome() == nil {
		t.Fatalf("hello: %v %v, want Welcome", m, err)
	}
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				a.ended <- err
				return
			}
			if c := m.GetCommand(); c != nil {
				a.commands <- c
			}
		}
	}()
	go func() {
		tick := time.NewTicker(testHeartbeat)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				a.send(&agentpb.AgentMessage{Msg: &agentpb.AgentMessage_Heartbeat{Heartbeat: &agentpb.Heartbeat{}}})
			}
		}
	}()
	e.waitHub(id+" connects", e.connected(id))
	return a
}

func (a *handAgent) send(m *agentpb.AgentMessage) {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	if err := a.stream.Send(m); err != nil {
		a.t.Errorf("send %v: %v", m, err)
	}
}

func (a *handAgent) report(id, typ, data string) {
	a.send(&agentpb.AgentMessage{Msg: &agentpb.AgentMessage_Report{Report: &agentpb.Report{CommandId: id, EventType: typ, Data: []byte(data)}}})
}

func (a *handAgent) result(id string, r pipeline.CommandResult) {
	b, _ := json.Marshal(r)
	a.send(&agentpb.AgentMessage{Msg: &agentpb.AgentMessage_Result{Result: &agentpb.Result{CommandId: id, Result: b}}})
}

func (a *handAgent) command(want string) {
	a.t.Helper()
	select {
	case c := <-a.commands:
		if c.GetId() != want {
			a.t.Fatalf("command %s, want %s", c.GetId(), want)
		}
	case err := <-a.ended:
		a.t.Fatalf("the stream ended waiting for command %s: %v", want, err)
	case <-time.After(10 * time.Second):
		a.t.Fatalf("command %s did not come", want)
	}
}

// reportLog is a Job.Report that records what it is given.
type reportLog struct {
	mu     sync.Mutex
	events []store.Event
	slow   time.Duration // each append takes this long
}

func (l *reportLog) report(_ context.Context, ev store.Event) error {
	// Not a wait: a slow store is the thing under test (the stream must
	// keep its heartbeats while appending lags behind).
	time.Sleep(l.slow)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
	return nil
}

func (l *reportLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ev := range l.events {
		out = append(out, ev.Type+" "+string(ev.Data))
	}
	return strings.Join(out, "; ")
}

// A hand-driven agent reports for its command: valid reports reach the
// command's Job.Report in order and all before Execute returns the result,
// even when appending them is slower than the stream (which keeps its
// heartbeats meanwhile); reports for an unknown or finished command, from
// another agent, over the size limit, not JSON or of a server type are
// ignored.
func TestReportsReachTheJobBeforeTheResult(t *testing.T) {
	e := newEnv(t)
	a := e.handAgent(t, "prod")
	other := e.handAgent(t, "staging")

	// Each append takes four heartbeat intervals: were reports appended
	// on the stream's reading, the hub would drop the agent as silent.
	log := &reportLog{slow: 4 * testHeartbeat}
	j := job("prod", "c1")
	j.Report = log.report
	ch := e.execute(t.Context(), j)
	a.command("c1")
	a.report("c1", "applied", `{"n":1}`)
	a.report("elsewhere", "applied", `{"unknown":true}`)
	other.report("c1", "applied", `{"another agent":true}`)
	a.report("c1", "applied", `{"big":"`+strings.Repeat("x", MaxReportData)+`"}`)
	a.report("c1", "status", `{"forged":true}`)
	a.report("c1", "retry", `{"forged":true}`)
	a.report("c1", "Bad Type", `{}`)
	a.report("c1", "applied", `not json`)
	a.report("c1", "progress", `{"n":2}`)
	a.report("c1", "progress", ``)
	a.result("c1", pipeline.CommandResult{Success: true, Message: "done"})
	r := waitResult(t, ch)
	if !r.Success || r.Message != "done" || r.CommandID != "c1" {
		t.Errorf("result %+v", r)
	}
	// Execute returned: every report before the result is in the log.
	if got, want := log.String(), `applied {"n":1}; progress {"n":2}; progress `; got != want {
		t.Errorf("reported before the result:\n got %s\nwant %s", got, want)
	}
	if !e.hub.HasAccount(store.DefaultTenant, "prod") {
		t.Error("the agent was dropped while its reports were appended")
	}

	// A report for the finished command is ignored; the next command's
	// round trip on the same stream shows the hub has read it.
	a.report("c1", "applied", `{"late":true}`)
	log2 := &reportLog{}
	j2 := job("prod", "c2")
	j2.Report = log2.report
	ch = e.execute(t.Context(), j2)
	a.command("c2")
	a.result("c2", pipeline.CommandResult{Success: true})
	if r := waitResult(t, ch); !r.Success {
		t.Errorf("second command: %+v", r)
	}
	if got := log.String(); strings.Contains(got, "late") {
		t.Errorf("a report after the result reached the log: %s", got)
	}
	if got := log2.String(); got != "" {
		t.Errorf("the second command got reports: %s", got)
	}
}

// reportingExec is an agent's executor that reports an event (and tries an
// oversized one) before it answers.
type reportingExec struct {
	refused chan error
}

func (x *reportingExec) HasAccount(string, string) bool { return true }

func (x *reportingExec) Execute(ctx context.Context, job runner.Job) pipeline.CommandResult {
	if job.Report == nil {
		return pipeline.CommandResult{Message: "the agent's job has no Report"}
	}
	data := fmt.Appendf(nil, `{"command":%q}`, job.Command.ID)
	if err := job.Report(ctx, store.Event{Type: "applied", Data: data}); err != nil {
		return pipeline.CommandResult{Message: err.Error()}
	}
	big := fmt.Appendf(nil, `"%s"`, strings.Repeat("x", MaxReportData))
	x.refused <- job.Report(ctx, store.Event{Type: "applied", Data: big})
	return pipeline.CommandResult{Success: true, Message: "reported"}
}

// The agent gives its executor a Job whose Report travels to the hub: the
// report reaches the Job.Report of the command's Execute before the result;
// an oversized one is refused on the agent's side.
func TestAgentExecutorReportsReachTheHub(t *testing.T) {
	e := newEnv(t)
	x := &reportingExec{refused: make(chan error, 1)}
	cid, secret := e.credential(pipeline.RoleAgent)
	a, err := New(Options{ServerURL: e.url, AgentID: "prod", ClientID: cid, ClientSecret: secret,
		Executor: func(string) runner.Executor { return x }, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	e.waitHub("prod connects", e.connected("prod"))

	log := &reportLog{slow: 2 * testHeartbeat}
	j := job("prod", "c1")
	j.Report = log.report
	r := waitResult(t, e.execute(t.Context(), j))
	if !r.Success || r.Message != "reported" {
		t.Fatalf("result %+v", r)
	}
	if got, want := log.String(), `applied {"command":"c1"}`; got != want {
		t.Errorf("reported %s, want %s", got, want)
	}
	if err := <-x.refused; err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversized report: %v, want refused over the limit", err)
	}
}
