package runner_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/kubeexec"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/postgres/pgtest"
	"github.com/sortie-cd/sortie/store/sqlite"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Around(func() int { return kubetest.Run(m) })) }

var deployer = pipeline.Principal{Name: "alice", Roles: []string{pipeline.RoleDeployer}}

type env struct {
	t     *testing.T
	r     *runner.Runner
	store store.Store
	exec  runner.Executor
	ns    string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, openStore(t))
}

// openStore opens a SQLite store in the test's directory, closed at its end.
func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/sortie.db", sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newEnvWith(t *testing.T, st store.Store) *env {
	t.Helper()
	return newEnvOpts(t, runner.Options{Store: st})
}

// newEnvClock is newEnvWith on clock (nil: the real one).
func newEnvClock(t *testing.T, st store.Store, clock runner.Clock) *env {
	t.Helper()
	return newEnvOpts(t, runner.Options{Store: st, Clock: clock})
}

// newEnvOpts starts a runner with opts, on the cluster's executor unless
// opts names another.
func newEnvOpts(t *testing.T, opts runner.Options) *env {
	t.Helper()
	ctx := context.Background()
	if opts.Executor == nil {
		kx, err := kube.New(kubetest.Config(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		opts.Executor = kubeexec.New(store.DefaultTenant, map[string]*kube.Executor{"local": kx}, nil)
	}
	r := runner.New(opts)
	t.Cleanup(r.Close)
	if err := r.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, r: r, store: opts.Store, exec: opts.Executor, ns: kubetest.Namespace(t)}
}

// app renders a deployment file: targets (YAML under "targets:"), strategies
// and the image of the sample application, inline.
func (e *env) file(app, targets, strategies, image string, extra string) runner.StartRequest {
	return e.fileOf(app, "web", 4, targets, strategies, image, extra)
}

// fileOf is file with the sample application's objects named name, with
// replicas pods.
func (e *env) fileOf(app, name string, replicas int, targets, strategies, image string, extra string) runner.StartRequest {
	text := fmt.Sprintf(`version: v1
kind: kubernetes
application: %s
targets:
%s
strategies:
%s
manifests:
  - inline: |
%s%s`, app, targets, strategies, kubetest.Inline(kubetest.SampleApp(name, replicas, image), kubetest.SampleService(name, name), kubetest.SampleService(name+"-preview", name)), extra)
	return runner.StartRequest{FileName: "deploy.yml", File: text}
}

func (e *env) start(req runner.StartRequest) string {
	e.t.Helper()
	res, err := e.r.Start(context.Background(), deployer, store.DefaultTenant, req)
	if err != nil {
		e.t.Fatalf("start: %v", err)
	}
	return res.PipelineID
}

// waitFor waits, on the runner's event stream, until cond holds for the
// pipeline.
func (e *env) waitFor(id string, what string, cond func(*store.Pipeline) bool) *store.Pipeline {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	events := e.r.Subscribe(ctx, store.DefaultTenant)
	for {
		p, err := e.r.Get(ctx, store.DefaultTenant, id)
		if err != nil {
			e.t.Fatal(err)
		}
		if cond(p) {
			return p
		}
		if p.Status.Terminal() {
			e.t.Fatalf("pipeline %s ended %s (%s) before %s\n%s", id, p.Status, p.State.Message, what, dump(p))
		}
		select {
		case _, ok := <-events:
			if !ok {
				events = e.r.Subscribe(ctx, store.DefaultTenant)
			}
		case <-ctx.Done():
			e.t.Fatalf("pipeline %s: timed out waiting until %s\n%s", id, what, dump(p))
		}
	}
}

func (e *env) waitEnd(id string) *store.Pipeline {
	e.t.Helper()
	return e.waitFor(id, "it ended", func(p *store.Pipeline) bool { return p.Status.Terminal() })
}

func dump(p *store.Pipeline) string {
	var b strings.Builder
	fmt.Fprintf(&b, "pipeline %s: %s %s\n", p.ID, p.Status, p.State.Message)
	for _, t := range p.State.Targets {
		fmt.Fprintf(&b, "  target %s: %s %s\n", t.Name, t.Status, t.Message)
		steps := t.Steps
		if t.Rollback != nil {
			steps = append(steps, *t.Rollback)
		}
		for _, s := range steps {
			fmt.Fprintf(&b, "    %s: %s %s\n", s.ID, s.Status, s.Message)
		}
	}
	return b.String()
}

func target(p *store.Pipeline, name string) *pipeline.TargetState {
	for i := range p.State.Targets {
		if p.State.Targets[i].Name == name {
			return &p.State.Targets[i]
		}
	}
	return nil
}

func (e *env) images() map[string]int {
	e.t.Helper()
	pods, err := kubetest.Client(e.t).CoreV1().Pods(e.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]int{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			out[p.Spec.Containers[0].Image]++
		}
	}
	return out
}

func (e *env) deploymentNames() []string {
	e.t.Helper()
	ds, err := kubetest.Client(e.t).AppsV1().Deployments(e.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, d := range ds.Items {
		out = append(out, d.Name+"="+d.Spec.Template.Spec.Containers[0].Image)
	}
	return out
}

func (e *env) oneTarget(name, strategy string) string {
	return fmt.Sprintf("  %s:\n    account: local\n    namespace: %s\n    strategy: %s", name, e.ns, strategy)
}

const canaryWithApproval = `  c:
    canary:
      steps:
        - setWeight: 25
        - pause: {untilApproved: true, requiresRoles: [release-manager]}
        - setWeight: {weight: 50}
        - pause: {duration: 1, unit: SECONDS}
        - setWeight: 100`

func TestCanaryWithPausesAndApproval(t *testing.T) {
	e := newEnv(t)
	first := e.start(e.file("web", e.oneTarget("staging", "c"), canaryWithApproval, "web:v1", ""))
	p := e.waitEnd(first)
	if p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first deployment ended %s\n%s", p.Status, dump(p))
	}
	// A first deployment goes straight to 100 %: no approval was needed.
	if got := e.images(); got["web:v1"] != 4 || len(got) != 1 {
		t.Fatalf("pods after first deployment: %v", got)
	}

	id := e.start(e.file("web", e.oneTarget("staging", "c"), canaryWithApproval, "web:v2", ""))
	p = e.waitFor(id, "awaiting approval", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })
	if tg := target(p, "staging"); tg.RequestedWeight != 25 || tg.AchievedWeight != 25 {
		t.Errorf("weights at the gate: requested %d achieved %d", tg.RequestedWeight, tg.AchievedWeight)
	}
	if got := e.images(); got["web:v2"] != 1 || got["web:v1"] != 3 {
		t.Errorf("pods at 25%%: %v, want 1 new and 3 old", got)
	}
	// A deployer without the role is refused; a release manager may approve.
	if _, err := e.r.Act(context.Background(), store.DefaultTenant, id, pipeline.Approve{By: deployer}); pipeline.ErrorCode(err) != pipeline.CodeForbidden {
		t.Fatalf("approve without the role: err = %v, want forbidden", err)
	}
	rm := pipeline.Principal{Name: "bob", Roles: []string{"release-manager"}}
	if _, err := e.r.Act(context.Background(), store.DefaultTenant, id, pipeline.Approve{By: rm}); err != nil {
		t.Fatal(err)
	}
	p = e.waitEnd(id)
	if p.Status != pipeline.StatusSucceeded {
		t.Fatalf("canary ended %s\n%s", p.Status, dump(p))
	}
	if got := e.images(); got["web:v2"] != 4 || len(got) != 1 {
		t.Errorf("pods after the canary: %v", got)
	}
	if got := e.deploymentNames(); len(got) != 1 || got[0] != "web=web:v2" {
		t.Errorf("deployments after the canary: %v, want only the user's, on v2", got)
	}
	if got := p.State.History; len(got) < 2 || got[1].Action != "approve" || got[1].By != "bob" {
		t.Errorf("history does not record the approval: %+v", got)
	}
}

func TestFanInAndFailureCancelsOnlyDependants(t *testing.T) {
	e := newEnv(t)
	targets := strings.Join([]string{
		e.oneTarget("a", "straight"),
		e.oneTarget("b", "straight"),
		e.oneTarget("c", "straight") + "\n    constraints:\n      dependsOn: [a, b]",
	}, "\n")
	strategies := "  straight:\n    canary:\n      steps:\n        - setWeight: 100"
	// Three targets into one namespace would fight over one Deployment;
	// each target gets its own manifest.
	req := e.file("fan", targets, strategies, "web:v1", "")
	req.File = perTargetManifests(e.ns, targets, strategies, map[string]string{"a": "ok", "b": "ok", "c": "ok"})
	id := e.start(req)
	p := e.waitEnd(id)
	if p.Status != pipeline.StatusSucceeded {
		t.Fatalf("fan-in ended %s\n%s", p.Status, dump(p))
	}
	a, b, c := target(p, "a"), target(p, "b"), target(p, "c")
	if c.StartedAt.Before(a.EndedAt) || c.StartedAt.Before(b.EndedAt) {
		t.Errorf("c started %v before a (%v) and b (%v) ended", c.StartedAt, a.EndedAt, b.EndedAt)
	}

	// Now b fails (the API server rejects its manifest): c, which depends on
	// it, is cancelled; a, independent, succeeds.
	req.File = perTargetManifests(e.ns, targets, strategies, map[string]string{"a": "ok2", "b": "invalid", "c": "ok2"})
	id = e.start(req)
	p = e.waitEnd(id)
	if p.Status != pipeline.StatusFailed {
		t.Fatalf("pipeline ended %s, want FAILED\n%s", p.Status, dump(p))
	}
	if got := target(p, "a").Status; got != pipeline.StatusSucceeded {
		t.Errorf("independent target a ended %s, want SUCCEEDED", got)
	}
	if got := target(p, "b").Status; got != pipeline.StatusRolledBack {
		t.Errorf("failing target b ended %s, want ROLLED_BACK\n%s", got, dump(p))
	}
	if got := target(p, "c").Status; got != pipeline.StatusCancelled {
		t.Errorf("dependant c ended %s, want CANCELLED", got)
	}
	if !strings.Contains(target(p, "b").Message, "Invalid") && !strings.Contains(dump(p), "invalid") {
		t.Errorf("b's failure does not say why:\n%s", dump(p))
	}
	// b's Deployment is as it was before the failed pipeline.
	d, err := kubetest.Client(t).AppsV1().Deployments(e.ns).Get(context.Background(), "web-b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "web:ok" {
		t.Errorf("b's deployment runs %s after the rollback, want web:ok", img)
	}
}

// perTargetManifests writes a file whose targets each get their own
// Deployment web-<target>; an image "invalid" makes the manifest one the
// API server rejects.
func perTargetManifests(ns, targets, strategies string, images map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: v1\nkind: kubernetes\napplication: fan\ntargets:\n%s\nstrategies:\n%s\nmanifests:\n", targets, strategies)
	names := make([]string, 0, len(images))
	for name := range images {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		container := "web"
		if images[name] == "invalid" {
			container = "Not_A_Valid_Name"
		}
		fmt.Fprintf(&b, `  - targets: [%[1]s]
    inline: |
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: web-%[1]s}
      spec:
        replicas: 2
        selector: {matchLabels: {app: web-%[1]s}}
        template:
          metadata: {labels: {app: web-%[1]s}}
          spec:
            containers: [{name: %[3]s, image: "web:%[2]s"}]
`, name, images[name], container)
	}
	return b.String()
}

func TestBlueGreenWaitsForApprovalBeforeRedirecting(t *testing.T) {
	e := newEnv(t)
	strategies := `  bg:
    blueGreen:
      activeService: web
      previewService: web-preview
      redirectTrafficAfter:
        - pause: {untilApproved: true}
      shutDownOldVersionAfter:
        - pause: {duration: 1, unit: seconds}`
	if p := e.waitEnd(e.start(e.file("bg", e.oneTarget("prod", "bg"), strategies, "web:v1", ""))); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("first deployment: %s\n%s", p.Status, dump(p))
	}
	id := e.start(e.file("bg", e.oneTarget("prod", "bg"), strategies, "web:v2", ""))
	e.waitFor(id, "awaiting approval", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })
	svc, err := kubetest.Client(t).CoreV1().Services(e.ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Selector[kube.LabelVersion] != "" {
		t.Errorf("active service points at a version before the approval: %v", svc.Spec.Selector)
	}
	if got := e.images(); got["web:v1"] != 4 || got["web:v2"] != 4 {
		t.Errorf("pods during preview: %v, want both versions at full size", got)
	}
	if _, err := e.r.Act(context.Background(), store.DefaultTenant, id, pipeline.Approve{By: deployer}); err != nil {
		t.Fatal(err)
	}
	p := e.waitEnd(id)
	if p.Status != pipeline.StatusSucceeded {
		t.Fatalf("blue/green ended %s\n%s", p.Status, dump(p))
	}
	if got := e.images(); got["web:v2"] != 4 || len(got) != 1 {
		t.Errorf("pods after blue/green: %v", got)
	}
	if got := e.deploymentNames(); len(got) != 1 || got[0] != "web=web:v2" {
		t.Errorf("deployments after blue/green: %v", got)
	}
}

func TestOneInFlightPerApplication(t *testing.T) {
	e := newEnv(t)
	strategies := "  c:\n    canary:\n      steps:\n        - setWeight: 50\n        - pause: {untilApproved: true}"
	e.waitEnd(e.start(e.file("solo", e.oneTarget("t", "c"), strategies, "web:v1", "")))
	id := e.start(e.file("solo", e.oneTarget("t", "c"), strategies, "web:v2", ""))
	e.waitFor(id, "awaiting approval", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })

	_, err := e.r.Start(context.Background(), deployer, store.DefaultTenant, e.file("solo", e.oneTarget("t", "c"), strategies, "web:v3", ""))
	if pipeline.ErrorCode(err) != pipeline.CodeConflict {
		t.Fatalf("second start: err = %v, want a conflict", err)
	}
	enqueue := "deploymentConfig:\n  ifDeploymentInProgress: {strategy: enqueueOne}\n"
	q1 := e.file("solo", e.oneTarget("t", "c"), strategies, "web:v3", "")
	q1.File = enqueue + q1.File
	r1, err := e.r.Start(context.Background(), deployer, store.DefaultTenant, q1)
	if err != nil || !r1.Queued {
		t.Fatalf("enqueueOne start: %+v, %v", r1, err)
	}
	q2 := e.file("solo", e.oneTarget("t", "c"), strategies, "web:v4", "")
	q2.File = enqueue + q2.File
	r2, err := e.r.Start(context.Background(), deployer, store.DefaultTenant, q2)
	if err != nil || !r2.Queued {
		t.Fatalf("second enqueueOne start: %+v, %v", r2, err)
	}
	if p := e.waitEnd(r1.PipelineID); p.Status != pipeline.StatusCancelled {
		t.Errorf("replaced queued pipeline ended %s, want CANCELLED", p.Status)
	}
	if _, err := e.r.Act(context.Background(), store.DefaultTenant, id, pipeline.Approve{By: deployer}); err != nil {
		t.Fatal(err)
	}
	e.waitEnd(id)
	// The queued one starts by itself once the first has ended.
	e.waitFor(r2.PipelineID, "awaiting approval", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })
	if _, err := e.r.Act(context.Background(), store.DefaultTenant, r2.PipelineID, pipeline.Rollback{Target: "t", By: deployer, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if p := e.waitEnd(r2.PipelineID); target(p, "t").Status != pipeline.StatusRolledBack {
		t.Errorf("rolled back target ended %s\n%s", target(p, "t").Status, dump(p))
	}
	if got := e.images(); got["web:v2"] != 4 || len(got) != 1 {
		t.Errorf("pods after the rollback: %v, want v2 as before", got)
	}
}

func TestUnknownAccountIsRefused(t *testing.T) {
	e := newEnv(t)
	req := e.file("x", "  t:\n    account: nowhere\n    namespace: x\n    strategy: c", "  c:\n    canary:\n      steps:\n        - setWeight: 100", "web:v1", "")
	_, err := e.r.Start(context.Background(), deployer, store.DefaultTenant, req)
	if err == nil || !strings.Contains(err.Error(), "nowhere") || pipeline.ErrorCode(err) != pipeline.CodeUnprocessable {
		t.Fatalf("err = %v, want an unprocessable error naming the account", err)
	}
}

func TestRedeployRunsTheStoredFileAgain(t *testing.T) {
	e := newEnv(t)
	targets := e.oneTarget("a", "straight") + "\n" + e.oneTarget("b", "straight")
	strategies := "  straight:\n    canary:\n      steps:\n        - setWeight: 50\n        - setWeight: 100"
	req := e.file("re", targets, strategies, "web:v1", "")
	req.File = perTargetManifests(e.ns, targets, strategies, map[string]string{"a": "v1", "b": "v1"})
	first := e.waitEnd(e.start(req))
	if first.Status != pipeline.StatusSucceeded {
		t.Fatalf("v1 ended %s\n%s", first.Status, dump(first))
	}
	req.File = perTargetManifests(e.ns, targets, strategies, map[string]string{"a": "v2", "b": "v2"})
	if p := e.waitEnd(e.start(req)); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("v2 ended %s\n%s", p.Status, dump(p))
	}
	// Redeploy v1 to target a only: the stored file and manifests of the
	// first pipeline, with a target filter.
	res, err := e.r.Redeploy(context.Background(), deployer, store.DefaultTenant, first.ID, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	p := e.waitEnd(res.PipelineID)
	if p.Status != pipeline.StatusSucceeded || len(p.State.Targets) != 1 || p.State.Targets[0].Name != "a" {
		t.Fatalf("redeploy ended %s with targets %v\n%s", p.Status, p.State.Targets, dump(p))
	}
	images := map[string]string{}
	for _, name := range []string{"web-a", "web-b"} {
		d, err := kubetest.Client(t).AppsV1().Deployments(e.ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		images[name] = d.Spec.Template.Spec.Containers[0].Image
	}
	if images["web-a"] != "web:v1" || images["web-b"] != "web:v2" {
		t.Errorf("after redeploying v1 to a: %v, want a on v1 and b still on v2", images)
	}
	// Another tenant cannot redeploy it.
	if _, err := e.r.Redeploy(context.Background(), deployer, "other", first.ID, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("redeploy from another tenant: err = %v, want not found", err)
	}
}

// flakyStore is the real SQLite store with faults injected: while failures
// is above zero, saving a command's result fails (as a disk that is full
// for a moment would).
type flakyStore struct {
	store.Store
	failures atomic.Int32
	failed   atomic.Int32
}

func (s *flakyStore) SavePipeline(ctx context.Context, p *store.Pipeline, events []store.Event) error {
	for _, ev := range events {
		if ev.Type == "command" && s.failures.Add(-1) >= 0 {
			s.failed.Add(1)
			return errors.New("injected fault: disk full")
		}
	}
	return s.Store.SavePipeline(ctx, p, events)
}

func TestCommandResultSurvivesAFailingSave(t *testing.T) {
	st := openStore(t)
	flaky := &flakyStore{Store: st}
	e := newEnvWith(t, flaky)
	flaky.failures.Store(3)
	strategies := "  c:\n    canary:\n      steps:\n        - setWeight: 100"
	p := e.waitEnd(e.start(e.file("flaky", e.oneTarget("t", "c"), strategies, "web:v1", "")))
	if p.Status != pipeline.StatusSucceeded {
		t.Fatalf("pipeline ended %s\n%s", p.Status, dump(p))
	}
	if got := flaky.failed.Load(); got != 3 {
		t.Errorf("%d saves failed, want the 3 injected", got)
	}
}

// oneFault is the real SQLite store with one fault injected: the create
// of a pipeline (create), the first save after one (save), or the first
// save of the pipeline named by start (start) fails once.
type oneFault struct {
	store.Store
	at      string
	start   atomic.Value // string
	created atomic.Bool
	failed  atomic.Int32
}

var errInjected = errors.New("injected fault: disk full")

func (s *oneFault) CreatePipeline(ctx context.Context, p *store.Pipeline, admit store.Admit, events []store.Event) error {
	if s.at == "create" && s.failed.CompareAndSwap(0, 1) {
		return errInjected
	}
	err := s.Store.CreatePipeline(ctx, p, admit, events)
	if err == nil {
		s.created.Store(true)
	}
	return err
}

func (s *oneFault) SavePipeline(ctx context.Context, p *store.Pipeline, events []store.Event) error {
	due := s.at == "save" && s.created.Load() || s.at == "start" && s.start.Load() == p.ID
	if due && s.failed.CompareAndSwap(0, 1) {
		return errInjected
	}
	return s.Store.SavePipeline(ctx, p, events)
}

// A store failing around a pipeline's creation leaves it either started or
// not created: never queued behind nothing, refusing every later start.
func TestFailedWriteAtCreationLeavesNothingQueued(t *testing.T) {
	for _, at := range []string{"create", "save"} {
		t.Run(at, func(t *testing.T) {
			st := openStore(t)
			faulty := &oneFault{Store: st, at: at}
			e := newEnvWith(t, faulty)
			strategies := "  c:\n    canary:\n      steps:\n        - setWeight: 100"
			res, err := e.r.Start(context.Background(), deployer, store.DefaultTenant, e.file("stuck", e.oneTarget("t", "c"), strategies, "web:v1", ""))
			switch {
			case at == "create" && !errors.Is(err, errInjected):
				t.Fatalf("start with a failing create: err = %v, want the injected fault", err)
			case at == "save" && err != nil:
				t.Fatalf("start with a failing save after the create: %v", err)
			case at == "save" && res.Status == pipeline.StatusQueued:
				t.Fatalf("the first pipeline of an application was left %s", res.Status)
			case at == "save":
				if p := e.waitEnd(res.PipelineID); p.Status != pipeline.StatusSucceeded {
					t.Fatalf("pipeline ended %s\n%s", p.Status, dump(p))
				}
			}
			if got := faulty.failed.Load(); got != 1 {
				t.Fatalf("%d writes failed, want the one injected", got)
			}
			// The next start is not refused, and runs.
			if p := e.waitEnd(e.start(e.file("stuck", e.oneTarget("t", "c"), strategies, "web:v2", ""))); p.Status != pipeline.StatusSucceeded {
				t.Fatalf("next pipeline ended %s\n%s", p.Status, dump(p))
			}
			left, err := st.ResumablePipelines(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range left {
				t.Errorf("pipeline %s left %s", p.ID, p.Status)
			}
		})
	}
}

// A queued pipeline whose start fails to save when its turn comes is
// started again until the save holds.
func TestQueuedPipelineStartsDespiteAFailedSave(t *testing.T) {
	faulty := &oneFault{Store: openStore(t), at: "start"}
	e := newEnvWith(t, faulty)
	strategies := "  c:\n    canary:\n      steps:\n        - setWeight: 50\n        - pause: {untilApproved: true}"
	enqueue := "deploymentConfig:\n  ifDeploymentInProgress: {strategy: enqueueOne}\n"
	approved := func(id string) *store.Pipeline {
		e.waitFor(id, "awaiting approval", func(p *store.Pipeline) bool { return p.Status == pipeline.StatusAwaitingApproval })
		if _, err := e.r.Act(context.Background(), store.DefaultTenant, id, pipeline.Approve{By: deployer}); err != nil {
			t.Fatal(err)
		}
		return e.waitEnd(id)
	}
	e.waitEnd(e.start(e.file("requeue", e.oneTarget("t", "c"), strategies, "web:v1", "")))
	first := e.start(e.file("requeue", e.oneTarget("t", "c"), strategies, "web:v2", ""))
	req := e.file("requeue", e.oneTarget("t", "c"), strategies, "web:v3", "")
	req.File = enqueue + req.File
	res, err := e.r.Start(context.Background(), deployer, store.DefaultTenant, req)
	if err != nil || !res.Queued {
		t.Fatalf("enqueueOne start: %+v, %v", res, err)
	}
	faulty.start.Store(res.PipelineID)
	approved(first)
	if p := approved(res.PipelineID); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("queued pipeline ended %s\n%s", p.Status, dump(p))
	}
	if got := faulty.failed.Load(); got != 1 {
		t.Fatalf("%d saves failed, want the one injected", got)
	}
}
