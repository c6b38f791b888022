package e2e

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// waitLimit bounds each wait of these tests on the cluster or the stream.
const waitLimit = time.Minute

// events follows one pipeline's event stream from its first event.
type events struct {
	t       *testing.T
	id      string
	mu      sync.Mutex
	got     []store.Event
	next    int
	err     error
	changed chan struct{}
}

func (s *sortie) follow(id string) *events {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/api/v1/pipelines/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := s.hc.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		s.t.Fatalf("event stream of %s: %s", id, resp.Status)
	}
	ev := &events{t: s.t, id: id, changed: make(chan struct{}, 1)}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var e store.Event
			err := json.Unmarshal([]byte(data), &e)
			ev.mu.Lock()
			if err != nil {
				ev.err = fmt.Errorf("undecodable event %q: %v", data, err)
			}
			ev.got = append(ev.got, e)
			ev.mu.Unlock()
			select {
			case ev.changed <- struct{}{}:
			default:
			}
		}
	}()
	return ev
}

// waitStep waits for the event that step of target prod went to status.
func (ev *events) waitStep(step string, to pipeline.Status) {
	ev.t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		ev.mu.Lock()
		if ev.err != nil {
			ev.mu.Unlock()
			ev.t.Fatal(ev.err)
		}
		for ev.next < len(ev.got) {
			e := ev.got[ev.next]
			ev.next++
			var c pipeline.Change
			if e.Type == "status" && json.Unmarshal(e.Data, &c) == nil && c.Target == "prod" && c.Step == step && c.To == to {
				ev.mu.Unlock()
				return
			}
		}
		ev.mu.Unlock()
		select {
		case <-ev.changed:
		case <-timer.C:
			ev.t.Fatalf("pipeline %s: no event of step %s going %s within %s", ev.id, step, to, waitLimit)
		}
	}
}

const quotaName = "pods"

// setPodQuota limits the namespace's pods to n, and waits until the quota
// is enforced (its status counts the pods).
func (s *sortie) setPodQuota(n int64) {
	s.t.Helper()
	ctx := context.Background()
	quotas := kubetest.Client(s.t).CoreV1().ResourceQuotas(s.ns)
	hard := corev1.ResourceList{corev1.ResourcePods: *resource.NewQuantity(n, resource.DecimalSI)}
	q, err := quotas.Get(ctx, quotaName, metav1.GetOptions{})
	if err == nil {
		q.Spec.Hard = hard
		_, err = quotas.Update(ctx, q, metav1.UpdateOptions{})
	} else if apierrors.IsNotFound(err) {
		_, err = quotas.Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: quotaName}, Spec: corev1.ResourceQuotaSpec{Hard: hard}}, metav1.CreateOptions{})
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.poll(fmt.Sprintf("the pod quota of %d is enforced", n), func() bool {
		q, err := quotas.Get(ctx, quotaName, metav1.GetOptions{})
		if err != nil {
			return false
		}
		h := q.Status.Hard[corev1.ResourcePods]
		_, counted := q.Status.Used[corev1.ResourcePods]
		return h.Value() == n && counted
	})
}

func (s *sortie) dropPodQuota() {
	s.t.Helper()
	err := kubetest.Client(s.t).CoreV1().ResourceQuotas(s.ns).Delete(context.Background(), quotaName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		s.t.Fatal(err)
	}
}

// poll waits until cond holds, looking again after each change a watch
// reports in the namespace.
func (s *sortie) poll(what string, cond func() bool) {
	s.t.Helper()
	kubetest.Until(s.t, s.ns, what, waitLimit, cond)
}

// waitDeployment waits until the Deployment exists and cond holds for it,
// looking again after each change a watch reports in the namespace.
func (s *sortie) waitDeployment(name, what string, cond func(*appsv1.Deployment) bool) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	changed := kubetest.Changes(ctx, s.t, s.ns)
	var last *appsv1.Deployment
	for {
		d, err := kubetest.Client(s.t).AppsV1().Deployments(s.ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			last = d
			if cond(d) {
				return
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			s.t.Fatalf("timed out waiting until %s; deployment %s: %+v", what, name, last)
		}
	}
}

func replicas(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// The steps of twoPauses then 100 % and the finalize, as the pipeline
// names them.
const (
	stepSet25    = "canary/0"
	stepPause25  = "canary/1"
	stepSet50    = "canary/2"
	stepPause50  = "canary/3"
	stepSet100   = "canary/4"
	stepFinalize = "finalize"
)

const toTheEnd = twoPauses + `        - setWeight: 100
`

// held is a point of the canary 25 → pause → 50 → pause → 100 where a
// rollback or a cancel lands. reach takes a started pipeline there. A
// point inside a running step holds that step's rollout with a pod quota
// (all new pods Ready would end the step), and checks the command is past
// its first write, waiting for pods, before it returns.
type held struct {
	name string
	// quota, when not 0, limits the namespace's pods before the start.
	quota int64
	// running is the step running at the point, "" at a pause.
	running string
	// steps are the canary's steps; "" is toTheEnd.
	steps string
	reach func(s *sortie, ev *events, id string)
}

func atPause25(s *sortie, ev *events, id string) {
	ev.waitStep(stepPause25, pipeline.StatusAwaitingApproval)
	s.wantPods("at 25%", 3, 1)
}

func atPause50(s *sortie, ev *events, id string) {
	atPause25(s, ev, id)
	s.act(id, "approve")
	ev.waitStep(stepPause50, pipeline.StatusAwaitingApproval)
	s.wantPods("at 50%", 2, 2)
}

// canaryAt waits until the user's Deployment, running the canary, asks
// for n new pods with fewer Ready: its step is waiting for them.
func canaryAt(s *sortie, n int32) {
	s.waitDeployment("web", fmt.Sprintf("the canary asks for %d pods", n), func(d *appsv1.Deployment) bool {
		return d.Spec.Template.Spec.Containers[0].Image == "web:v2" && replicas(d) == n && d.Status.ReadyReplicas < n
	})
}

var heldPoints = []held{
	// 4 pods run already: the canary's first one does not fit.
	{"setWeight 25 running", 4, stepSet25, "", func(s *sortie, ev *events, id string) {
		ev.waitStep(stepSet25, pipeline.StatusRunning)
		canaryAt(s, 1)
	}},
	{"pause at 25", 0, "", "", atPause25},
	{"setWeight 50 running", 0, stepSet50, "", func(s *sortie, ev *events, id string) {
		atPause25(s, ev, id)
		s.setPodQuota(4) // 1 new and 3 old run: the second new pod does not fit
		s.act(id, "approve")
		ev.waitStep(stepSet50, pipeline.StatusRunning)
		canaryAt(s, 2)
	}},
	{"pause at 50", 0, "", "", atPause50},
	{"setWeight 100 running", 0, stepSet100, "", func(s *sortie, ev *events, id string) {
		atPause50(s, ev, id)
		s.setPodQuota(4) // 2 new and 2 old run: the third new pod does not fit
		s.act(id, "approve")
		ev.waitStep(stepSet100, pipeline.StatusRunning)
		canaryAt(s, 4)
	}},
	// Without a setWeight 100, the finalize has pods to start: the user's
	// Deployment, which runs the canary's 2, grows to 4 beside the old 2
	// and stalls at 2 of its 4.
	{"finalize running", 0, stepFinalize, twoPauses, func(s *sortie, ev *events, id string) {
		atPause50(s, ev, id)
		s.setPodQuota(4)
		s.act(id, "approve")
		ev.waitStep(stepFinalize, pipeline.StatusRunning)
		s.waitDeployment("web", "the user's Deployment is being promoted", func(d *appsv1.Deployment) bool {
			return d.Spec.Template.Spec.Containers[0].Image == "web:v2" && replicas(d) == 4 && d.Status.ReadyReplicas < 4
		})
	}},
}

// A rollback, and separately a cancel, at every step of a canary 25 →
// pause → 50 → pause → 100 (while each setWeight runs, at each pause, and
// while the finalize runs) leaves the namespace as it was before the
// pipeline, through server and agent processes. Each case has its own
// server, agent and namespace, and they run in parallel.
func TestRollbackAndCancelAtEveryStep(t *testing.T) {
	sortieBinary(t) // built once, before the parallel cases
	for _, action := range []string{"rollback", "cancel"} {
		for _, h := range heldPoints {
			t.Run(action+" at "+h.name, func(t *testing.T) {
				t.Parallel()
				s := newSortie(t)
				s.startAgent()
				s.succeed(deployFile(s.ns, "web:v1", toTheEnd, "", ""), "the first deployment")
				before := s.snapshot()
				if strings.Contains(before, "-sortie-") {
					t.Fatalf("before: %s", before)
				}
				if h.quota > 0 {
					s.setPodQuota(h.quota)
				}

				id := s.start(deployFile(s.ns, "web:v2", cmp.Or(h.steps, toTheEnd), "", ""))
				ev := s.follow(id)
				h.reach(s, ev, id)
				s.act(id, action)
				// The old version needs room to come back beside what the
				// new one holds until the rollback removes it.
				s.dropPodQuota()
				p := s.waitPipeline(id, action+" ends", ended)
				switch {
				case action == "rollback" && p.Targets[0].Status != pipeline.StatusRolledBack,
					action == "cancel" && p.Status != pipeline.StatusCancelled:
					t.Errorf("after the %s: %s", action, clienttest.Dump(p))
				}
				if after := s.snapshot(); after != before {
					t.Errorf("after the %s: the namespace is\n%s\nwas\n%s\npipeline: %s", action, after, before, clienttest.Dump(p))
				}
				s.wantPods("after the "+action, 4, 0)
				// Mid-command: the agent was running the step, and stopped it
				// before anything else ran — on the server's Cancel, or, when
				// the rollback command arrived first, by superseding it
				// itself (then the step ends before the rollback starts).
				if h.running != "" {
					out := s.agent.Output()
					cmd := regexp.QuoteMeta(id + "/prod/" + h.running)
					cancelled := regexp.MustCompile(`msg="command cancelled by the server" .*command=` + cmd + `(\s|$)`)
					ended := regexp.MustCompile(`msg="command done" .*command=` + cmd + `\s`).FindStringIndex(out)
					next := regexp.MustCompile(`msg="running command" .*command=` + regexp.QuoteMeta(id+"/prod/") + `rollback\s`).FindStringIndex(out)
					superseded := strings.Contains(out, `msg="waiting for the superseded commands of the target to stop"`) &&
						ended != nil && (next == nil || ended[0] < next[0])
					if !cancelled.MatchString(out) && !superseded {
						t.Errorf("the agent did not stop the running %s before going on", h.running)
					}
				}
			})
		}
	}
}
