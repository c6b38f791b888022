package armory

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/sortie-cd/sortie/analysis/promtest"
	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/internal/proctest"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/progress"
)

var (
	connected = regexp.MustCompile(`msg="connected to the server"`)
	accountRe = regexp.MustCompile(`(?m)^\s+account:\s*(\S+)`)
)

// world is one `sortie server`, an agent process per account of the
// corpus (each serving the shared local cluster), a real Prometheus
// scraping podSeries, and the stand-ins of the outside.
type world struct {
	root   string
	bin    string
	url    string
	admin  *client.Client
	cliEnv []string
	out    *outside
	slack  *slack
	prom   *promtest.Prometheus
	hc     *http.Client
	net    *podNetwork

	mu       sync.Mutex
	failures []string // callbacks that did not get through
}

func newWorld(t *testing.T, root string) *world {
	t.Helper()
	w := &world{root: root, bin: proctest.Sortie(t), hc: &http.Client{Timeout: time.Minute}}
	kube := kubetest.Client(t)

	// Prometheus scraping the cluster's pods as kube-state-metrics and the
	// kubelet would show them.
	w.prom = promtest.StartWith(t, promtest.Options{HonorLabels: true})
	w.prom.Registry.MustRegister(newPodSeries(t, kube))

	w.slack = newSlack(t)
	secrets := secretValues(w.slack.srv.URL)
	w.out = newOutside(t, filepath.Join(root, "cdaas-examples"), secrets)

	// The stand-ins (the outside's proxy, Slack, Prometheus) listen on
	// loopback, which the egress policy refuses unless allowed.
	srv := proctest.StartServer(t, w.out.env(), "--egress-allow", "127.0.0.0/8")
	w.url = "http://" + srv.Addr
	cf := srv.Admin
	w.admin = w.client(t, cf.ClientID, cf.ClientSecret)
	w.cliEnv = append(w.out.env(), "SORTIE_SERVER="+w.url, "SORTIE_CLIENT_ID="+cf.ClientID, "SORTIE_CLIENT_SECRET="+cf.ClientSecret,
		"SORTIE_CONFIG="+filepath.Join(t.TempDir(), "config.yaml"))

	// The tenant's settings, as its admin makes them: the secrets the
	// webhooks name, and the metric provider the files name
	// (Stephen-Prometheus) pointed at the local Prometheus.
	for name, value := range secrets {
		w.cli(t, "", value+"\n", "secrets", "set", name)
	}
	w.cli(t, "", "", "providers", "add", "Stephen-Prometheus", "--type", "prometheus", "--url", w.prom.URL)

	// The external systems call back with a credential of their own.
	ctx := context.Background()
	hooks, err := w.admin.CreateCredential(ctx, api.CreateCredentialRequest{Name: "github actions and jenkins", Roles: []string{pipeline.RoleDeployer}})
	if err != nil {
		t.Fatal(err)
	}
	hooker := w.client(t, hooks.ClientID, hooks.ClientSecret)
	w.out.callback = func(uri, message string) {
		tok, err := hooker.Token(ctx)
		if err == nil {
			err = post(w.hc, uri, tok.AccessToken, true, message)
		}
		if err != nil {
			w.mu.Lock()
			w.failures = append(w.failures, err.Error())
			w.mu.Unlock()
		}
	}

	// One agent per account the corpus names, all on the local cluster,
	// with the outside as their network.
	agentCred, err := w.admin.CreateCredential(ctx, api.CreateCredentialRequest{Name: "agents", Roles: []string{pipeline.RoleAgent}})
	if err != nil {
		t.Fatal(err)
	}
	env := append(w.out.env(), "SORTIE_CLIENT_ID="+agentCred.ClientID, "SORTIE_CLIENT_SECRET="+agentCred.ClientSecret)
	kubeconfig := kubetest.Cluster(t).Kubeconfig
	var agents []*proctest.Proc
	for _, account := range accounts(t, root) {
		agents = append(agents, proctest.Start(t, "agent "+account, env, "agent", "--server", w.url, "--agent-id", account, "--kubeconfig", kubeconfig, "--relay-allow", "127.0.0.0/8"))
	}
	for _, a := range agents {
		a.WaitLine(connected)
	}
	// No secret value in any process's log (a webhook's token, the
	// Jenkins credential, the Slack URL's secret path).
	t.Cleanup(func() {
		for _, p := range append([]*proctest.Proc{srv.Proc}, agents...) {
			out := p.Output()
			for _, name := range []string{"github_token", "github_personal_access_token", "jenkins_token", "slackwebhookURL"} {
				if strings.Contains(out, secrets[name]) || strings.Contains(out, "corpusTestSlackSecret") {
					t.Errorf("secret %s is in a process's log:\n%s", name, out)
				}
			}
		}
	})
	installCRDs(t)
	w.net = newPodNetwork(t, kube)
	return w
}

func (w *world) client(t *testing.T, id, secret string) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{Server: w.url, ClientID: id, ClientSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// accounts are the accounts the planned runs' files name.
func accounts(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	for _, seq := range sequences {
		for _, r := range seq {
			for _, f := range r.files {
				b, err := os.ReadFile(filepath.Join(root, r.repo, f))
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range accountRe.FindAllStringSubmatch(string(b), -1) {
					if !slices.Contains(out, m[1]) {
						out = append(out, m[1])
					}
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// run deploys a run's files and checks what they did.
func (w *world) run(t *testing.T, r run) {
	corpus := filepath.Join(w.root, r.repo)
	var namespaces []string
	for _, f := range r.files {
		b, _ := os.ReadFile(filepath.Join(corpus, f))
		for _, m := range regexp.MustCompile(`(?m)^\s+namespace:\s*(\S+)`).FindAllStringSubmatch(string(b), -1) {
			if !slices.Contains(namespaces, m[1]) {
				namespaces = append(namespaces, m[1])
			}
		}
	}
	t.Cleanup(func() { deleteNamespaces(t, namespaces) })
	if !r.ownNamespaces {
		for _, ns := range namespaces {
			_, err := kubetest.Client(t).CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, cs := range r.services {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: cs.name}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": cs.app},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(appPort)}},
		}}
		if _, err := kubetest.Client(t).CoreV1().Services(cs.namespace).Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	var before string
	if r.earlier != nil {
		before = copyRepo(t, w.root, r.repo, r.earlier)
	}
	dir := copyRepo(t, w.root, r.repo, nil)
	for _, f := range r.files {
		var ids []string // the file's pipelines
		if before != "" {
			sameFile(t, filepath.Join(corpus, f), filepath.Join(before, f))
			p := w.deploy(t, before, f, f+", the version before")
			if p.Status != pipeline.StatusSucceeded {
				t.Fatalf("the earlier version did not deploy: %s", clienttest.Dump(p))
			}
			ids = append(ids, p.ID)
		}
		sameFile(t, filepath.Join(corpus, f), filepath.Join(dir, f))
		p := w.deploy(t, dir, f, f)
		if m, ok := r.mistakes[f]; ok {
			wantMistake(t, f, p, m)
		} else if p.Status != pipeline.StatusSucceeded {
			t.Fatalf("%s ended %s:\n%s", f, p.Status, clienttest.Dump(p))
		}
		w.checkJudgments(t, p)
		w.checkCalls(t, append(ids, p.ID), r.calls[f])
		if n := w.fetchPreviews(t, p); n > 0 {
			t.Logf("%s: %d preview links answered through the server", f, n)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.failures) > 0 {
		t.Errorf("callbacks that failed: %q", w.failures)
	}
}

// deploy starts file (relative to dir) with the CLI and drives it to its
// end as its users would: each approval it waits for is given through the
// API, and an analysis waiting for a person only when it passed.
func (w *world) deploy(t *testing.T, dir, file, what string) *api.PipelineView {
	t.Helper()
	id := w.deployStart(t, dir, file)
	t.Logf("%s: pipeline %s", what, id)
	ctx := context.Background()
	acted := map[string]bool{}
	waiting := func(p *api.PipelineView) []string {
		var out []string
		for _, tg := range p.Targets {
			for _, st := range tg.Steps {
				if st.Status == pipeline.StatusAwaitingApproval && !acted[tg.Name+"\x00"+st.ID] {
					out = append(out, tg.Name+"\x00"+st.ID)
				}
			}
		}
		return out
	}
	for {
		p := w.wait(t, id, what+" ends or waits for a person", func(p *api.PipelineView) bool {
			return p.Status.Terminal() || len(waiting(p)) > 0
		})
		if p.Status.Terminal() {
			return p
		}
		for _, key := range waiting(p) {
			target, step, _ := strings.Cut(key, "\x00")
			st := stepOf(p, target, step)
			if st.Kind == pipeline.KindAnalysis && !strings.HasPrefix(st.Message, "analysis passed; approve to go on") {
				t.Fatalf("%s: target %s step %s waits for a person though it did not pass: %s\n%s", what, target, step, st.Message, clienttest.Dump(p))
			}
			if _, err := w.admin.Act(ctx, id, "approve", api.ActionRequest{Target: target, Step: step}); err != nil {
				t.Fatalf("%s: approve %s %s: %v", what, target, step, err)
			}
			acted[key] = true
		}
	}
}

func stepOf(p *api.PipelineView, target, step string) pipeline.StepState {
	for _, tg := range p.Targets {
		if tg.Name == target {
			for _, st := range tg.Steps {
				if st.ID == step {
					return st
				}
			}
		}
	}
	return pipeline.StepState{}
}

// wait follows the pipeline's events until cond holds or it ended. The
// limit is above clienttest.WaitLimit: deploy-automated-2-env.yml judges
// three runs 30 seconds apart after a first one.
func (w *world) wait(t *testing.T, id, what string, cond func(*api.PipelineView) bool) *api.PipelineView {
	t.Helper()
	return clienttest.WaitPipelineFor(t, w.admin, id, what, 5*time.Minute, func(p *api.PipelineView) bool {
		return cond(p) || p.Status.Terminal()
	})
}

var rsFilter = regexp.MustCompile(`annotation_deploy_armory_io_replica_set_name="([^"]*)"`)

// checkJudgments: every judgment of the pipeline passed, and each query
// that filters on a replica-set name named the one of its target's new
// version and measured real series of those pods (a value above 0: the
// "or on() vector(0)" fallback gives 0). After the end, the target's pods
// carry that name.
func (w *world) checkJudgments(t *testing.T, p *api.PipelineView) {
	t.Helper()
	evs, err := w.admin.Events(context.Background(), p.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{} // target: replica-set name queried
	n := 0
	for _, ev := range evs {
		if ev.Type != progress.EventJudgment {
			continue
		}
		var j progress.JudgmentEvent
		if err := json.Unmarshal(ev.Data, &j); err != nil {
			t.Fatal(err)
		}
		n++
		if j.Verdict != progress.Pass {
			t.Errorf("target %s %s: query %s judged %s: %s (sent %s)", j.Target, j.Step, j.Query, j.Verdict, j.Message, j.Sent)
		}
		m := rsFilter.FindStringSubmatch(j.Sent)
		if m == nil {
			continue
		}
		if prev, ok := names[j.Target]; ok && prev != m[1] {
			t.Errorf("target %s: queries named replica sets %s and %s", j.Target, prev, m[1])
		}
		names[j.Target] = m[1]
		if j.Value == nil || *j.Value <= 0 {
			t.Errorf("target %s %s: query %s (run %d, mean %v) measured nothing of %s: %v (sent %s)", j.Target, j.Step, j.Query, j.Run, j.Mean, m[1], j.Value, j.Sent)
		}
	}
	t.Logf("pipeline %s: %d judgments, replica sets queried %v", p.ID, n, names)
	kube := kubetest.Client(t)
	for _, tg := range p.Targets {
		rs, ok := names[tg.Name]
		if !ok {
			continue
		}
		deployment := rs[:strings.LastIndex(rs, "-")]
		pods, err := kube.CoreV1().Pods(tg.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + deployment})
		if err != nil {
			t.Fatal(err)
		}
		live := 0
		for _, pod := range pods.Items {
			if pod.DeletionTimestamp != nil {
				continue
			}
			live++
			if got := pod.Annotations["deploy.armory.io/replica-set-name"]; got != rs {
				t.Errorf("target %s: pod %s has replica-set name %q, the analysis queried %q", tg.Name, pod.Name, got, rs)
			}
		}
		if live == 0 {
			t.Errorf("target %s: no pods of %s in %s", tg.Name, deployment, tg.Namespace)
		}
	}
}

// wantMistake: the file's mistake rolled its target back, saying so, and
// every other target succeeded.
func wantMistake(t *testing.T, f string, p *api.PipelineView, m mistake) {
	t.Helper()
	for _, tg := range p.Targets {
		switch {
		case tg.Name == m.target:
			if tg.Status != pipeline.StatusRolledBack || !strings.Contains(tg.Message, m.message) {
				t.Errorf("%s: target %s %s %q, want rolled back saying %q", f, tg.Name, tg.Status, tg.Message, m.message)
			}
			t.Logf("%s: its mistake shows: target %s %s: %s", f, tg.Name, tg.Status, tg.Message)
		case tg.Status != pipeline.StatusSucceeded:
			t.Errorf("%s: target %s %s: %s", f, tg.Name, tg.Status, tg.Message)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// checkCalls: the file's pipelines (its earlier version's and its own:
// deploy-w-argo.yml's mistake cancels its command hook's call the second
// time) reached each stand-in of want, the ones inside the cluster's
// network through the agent its webhook names.
func (w *world) checkCalls(t *testing.T, ids []string, want []string) {
	t.Helper()
	calls := map[string][]call{}
	var slack []string
	for _, id := range ids {
		for host, cs := range w.out.callsOf(id) {
			calls[host] = append(calls[host], cs...)
		}
		slack = append(slack, w.slack.messagesOf(id)...)
	}
	for host, cs := range calls {
		for _, c := range cs {
			if c.RelayedBy != relayedBy[host] {
				t.Errorf("%s %s%s came relayed by %q, want %q", c.Method, host, c.Path, c.RelayedBy, relayedBy[host])
			}
		}
	}
	for _, h := range want {
		n := len(calls[h])
		if h == "slack" {
			n = len(slack)
		}
		if n == 0 {
			t.Errorf("no call to the %s stand-in", h)
		}
		t.Logf("%s answered %d calls of pipelines %v", h, n, ids)
	}
}

// deleteNamespaces deletes the run's namespaces and waits until they are
// gone, so the next run of the sequence starts from an empty cluster.
func deleteNamespaces(t *testing.T, names []string) {
	kube := kubetest.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, ns := range names {
		if err := kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", ns, err)
		}
	}
	for _, ns := range names {
		for {
			got, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				break
			}
			rv := ""
			if err == nil {
				rv = got.ResourceVersion
			}
			wt, werr := kube.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + ns, ResourceVersion: rv})
			if werr != nil {
				t.Errorf("namespace %s: %v", ns, errors.Join(err, werr))
				return
			}
			_, open := <-wt.ResultChan()
			wt.Stop()
			if !open && ctx.Err() != nil {
				t.Errorf("namespace %s not gone: %v", ns, ctx.Err())
				return
			}
		}
	}
}

// installCRDs installs testdata/crds.yaml, as the corpus's clusters had
// them.
func installCRDs(t *testing.T) {
	t.Helper()
	kubetest.ApplyFile(t, filepath.Join("testdata", "crds.yaml"))
}
