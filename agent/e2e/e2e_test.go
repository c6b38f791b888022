package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/internal/proctest"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/tlstest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// proc is a child process whose log the test reads (internal/proctest).
type proc = proctest.Proc

func sortieBinary(t *testing.T) string { t.Helper(); return proctest.Sortie(t) }

// start runs the sortie binary with args as a child that dies with the
// test process.
func start(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	return proctest.Start(t, name, env, args...)
}

var (
	listening = regexp.MustCompile(`msg="sortie server listening" addr=(\S+)`)
	connected = regexp.MustCompile(`msg="connected to the server"`)
)

// sortie is a server process, the API client of its admin, and the
// agent credential it made.
type sortie struct {
	t                 *testing.T
	url               string
	token             string
	agentID, agentKey string
	agent             *proc
	server            *proc
	data, addr        string
	ns                string
	// hc is the test's HTTP client; caFile, when set, is the CA of the
	// server's TLS certificate, given to the agent as --ca-file.
	hc         *http.Client
	caFile     string
	serverArgs []string
	// kubeconfig, when set, is the agent's instead of the cluster's.
	kubeconfig string
	// env is added to the environment of the server and the agent.
	env []string
}

func newSortie(t *testing.T) *sortie { t.Helper(); return newSortieWith(t, nil) }

// newSortieWith starts the server with TLS, its certificate issued by ca,
// when ca is not nil.
func newSortieWith(t *testing.T, ca *tlstest.CA) *sortie {
	t.Helper()
	return newSortieEnv(t, ca, nil)
}

// newSortieEnv is newSortieWith with env added to the environment of the
// server, and of the agent startAgent runs.
func newSortieEnv(t *testing.T, ca *tlstest.CA, env []string) *sortie {
	t.Helper()
	// The tests' webhook receivers and Prometheus listen on loopback.
	serverArgs := []string{"--egress-allow", "127.0.0.0/8"}
	if ca != nil {
		dir := t.TempDir()
		leaf := ca.Issue(t, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
		serverArgs = append(serverArgs, "--tls-cert-file", leaf.CertFile, "--tls-key-file", leaf.KeyFile)
	}
	srv := proctest.StartServer(t, env, serverArgs...)
	addr := srv.Addr
	s := &sortie{t: t, url: "http://" + addr, ns: kubetest.Namespace(t), server: srv.Proc, data: srv.Data, addr: addr, hc: http.DefaultClient, serverArgs: serverArgs, env: env}
	if ca != nil {
		s.url, s.caFile = "https://"+addr, ca.File
		s.hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: true}}
	}
	cf := srv.Admin
	s.token = s.tokenFor(cf.ClientID, cf.ClientSecret)
	var nc api.NewCredential
	s.call("POST", "/api/v1/credentials", api.CreateCredentialRequest{Name: "agent prod", Roles: []string{pipeline.RoleAgent}}, http.StatusCreated, &nc)
	s.agentID, s.agentKey = nc.ClientID, nc.ClientSecret
	return s
}

func (s *sortie) tokenFor(id, secret string) string {
	s.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	resp, err := s.hc.PostForm(s.url+auth.TokenPath, form)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		s.t.Fatalf("token: %d %v", resp.StatusCode, err)
	}
	return tok.AccessToken
}

// call makes an API request and decodes the answer into out; it fails the
// test unless the status is want. It returns the body.
func (s *sortie) call(method, path string, body any, want int, out any) []byte {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.url+path, r)
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.hc.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		s.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return b
}

// restartServer stops the server (SIGTERM) and starts it again on the
// same address and data.
func (s *sortie) restartServer() {
	s.t.Helper()
	s.server.Stop(syscall.SIGTERM)
	s.server = start(s.t, "restarted server", s.env, append([]string{"server", "--addr", s.addr, "--data-dir", s.data}, s.serverArgs...)...)
	s.server.WaitLine(listening)
}

// startAgent runs `sortie agent` for account prod against the test cluster
// and waits until the server accepted it. Its relayed calls may reach
// loopback, where the tests' stand-ins for in-cluster services listen.
func (s *sortie) startAgent() {
	s.t.Helper()
	s.startAgentWith("--relay-allow", "127.0.0.0/8")
}

// startAgentWith is startAgent with these flags instead of --relay-allow.
func (s *sortie) startAgentWith(flags ...string) {
	s.t.Helper()
	kubeconfig := s.kubeconfig
	if kubeconfig == "" {
		kubeconfig = kubetest.Cluster(s.t).Kubeconfig
	}
	args := append([]string{"agent", "--server", s.url, "--agent-id", "prod", "--kubeconfig", kubeconfig}, flags...)
	if s.caFile != "" {
		args = append(args, "--ca-file", s.caFile)
	}
	s.agent = start(s.t, "agent", append([]string{"SORTIE_CLIENT_ID=" + s.agentID, "SORTIE_CLIENT_SECRET=" + s.agentKey}, s.env...), args...)
	s.agent.WaitLine(connected)
}

func (s *sortie) startPipeline(image string) string {
	s.t.Helper()
	var res api.StartResult
	s.call("POST", "/api/v1/pipelines", deployment(s.ns, "prod", image), http.StatusAccepted, &res)
	return res.PipelineID
}

// waitPipeline follows the pipeline's event stream until cond holds.
func (s *sortie) waitPipeline(id, what string, cond func(*api.PipelineView) bool) *api.PipelineView {
	s.t.Helper()
	c, err := client.New(client.Options{Server: s.url, Token: client.Token{AccessToken: s.token}, HTTPClient: s.hc})
	if err != nil {
		s.t.Fatal(err)
	}
	return clienttest.WaitPipeline(s.t, c, id, what, cond)
}

func awaiting(weight int) func(*api.PipelineView) bool {
	return func(p *api.PipelineView) bool {
		return p.Status == pipeline.StatusAwaitingApproval && len(p.Targets) == 1 && p.Targets[0].AchievedWeight == weight
	}
}

func ended(p *api.PipelineView) bool { return p.Status.Terminal() }

// running holds while a setWeight step to weight runs.
func running(weight int) func(*api.PipelineView) bool {
	return func(p *api.PipelineView) bool {
		return p.Status == pipeline.StatusRunning && len(p.Targets) == 1 && p.Targets[0].RequestedWeight == weight
	}
}

// pods counts the sample application's pods (not being deleted) by image.
func (s *sortie) pods() map[string]int {
	s.t.Helper()
	list, err := kubetest.Client(s.t).CoreV1().Pods(s.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string]int{}
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out[p.Spec.Containers[0].Image]++
		}
	}
	return out
}

func (s *sortie) wantPods(when string, v1, v2 int) {
	s.t.Helper()
	want := map[string]int{}
	if v1 > 0 {
		want["web:v1"] = v1
	}
	if v2 > 0 {
		want["web:v2"] = v2
	}
	if got := s.pods(); fmt.Sprint(got) != fmt.Sprint(want) {
		s.t.Errorf("pods %s: %v, want %v", when, got, want)
	}
}

// workloads lists the namespace's Deployments and ReplicaSets with pods.
func (s *sortie) workloads() []string {
	s.t.Helper()
	c := kubetest.Client(s.t)
	ds, err := c.AppsV1().Deployments(s.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	var out []string
	for _, d := range ds.Items {
		out = append(out, "deployment/"+d.Name+"="+d.Spec.Template.Spec.Containers[0].Image)
	}
	return out
}

const canary = `version: v1
kind: kubernetes
application: web
targets:
  prod:
    account: %s
    namespace: %s
    strategy: canary
strategies:
  canary:
    canary:
      steps:
        - setWeight: 25
        - pause: {untilApproved: true}
        - setWeight: 50
        - pause: {untilApproved: true}
        - setWeight: 100
manifests:
  - inline: |
%s`

func deployment(ns, account, image string) api.StartRequest {
	return api.StartRequest{FileName: "deploy.yml", File: fmt.Sprintf(canary, account, ns, kubetest.Inline(kubetest.SampleApp("web", 4, image), kubetest.SampleService("web", "web")))}
}

// A canary 25/50/100 through `sortie server` and `sortie agent` as
// separate processes, with the exact pod counts at each pause.
func TestCanaryThroughAgent(t *testing.T) {
	s := newSortie(t)

	// No agent yet: a start names the missing account.
	body := s.call("POST", "/api/v1/pipelines", deployment(s.ns, "prod", "web:v1"), http.StatusUnprocessableEntity, nil)
	if !strings.Contains(string(body), "prod") {
		t.Errorf("422 does not name the account: %s", body)
	}

	s.startAgent()
	var agents api.AgentList
	s.call("GET", "/api/v1/agents", nil, http.StatusOK, &agents)
	if len(agents.Agents) != 1 || agents.Agents[0].ID != "prod" || agents.Agents[0].ClusterVersion == "" || agents.Agents[0].RemoteAddress == "" {
		t.Errorf("agents: %+v", agents)
	}
	body = s.call("POST", "/api/v1/pipelines", deployment(s.ns, "nowhere", "web:v1"), http.StatusUnprocessableEntity, nil)
	if !strings.Contains(string(body), "nowhere") {
		t.Errorf("422 does not name the unknown account: %s", body)
	}

	first := s.startPipeline("web:v1")
	if p := s.waitPipeline(first, "the first deployment ends", ended); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first deployment: %s", clienttest.Dump(p))
	}
	s.wantPods("after the first deployment", 4, 0)

	id := s.startPipeline("web:v2")
	s.waitPipeline(id, "the pause at 25%", awaiting(25))
	s.wantPods("at 25%", 3, 1)
	s.call("POST", "/api/v1/pipelines/"+id+"/approve", nil, http.StatusOK, nil)
	s.waitPipeline(id, "the pause at 50%", awaiting(50))
	s.wantPods("at 50%", 2, 2)
	s.call("POST", "/api/v1/pipelines/"+id+"/approve", nil, http.StatusOK, nil)
	if p := s.waitPipeline(id, "the canary ends", ended); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("canary: %s", clienttest.Dump(p))
	}
	s.wantPods("after the canary", 0, 4)
	if got := s.workloads(); fmt.Sprint(got) != "[deployment/web=web:v2]" {
		t.Errorf("deployments after the canary: %v, want only the user's, on v2", got)
	}
}

// The agent is killed (SIGKILL) while the canary waits at a pause and
// while a step runs; a new agent process picks the deployment up and it
// finishes correctly.
// TestCanaryOverTLS: the server serves TLS with a certificate of a private
// CA; the agent, given that CA with --ca-file, connects over HTTP/2 on the
// API's port and deploys a canary.
func TestCanaryOverTLS(t *testing.T) {
	s := newSortieWith(t, tlstest.NewCA(t, t.TempDir()))
	s.startAgent()
	s.canary()
}

// canary deploys web:v1, then web:v2 through the 25/50/100 canary with its
// two approvals, checking the pods at 25% and at the end.
func (s *sortie) canary() {
	s.t.Helper()
	id := s.startPipeline("web:v1")
	if p := s.waitPipeline(id, "the first deployment ends", ended); p.Status != pipeline.StatusSucceeded {
		s.t.Fatalf("first deployment: %s", clienttest.Dump(p))
	}
	id = s.startPipeline("web:v2")
	s.waitPipeline(id, "the pause at 25%", awaiting(25))
	s.wantPods("at 25%", 3, 1)
	s.call("POST", "/api/v1/pipelines/"+id+"/approve", nil, http.StatusOK, nil)
	s.waitPipeline(id, "the pause at 50%", awaiting(50))
	s.call("POST", "/api/v1/pipelines/"+id+"/approve", nil, http.StatusOK, nil)
	if p := s.waitPipeline(id, "the canary ends", ended); p.Status != pipeline.StatusSucceeded {
		s.t.Fatalf("canary: %s", clienttest.Dump(p))
	}
	s.wantPods("after the canary", 0, 4)
}

func TestAgentKilledMidCanary(t *testing.T) {
	s := newSortie(t)
	s.startAgent()
	first := s.startPipeline("web:v1")
	if p := s.waitPipeline(first, "the first deployment ends", ended); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first deployment: %s", clienttest.Dump(p))
	}

	id := s.startPipeline("web:v2")
	s.waitPipeline(id, "the pause at 25%", awaiting(25))
	s.wantPods("at 25%", 3, 1)

	// Killed at the pause; the approval's setWeight 50 then waits for an
	// agent, and nothing moves in the cluster meanwhile.
	s.agent.Stop(syscall.SIGKILL)
	s.call("POST", "/api/v1/pipelines/"+id+"/approve", nil, http.StatusOK, nil)
	s.waitPipeline(id, "setWeight 50 runs", running(50))
	s.wantPods("with no agent", 3, 1)
	s.startAgent()
	s.waitPipeline(id, "the pause at 50%", awaiting(50))
	s.wantPods("at 50%", 2, 2)

	// Killed while setWeight 100 runs (or just after it did: either way
	// the new agent's repeat must be harmless).
	s.agent.Drain()
	s.call("POST", "/api/v1/pipelines/"+id+"/approve", nil, http.StatusOK, nil)
	s.agent.WaitLine(regexp.MustCompile(`msg="running command"`))
	s.agent.Stop(syscall.SIGKILL)
	s.startAgent()
	if p := s.waitPipeline(id, "the canary ends", ended); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("canary after agent restarts: %s", clienttest.Dump(p))
	}
	s.wantPods("after the canary", 0, 4)
	if got := s.workloads(); fmt.Sprint(got) != "[deployment/web=web:v2]" {
		t.Errorf("deployments after the canary: %v, want only the user's, on v2", got)
	}
}

// The server restarts while the canary waits at a pause: the agent
// reconnects by itself and the deployment finishes.
func TestServerRestartMidCanary(t *testing.T) {
	s := newSortie(t)
	s.startAgent()
	first := s.startPipeline("web:v1")
	if p := s.waitPipeline(first, "the first deployment ends", ended); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first deployment: %s", clienttest.Dump(p))
	}
	id := s.startPipeline("web:v2")
	s.waitPipeline(id, "the pause at 25%", awaiting(25))

	s.agent.Drain()
	s.restartServer()
	s.agent.WaitLine(connected)
	var agents api.AgentList
	s.call("GET", "/api/v1/agents", nil, http.StatusOK, &agents)
	if len(agents.Agents) != 1 || agents.Agents[0].ID != "prod" {
		t.Errorf("agents after the restart: %+v", agents)
	}
	s.call("POST", "/api/v1/pipelines/"+id+"/approve", nil, http.StatusOK, nil)
	s.waitPipeline(id, "the pause at 50%", awaiting(50))
	s.wantPods("at 50%", 2, 2)
	s.call("POST", "/api/v1/pipelines/"+id+"/approve", nil, http.StatusOK, nil)
	if p := s.waitPipeline(id, "the canary ends", ended); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("canary after the server restarts: %s", clienttest.Dump(p))
	}
	s.wantPods("after the canary", 0, 4)
}
