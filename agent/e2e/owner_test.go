package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/internal/proctest"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/secrets"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/postgres"
	"github.com/sortie-cd/sortie/store/postgres/pgtest"
	"github.com/sortie-cd/sortie/store/storetest"
)

var (
	// sentCommand is replicas.Node.Execute's line (debug): this replica
	// sends the command to its agent, as the pipeline's owner.
	sentCommand = regexp.MustCompile(`msg="sending a command to its agent".* pipeline=(\S+).* command=(\S+)`)
	// deliveredAgain is the agent's line when a command id it knows comes
	// again (attached to the running execution, or its kept result sent).
	deliveredAgain = regexp.MustCompile(`msg="command delivered again".* command=(\S+)`)
)

// member is one `sortie server` replica of a test's group.
type member struct {
	id, addr string
	proc     *proctest.Proc
}

// group is `sortie server` replicas on one PostgreSQL database, the
// test's view of its leases (read from the database), and the replicas
// killed so far.
type group struct {
	t       *testing.T
	st      *postgres.Store
	members map[string]*member
	dead    map[string]bool
}

// owner is the replica holding pipeline id's lease, and its epoch.
func (g *group) owner(id string) (string, int64) {
	g.t.Helper()
	p, err := g.st.GetPipeline(context.Background(), store.DefaultTenant, id)
	if err != nil {
		g.t.Fatal(err)
	}
	return p.Lease.Owner, p.Lease.Epoch
}

// streamHolders are the replicas that recorded the agent's stream.
func (g *group) streamHolders(agentID string) []string {
	g.t.Helper()
	streams, err := g.st.AgentStreams(context.Background(), store.DefaultTenant, agentID, time.Minute)
	if err != nil {
		g.t.Fatal(err)
	}
	var out []string
	for _, s := range streams {
		out = append(out, s.Replica)
	}
	return out
}

// kill kills replica name with SIGKILL (a machine lost) and returns the
// commands of pipeline id it had sent and not had answered then; then it
// waits until a live replica holds the lease under a higher epoch, which
// it returns with the time the takeover took (nobody drives the pipeline
// meanwhile: the lease must expire first).
func (g *group) kill(name, id string) (unanswered []string, next string, took time.Duration) {
	g.t.Helper()
	_, epoch := g.owner(id)
	killed := time.Now()
	g.members[name].proc.Stop(syscall.SIGKILL)
	g.dead[name] = true
	unanswered = g.unanswered(name, id)
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if o, e := g.owner(id); e > epoch && o != "" && !g.dead[o] {
			return unanswered, o, time.Since(killed)
		}
		if time.Now().After(deadline) {
			o, e := g.owner(id)
			g.t.Fatalf("two minutes after %s was killed, the lease of %s is %s's (epoch %d, was %d)", name, id, o, e, epoch)
		}
		<-tick.C
	}
}

// sends returns, per command id of pipeline id, the replicas that sent it
// to the agent as its owner, in their order in the group.
func (g *group) sends(id string) map[string][]string {
	out := map[string][]string{}
	names := make([]string, 0, len(g.members))
	for name := range g.members {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, m := range sentCommand.FindAllStringSubmatch(g.members[name].proc.Output(), -1) {
			if m[1] == id {
				out[m[2]] = append(out[m[2]], name)
			}
		}
	}
	return out
}

// results are the command ids with a result in pipeline id's log.
func (g *group) results(id string) map[string]int {
	g.t.Helper()
	evs, err := g.st.Events(context.Background(), store.DefaultTenant, id, 0)
	if err != nil {
		g.t.Fatal(err)
	}
	out := map[string]int{}
	for _, ev := range evs {
		if ev.Type != "command" {
			continue
		}
		var r pipeline.CommandResult
		if err := json.Unmarshal(ev.Data, &r); err != nil {
			g.t.Fatal(err)
		}
		out[r.CommandID]++
	}
	return out
}

// unanswered are the commands replica name sent for pipeline id whose
// result is not in the log: what its successor must send again.
func (g *group) unanswered(name, id string) []string {
	res := g.results(id)
	var out []string
	for cmd, by := range g.sends(id) {
		if slices.Contains(by, name) && res[cmd] == 0 {
			out = append(out, cmd)
		}
	}
	slices.Sort(out)
	return out
}

// TestReplicasSurviveTheOwnersDeath: four `sortie server` processes (A,
// B, C, D) share one PostgreSQL database; a real `sortie agent` holds its
// stream on C (through a balancer). A canary started on A is leased by A.
// A is killed (SIGKILL) at the pause at 25%; after the takeover the
// approval is given on B, which takes the lease, and B is killed as soon
// as the agent runs the next command; at the pause at 50% the approval is
// given on C, which takes the lease and so holds both it and the agent's
// stream, and C is killed as the agent runs the next command (the agent
// reconnects to D). The canary ends SUCCEEDED on D with the exact pods,
// all Ready; no command ran twice on the agent nor has two results; and
// each takeover sent again exactly the commands its predecessor had not
// had answered, and no other.
func TestReplicasSurviveTheOwnersDeath(t *testing.T) {
	db := pgtest.Server(t)
	env := []string{"SORTIE_MASTER_KEY=" + secrets.NewKey(), "SORTIE_DATABASE_URL=" + db}
	const ttl = 3 * time.Second
	flags := []string{"--public-url", "http://sortie.invalid", "--lease-ttl", ttl.String(), "--log-level", "debug"}
	st, err := postgres.Open(context.Background(), db, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g := &group{t: t, st: st, members: map[string]*member{}, dead: map[string]bool{}}
	a := proctest.StartServer(t, env, append(flags, "--replica-id", "A")...)
	g.members["A"] = &member{id: "A", addr: a.Addr, proc: a.Proc}
	for _, name := range []string{"B", "C", "D"} {
		addr, p := startReplica(t, "replica "+name, env, append(flags, "--replica-id", name)...)
		g.members[name] = &member{id: name, addr: addr, proc: p}
	}
	lb := proctest.NewBalancer(t)
	lb.Point(g.members["C"].addr)

	s := adminOf(t, a)
	s.startAgentOn("http://" + lb.Addr)
	pgtest.UntilNotified(t, db, postgres.ChannelStreams, "C records the agent's stream", func() bool {
		return slices.Equal(g.streamHolders("prod"), []string{"C"})
	})
	on := func(name string) *sortie { o := *s; o.url = "http://" + g.members[name].addr; return &o }

	first := s.startPipeline("web:v1")
	if p := s.waitPipeline(first, "the first deployment ends", ended); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first deployment: %s", clienttest.Dump(p))
	}
	id := s.startPipeline("web:v2")
	if o, _ := g.owner(id); o != "A" {
		t.Fatalf("the canary started on A is leased by %q", o)
	}
	var takeovers []string
	var resend [][]string // per kill, the commands the killed owner left unanswered
	takeover := func(name, when string) string {
		t.Helper()
		unanswered, next, took := g.kill(name, id)
		resend = append(resend, unanswered)
		takeovers = append(takeovers, when+": "+took.Round(time.Millisecond).String())
		t.Logf("%s: owner %s killed, %s took the lease %v later (lease TTL %v); unanswered then: %v", when, name, next, took.Round(time.Millisecond), ttl, resend[len(resend)-1])
		return next
	}

	// 1. The owner, not holding the agent's stream, dies at a pause.
	on("B").waitPipeline(id, "the pause at 25%, on B", awaiting(25))
	s.wantPods("at 25%", 3, 1)
	takeover("A", "A killed at the pause at 25%")

	// 2. The owner, not holding the stream, dies mid-command.
	s.agent.Drain()
	on("B").call("POST", "/api/v1/pipelines/"+id+"/approve", nil, http.StatusOK, nil)
	if o, _ := g.owner(id); o != "B" {
		t.Fatalf("the approval given on B left the lease with %q", o)
	}
	s.agent.WaitLine(runningCommand)
	takeover("B", "B killed as the agent runs the step to 50%")
	on("D").waitPipeline(id, "the pause at 50%, on D", awaiting(50))
	s.wantPods("at 50%", 2, 2)

	// 3. The replica holding both the lease and the agent's stream dies
	// mid-command: the agent reconnects to D.
	s.agent.Drain()
	on("C").call("POST", "/api/v1/pipelines/"+id+"/approve", nil, http.StatusOK, nil)
	if o, _ := g.owner(id); o != "C" {
		t.Fatalf("the approval given on C left the lease with %q", o)
	}
	s.agent.WaitLine(runningCommand)
	lb.Point(g.members["D"].addr)
	if next := takeover("C", "C (lease and stream) killed as the agent runs the step to 100%"); next != "D" {
		t.Fatalf("after C died the lease is %s's, want D's (the last one alive)", next)
	}
	s.agent.WaitLine(connected)
	if p := on("D").waitPipeline(id, "the canary ends, on D", ended); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("canary: %s", clienttest.Dump(p))
	}
	t.Logf("takeover times: %s", strings.Join(takeovers, "; "))

	// The cluster is exact: the new version only, every pod Ready.
	s.wantPods("after the canary", 0, 4)
	if got := s.workloads(); strings.Join(got, ",") != "deployment/web=web:v2" {
		t.Errorf("deployments after the canary: %v, want only the user's, on v2", got)
	}
	pods, err := kubetest.Client(t).CoreV1().Pods(s.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && !podReady(&p) {
			t.Errorf("pod %s (%s) is not Ready after the canary", p.Name, p.Spec.Containers[0].Image)
		}
	}

	// Nothing ran twice: one result per command, no step started twice,
	// and the agent started each command once.
	evs, err := st.Events(context.Background(), store.DefaultTenant, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	storetest.NoStepTwice(t, evs)
	results := g.results(id)
	runs := map[string]int{}
	for _, m := range runningCommand.FindAllStringSubmatch(s.agent.Output(), -1) {
		runs[m[1]]++
	}
	for cmd := range results {
		if runs[cmd] != 1 {
			t.Errorf("command %s has a result; the agent started it %d times, want once", cmd, runs[cmd])
		}
	}

	// Each takeover sent again exactly what its predecessor left
	// unanswered: a command is sent by one owner more than the number of
	// kills that found it unanswered, and by no other.
	unansweredAt := map[string]int{}
	for _, cmds := range resend {
		for _, c := range cmds {
			unansweredAt[c]++
		}
	}
	sends := g.sends(id)
	if len(sends) == 0 {
		t.Fatal("no replica logged sending a command (is the servers' log level debug?)")
	}
	for cmd, by := range sends {
		if len(by) != 1+unansweredAt[cmd] {
			t.Errorf("command %s was sent by %v; it was unanswered at %d kills", cmd, by, unansweredAt[cmd])
		}
		if results[cmd] != 1 {
			t.Errorf("command %s was sent but has %d results", cmd, results[cmd])
		}
	}
	// The agent was given a command again only when its stream moved (C
	// died) while it was unanswered, and then it was (D delivered it).
	again := map[string]bool{}
	for _, m := range deliveredAgain.FindAllStringSubmatch(s.agent.Output(), -1) {
		again[m[1]] = true
		if !slices.Contains(resend[2], m[1]) {
			t.Errorf("the agent was given command %s again, not one unanswered when its stream's replica died (%v)", m[1], resend[2])
		}
	}
	for _, c := range resend[2] {
		if !again[c] {
			t.Errorf("command %s, unanswered when C died, was not given to the agent again", c)
		}
	}
	t.Logf("commands: %d, sent again after a takeover: %v, %v, %v", len(sends), resend[0], resend[1], resend[2])
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
