package e2e

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/internal/proctest"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/secrets"
	"github.com/sortie-cd/sortie/store/postgres"
	"github.com/sortie-cd/sortie/store/postgres/pgtest"
)

var runningCommand = regexp.MustCompile(`msg="running command".* command=(\S+)`)

// startReplica runs another `sortie server` replica (a data directory of
// its own, flags after) and returns its address; it is killed when the
// test ends.
func startReplica(t *testing.T, name string, env []string, flags ...string) (string, *proctest.Proc) {
	t.Helper()
	p := proctest.Start(t, name, env, append([]string{"server", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, flags...)...)
	t.Cleanup(func() { p.Stop(syscall.SIGKILL) })
	return p.WaitLine(listening)[1], p
}

// adminOf is the test's client of server a, as its bootstrap admin, with
// the agent credential it made.
func adminOf(t *testing.T, a *proctest.Server) *sortie {
	t.Helper()
	s := &sortie{t: t, url: "http://" + a.Addr, ns: kubetest.Namespace(t), server: a.Proc, data: a.Data, addr: a.Addr, hc: http.DefaultClient}
	s.token = s.tokenFor(a.Admin.ClientID, a.Admin.ClientSecret)
	var nc api.NewCredential
	s.call("POST", "/api/v1/credentials", api.CreateCredentialRequest{Name: "agent prod", Roles: []string{pipeline.RoleAgent}}, http.StatusCreated, &nc)
	s.agentID, s.agentKey = nc.ClientID, nc.ClientSecret
	return s
}

// startAgentOn is startAgent with the agent's --server url (a balancer, or
// another replica); the test's calls stay on s.url.
func (s *sortie) startAgentOn(url string) {
	s.t.Helper()
	own := s.url
	s.url = url
	defer func() { s.url = own }()
	s.startAgent()
}

// TestReplicasSurviveTheAgentsServer: `sortie server` processes share one
// PostgreSQL database and master key; replica A drives a canary whose
// agent (`sortie agent`, on the local cluster) connects through a balancer
// to replica B. B is killed (SIGKILL) at a pause, then the next holder C is
// killed right after an approval, mid-step: each time the agent reconnects
// to another replica, which delivers the unanswered commands again. The
// canary ends SUCCEEDED with the exact pods, every command ran once on the
// agent, and each pause was seen live on the replica the client followed.
func TestReplicasSurviveTheAgentsServer(t *testing.T) {
	db := pgtest.Server(t)
	env := []string{"SORTIE_MASTER_KEY=" + secrets.NewKey(), "SORTIE_DATABASE_URL=" + db}
	flags := []string{"--public-url", "http://sortie.invalid"}
	a := proctest.StartServer(t, env, flags...)
	replicas := map[string]*proctest.Proc{}
	replica := func(name string) string {
		addr, p := startReplica(t, name, env, flags...)
		replicas[addr] = p
		return addr
	}
	b, c, d := replica("replica B"), replica("replica C"), replica("replica D")
	lb := proctest.NewBalancer(t)
	lb.Point(b)

	s := adminOf(t, a)
	s.startAgentOn("http://" + lb.Addr)
	pgtest.UntilNotified(t, db, postgres.ChannelStreams, "A sees the agent", func() bool {
		var agents api.AgentList
		s.call("GET", "/api/v1/agents", nil, http.StatusOK, &agents)
		return len(agents.Agents) == 1 && agents.Agents[0].ID == "prod"
	})

	first := s.startPipeline("web:v1")
	if p := s.waitPipeline(first, "the first deployment ends", ended); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first deployment: %s", clienttest.Dump(p))
	}
	id := s.startPipeline("web:v2")
	on := func(addr string) *sortie { o := *s; o.url = "http://" + addr; return &o }
	on(b).waitPipeline(id, "the pause at 25%, on B", awaiting(25))
	s.wantPods("at 25%", 3, 1)

	replicas[b].Stop(syscall.SIGKILL)
	lb.Point(c)
	s.agent.WaitLine(connected)
	s.call("POST", "/api/v1/pipelines/"+id+"/approve", nil, http.StatusOK, nil)
	on(c).waitPipeline(id, "the pause at 50%, on C", awaiting(50))
	s.wantPods("at 50%", 2, 2)

	s.call("POST", "/api/v1/pipelines/"+id+"/approve", nil, http.StatusOK, nil)
	replicas[c].Stop(syscall.SIGKILL)
	lb.Point(d)
	s.agent.WaitLine(connected)
	if p := on(d).waitPipeline(id, "the canary ends, on D", ended); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("canary: %s", clienttest.Dump(p))
	}
	s.wantPods("after the canary", 0, 4)
	if got := s.workloads(); strings.Join(got, ",") != "deployment/web=web:v2" {
		t.Errorf("deployments after the canary: %v, want only the user's, on v2", got)
	}

	// No step ran twice: one result per command in the log, and the
	// agent started each command once.
	var evs api.EventList
	s.call("GET", "/api/v1/pipelines/"+id+"/events", nil, http.StatusOK, &evs)
	results := map[string]int{}
	for _, ev := range evs.Events {
		if ev.Type != "command" {
			continue
		}
		var r pipeline.CommandResult
		if err := json.Unmarshal(ev.Data, &r); err != nil {
			t.Fatal(err)
		}
		results[r.CommandID]++
	}
	if len(results) == 0 {
		t.Fatal("no command results in the pipeline's log")
	}
	runs := map[string]int{}
	for _, m := range runningCommand.FindAllStringSubmatch(s.agent.Output(), -1) {
		runs[m[1]]++
	}
	for cmd, n := range results {
		if n != 1 {
			t.Errorf("command %s has %d results in the log", cmd, n)
		}
		if runs[cmd] == 0 {
			t.Errorf("command %s has a result but the agent never started it", cmd)
		}
	}
	for cmd, n := range runs {
		if n != 1 {
			t.Errorf("the agent ran command %s %d times", cmd, n)
		}
	}
}
