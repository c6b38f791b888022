package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/kubetest"

	"github.com/sortie-cd/sortie/pipeline"
)

// previewApp stands in for the new version's pods behind a Service: kwok
// pods run no containers, so the Service has no selector and its Endpoints
// point here.
type previewApp struct {
	ip, ns string
	port   int
	mu     sync.Mutex
	seen   []*http.Request
}

func newPreviewApp(t *testing.T, ns string) *previewApp {
	a := &previewApp{ip: kubetest.HostIP(t), ns: ns}
	ln, err := net.Listen("tcp", a.ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	a.port = ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.seen = append(a.seen, r)
		a.mu.Unlock()
		fmt.Fprintf(w, "potato facts v2 at %s?%s", r.URL.Path, r.URL.RawQuery)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	a.standIn(t)
	return a
}

// standIn makes the pod the Endpoints name: the API server's service proxy
// reaches only endpoints that are a pod's IP. It is bound to a node no
// controller runs (neither the scheduler nor kwok touches it), and its
// status says it runs at the stand-in's address.
func (a *previewApp) standIn(t *testing.T) {
	ctx := context.Background()
	pods := kubetest.Client(t).CoreV1().Pods(a.ns)
	pod, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "potato-facts-standin"},
		Spec:       corev1.PodSpec{NodeName: "no-such-node", Containers: []corev1.Container{{Name: "app", Image: "potato:v2"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: a.ip, PodIPs: []corev1.PodIP{{IP: a.ip}}}
	if _, err := pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (a *previewApp) objects() string {
	return fmt.Sprintf(`---
apiVersion: v1
kind: Service
metadata:
  name: potato-facts
spec:
  ports: [{port: 80, targetPort: %d}]
---
apiVersion: v1
kind: Endpoints
metadata:
  name: potato-facts
subsets:
  - addresses: [{ip: %s, targetRef: {kind: Pod, name: potato-facts-standin, namespace: %s}}]
    ports: [{port: %d}]
`, a.port, a.ip, a.ns, a.port)
}

func exposeSteps(services string) string {
	return `    canary:
      steps:
        - setWeight: 50
        - exposeServices:
            services: [` + services + `]
            ttl: {duration: 10, unit: minutes}
        - pause: {untilApproved: true}
`
}

var previewLink = regexp.MustCompile(`- potato-facts: (https?://\S+/preview/\S+/)`)

// An exposeServices step gives the Service a preview URL on the server;
// fetched there, the request travels over the agent's stream to the
// cluster's Service (no inbound port), and the answer comes back. The
// caller's cookie and credentials stay behind; an altered token reaches
// nothing.
func TestExposeServicesPreviewThroughAgent(t *testing.T) {
	s := newSortie(t)
	s.startAgent()
	app := newPreviewApp(t, s.ns)
	s.succeed(deployFile(s.ns, "potato:v1", exposeSteps("potato-facts"), "", app.objects()), "v1")
	id := s.start(deployFile(s.ns, "potato:v2", exposeSteps("potato-facts"), "", app.objects()))
	p := s.waitPipeline(id, "the pause after exposeServices", awaitingAny)
	var link string
	for _, st := range p.Targets[0].Steps {
		if st.Kind == pipeline.KindExposeServices {
			if m := previewLink.FindStringSubmatch(st.Message); m != nil {
				link = m[1]
			}
		}
	}
	if !strings.HasPrefix(link, s.url+"/preview/") {
		t.Fatalf("no preview URL in the step's message: %s", clienttest.Dump(p))
	}

	req, _ := http.NewRequest("GET", link+"facts?n=3", nil)
	req.Header.Set("Cookie", "sortie_session=secret-session")
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "potato facts v2 at /facts?n=3" {
		t.Fatalf("preview: %d %s", resp.StatusCode, body)
	}
	app.mu.Lock()
	for _, r := range app.seen {
		if r.Header.Get("Cookie") != "" || r.Header.Get("Authorization") != "" {
			t.Errorf("the previewed Service received the caller's credentials: %v", r.Header)
		}
	}
	app.mu.Unlock()

	// A token altered by one character is no link.
	i := len(s.url + "/preview/")
	altered := link[:i] + string(link[i]^1) + link[i+1:]
	if resp, err := s.hc.Get(altered + "facts"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("altered token: %v %v, want 404", err, resp)
	}
	s.act(id, "approve")
	if p := s.waitPipeline(id, "the end", ended); p.Status != pipeline.StatusSucceeded {
		t.Fatalf("ended %s", clienttest.Dump(p))
	}
}

// A Service that does not exist fails the step, naming it and the
// namespace, and the target rolls back as for any failed step.
func TestExposeServicesWithoutTheServiceRollsBack(t *testing.T) {
	s := newSortie(t)
	s.startAgent()
	s.succeed(deployFile(s.ns, "potato:v1", exposeSteps("potato-nope"), "", ""), "v1")
	p := s.waitPipeline(s.start(deployFile(s.ns, "potato:v2", exposeSteps("potato-nope"), "", "")), "the end", ended)
	want := fmt.Sprintf("Service potato-nope does not exist in namespace %s", s.ns)
	if p.Targets[0].Status != pipeline.StatusRolledBack || !strings.Contains(p.Targets[0].Message, want) {
		t.Fatalf("want a rollback saying %q: %s", want, clienttest.Dump(p))
	}
}
