package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sortie-cd/sortie/agent"
	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/internal/proctest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/secrets"
	"github.com/sortie-cd/sortie/store/postgres"
	"github.com/sortie-cd/sortie/store/postgres/pgtest"
)

// insideNetwork is an HTTP service that only the cluster's side reaches.
// On one machine every process reaches every loopback port, so it admits
// a connection only when the process that owns the connection's client
// socket is the agent's (found through /proc/net/tcp and the processes'
// file descriptors); any other process, the server included, gets 403.
// So a call that got through was made by the agent process, not merely
// labelled as relayed.
type insideNetwork struct {
	t     *testing.T
	srv   *httptest.Server
	agent func() int // the agent's pid, now
	token string     // for callbacks to the server

	mu    sync.Mutex
	calls []insideCall
}

type insideCall struct {
	admitted  bool
	pid       int
	relayedBy string
}

func newInsideNetwork(t *testing.T, s *sortie) *insideNetwork {
	in := &insideNetwork{t: t, agent: func() int { return s.agent.Cmd.Process.Pid }, token: s.token}
	in.srv = httptest.NewServer(http.HandlerFunc(in.serve))
	t.Cleanup(in.srv.Close)
	return in
}

func (in *insideNetwork) serve(w http.ResponseWriter, r *http.Request) {
	pid, err := socketOwner(r.RemoteAddr, in.srv.Listener.Addr().String())
	if err != nil {
		in.t.Errorf("inside network: %v", err)
	}
	c := insideCall{admitted: pid == in.agent() && pid != 0, pid: pid, relayedBy: r.Header.Get(agent.RelayedByHeader)}
	in.mu.Lock()
	in.calls = append(in.calls, c)
	in.mu.Unlock()
	if !c.admitted {
		http.Error(w, "only the cluster's network reaches this service", http.StatusForbidden)
		return
	}
	var body struct {
		CallbackURI string `json:"callbackUri"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusAccepted)
	// The verdict comes back to the server as an external system's would.
	go func() {
		b, _ := json.Marshal(map[string]any{"success": true, "mdMessage": fmt.Sprintf("checked from pid %d", pid)})
		req, _ := http.NewRequest("POST", body.CallbackURI+"/callback", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+in.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			in.t.Errorf("callback: %v", err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			in.t.Errorf("callback: %s", resp.Status)
		}
	}()
}

func (in *insideNetwork) log() []insideCall {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]insideCall(nil), in.calls...)
}

// wantRelayedOnce checks that the service had one call, from the agent's
// process, relayed by agent prod, and that its callback's verdict is in
// pipeline p's webhook step.
func (in *insideNetwork) wantRelayedOnce(s *sortie, p *api.PipelineView) {
	in.t.Helper()
	calls := in.log()
	agentPID := s.agent.Cmd.Process.Pid
	if len(calls) != 1 || !calls[0].admitted || calls[0].pid != agentPID || calls[0].relayedBy != "prod" {
		in.t.Fatalf("calls to the inside service: %+v, want one from the agent (pid %d) relayed by prod", calls, agentPID)
	}
	if msg := clienttest.Dump(p); !strings.Contains(msg, fmt.Sprintf("checked from pid %d", agentPID)) {
		in.t.Errorf("the webhook step does not carry the callback's message: %s", msg)
	}
}

// socketOwner returns the pid of the process holding the client end of a
// loopback TCP connection from remote to local (IPv4).
func socketOwner(remote, local string) (int, error) {
	_, rport, _ := net.SplitHostPort(remote)
	_, lport, _ := net.SplitHostPort(local)
	rp, _ := strconv.Atoi(rport)
	lp, _ := strconv.Atoi(lport)
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	inode := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 {
			continue
		}
		// The client's socket: its local port is the request's remote
		// port, its peer the listener.
		if hexPort(fields[1]) == rp && hexPort(fields[2]) == lp {
			inode = fields[9]
		}
	}
	if inode == "" {
		return 0, fmt.Errorf("no socket for %s → %s in /proc/net/tcp", remote, local)
	}
	want := "socket:[" + inode + "]"
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		if l, err := os.Readlink(fd); err == nil && l == want {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no process holds %s", want)
}

func hexPort(addr string) int {
	_, p, ok := strings.Cut(addr, ":")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(p, 16, 32)
	if err != nil {
		return -1
	}
	return int(n)
}

const relayedSteps = `    canary:
      steps:
        - setWeight: 50
        - runWebhook: {name: inside}
`

const relayedWebhook = `webhooks:
  - name: inside
    method: POST
    uriTemplate: %s/check
    networkMode: %s
    headers:
      - key: Content-Type
        value: application/json
    bodyTemplate:
      inline: '{"callbackUri": "{{armory.callbackUri}}"}'
`

// A webhook with networkMode remoteNetworkAgent reaches a service only the
// agent's process may call (see insideNetwork), and its callback decides
// the step; the same webhook with networkMode direct is made by the server
// and refused, which fails and rolls back the canary.
func TestWebhookRelayedThroughTheAgent(t *testing.T) {
	s := newSortie(t)
	s.startAgent()
	in := newInsideNetwork(t, s)
	start := func(mode, image string) string {
		return s.start(deployFile(s.ns, image, relayedSteps, fmt.Sprintf(relayedWebhook, in.srv.URL, mode), ""))
	}
	if p := s.waitPipeline(start("remoteNetworkAgent", "web:v1"), "the first deployment ends", ended); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first deployment: %s", clienttest.Dump(p))
	}
	if len(in.log()) != 0 {
		t.Fatalf("a first deployment ran the canary's webhook: %+v", in.log())
	}

	p := s.waitPipeline(start("remoteNetworkAgent", "web:v2"), "the relayed canary ends", ended)
	if p.Status != pipeline.StatusSucceeded {
		t.Fatalf("relayed canary: %s", clienttest.Dump(p))
	}
	in.wantRelayedOnce(s, p)
	s.wantPods("after the relayed canary", 0, 4)

	// The same call made directly by the server does not get in.
	p = s.waitPipeline(start("direct", "web:v3"), "the direct canary ends", ended)
	calls := in.log()
	if len(calls) != 2 || calls[1].admitted || calls[1].pid != s.server.Cmd.Process.Pid || calls[1].relayedBy != "" {
		t.Errorf("calls to the inside service: %+v, want the second from the server (pid %d), refused", calls, s.server.Cmd.Process.Pid)
	}
	if tgt := p.Targets[0]; tgt.Status != pipeline.StatusRolledBack || !strings.Contains(clienttest.Dump(p), "403") {
		t.Errorf("direct canary: %s", clienttest.Dump(p))
	}
	if got := s.pods(); got["web:v2"] != 4 || len(got) != 1 {
		t.Errorf("pods after the direct canary's rollback: %v, want web:v2 ×4", got)
	}
}

// An agent started without --relay-allow refuses to relay a webhook to
// loopback (here, the inside service): the step fails with the agent's
// refusal, which names the flag, and the service is never called.
func TestRelayToLoopbackRefusedWithoutRelayAllow(t *testing.T) {
	s := newSortie(t)
	s.startAgentWith()
	in := newInsideNetwork(t, s)
	file := func(image string) api.StartRequest {
		return deployFile(s.ns, image, relayedSteps, fmt.Sprintf(relayedWebhook, in.srv.URL, "remoteNetworkAgent")+"    retryCount: 3\n", "")
	}
	s.succeed(file("web:v1"), "the first deployment")
	p := s.waitPipeline(s.start(file("web:v2")), "the relayed canary ends", ended)
	msg := clienttest.Dump(p)
	if p.Targets[0].Status != pipeline.StatusRolledBack || !strings.Contains(msg, "relay through agent prod: refused by the egress policy") ||
		!strings.Contains(msg, "loopback") || !strings.Contains(msg, "sortie agent --relay-allow") {
		t.Errorf("relayed canary to loopback: %s", msg)
	}
	if strings.Contains(msg, "attempts") {
		t.Errorf("a refusal was retried: %s", msg)
	}
	if calls := in.log(); len(calls) != 0 {
		t.Errorf("the inside service was called: %+v", calls)
	}
}

// TestWebhookRelayedByAnotherReplica: two `sortie server` replicas share
// one PostgreSQL database; the agent's stream is on B, the canary is
// started on (and leased by) A. Its webhook with networkMode
// remoteNetworkAgent goes from A through the database to B, which relays
// it through the agent: the service only the agent's process may call
// gets it, and its callback decides the step. The canary ends SUCCEEDED.
func TestWebhookRelayedByAnotherReplica(t *testing.T) {
	db := pgtest.Server(t)
	env := []string{"SORTIE_MASTER_KEY=" + secrets.NewKey(), "SORTIE_DATABASE_URL=" + db}
	// The callbacks come to the public URL, a balancer in front of A.
	front := proctest.NewBalancer(t)
	flags := []string{"--public-url", "http://" + front.Addr, "--log-level", "debug"}
	a := proctest.StartServer(t, env, append(flags, "--replica-id", "A")...)
	front.Point(a.Addr)
	bAddr, b := startReplica(t, "replica B", env, append(flags, "--replica-id", "B")...)
	st, err := postgres.Open(context.Background(), db, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g := &group{t: t, st: st}

	s := adminOf(t, a)
	s.startAgentOn("http://" + bAddr)
	pgtest.UntilNotified(t, db, postgres.ChannelStreams, "B records the agent's stream", func() bool {
		return slices.Equal(g.streamHolders("prod"), []string{"B"})
	})
	in := newInsideNetwork(t, s)
	steps := `    canary:
      steps:
        - setWeight: 50
        - pause: {untilApproved: true}
        - runWebhook: {name: inside}
`
	file := func(image string) api.StartRequest {
		return deployFile(s.ns, image, steps, fmt.Sprintf(relayedWebhook, in.srv.URL, "remoteNetworkAgent"), "")
	}
	s.succeed(file("web:v1"), "the first deployment")
	id := s.start(file("web:v2"))
	s.waitPipeline(id, "the pause at 50%", awaiting(50))
	if o, _ := g.owner(id); o != "A" {
		t.Fatalf("the canary started on A is leased by %q", o)
	}
	s.call("POST", "/api/v1/pipelines/"+id+"/approve", nil, http.StatusOK, nil)
	p := s.waitPipeline(id, "the relayed canary ends", ended)
	if p.Status != pipeline.StatusSucceeded {
		t.Fatalf("relayed canary: %s", clienttest.Dump(p))
	}
	if o, _ := g.owner(id); o != "A" && o != "" {
		t.Errorf("the canary ended leased by %q, want A's throughout", o)
	}
	in.wantRelayedOnce(s, p)
	if !regexp.MustCompile(`msg="relaying a call for another server".* agent=prod .*owner=A`).MatchString(b.Output()) {
		t.Errorf("B did not log relaying A's call")
	}
	s.wantPods("after the relayed canary", 0, 4)
}
