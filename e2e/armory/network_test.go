package armory

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
)

// appPort is the port the corpus's Services send traffic to (targetPort
// 9001: the potato-facts and potato-lies containers').
const appPort = 9001

// podNetwork stands in for the network of kwok's simulated node. kwok
// gives a pod an address (10.0.0.0/24) that nothing listens on, so the API
// server's service proxy, which a preview link goes through, would reach
// nothing. podNetwork moves every running pod outside kube-system to this
// machine's address (kwok writes a pod's status once, when it starts, and
// leaves it; the EndpointSlice controller then follows), and answers
// there, on appPort, as the application would. The address is not
// loopback: the service proxy refuses loopback endpoints.
type podNetwork struct {
	ip     string
	served atomic.Int64
}

func newPodNetwork(t *testing.T, kube kubernetes.Interface) *podNetwork {
	t.Helper()
	n := &podNetwork{ip: kubetest.HostIP(t)}
	ln, err := net.Listen("tcp", net.JoinHostPort(n.ip, fmt.Sprint(appPort)))
	if err != nil {
		t.Fatalf("the pods' stand-in application cannot listen on %s:%d, the port the corpus's Services target: %v", n.ip, appPort, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.served.Add(1)
		fmt.Fprintf(w, "potato facts at %s", r.URL.Path)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	wt, err := kube.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	patch := fmt.Appendf(nil, `{"status":{"podIP":%q,"podIPs":[{"ip":%q}]}}`, n.ip, n.ip)
	go func() {
		defer wt.Stop()
		for ev := range wt.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type == watch.Deleted || p.Namespace == "kube-system" || p.DeletionTimestamp != nil ||
				p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" || p.Status.PodIP == n.ip {
				continue
			}
			// A failure is seen again at the pod's next change; the
			// preview fetch says when no pod got the address.
			kube.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
		}
	}()
	return n
}

var previewLink = regexp.MustCompile(`- (\S+): (https?://\S+/preview/\S+/)`)

// fetchPreviews gets every preview link the pipeline's exposeServices
// steps gave, over HTTP from the server, as a tester handed the link
// would: each must answer 200 with the application's page, relayed by
// the target's agent to the cluster's Service. It returns how many.
func (w *world) fetchPreviews(t *testing.T, p *api.PipelineView) int {
	t.Helper()
	n := 0
	for _, tg := range p.Targets {
		for _, st := range tg.Steps {
			if st.Kind != pipeline.KindExposeServices || st.Status != pipeline.StatusSucceeded {
				continue
			}
			links := previewLink.FindAllStringSubmatch(st.Message, -1)
			if len(links) == 0 {
				t.Errorf("target %s %s: no preview link in %q", tg.Name, st.ID, st.Message)
			}
			for _, l := range links {
				if !strings.HasPrefix(l[2], w.url+"/preview/") {
					t.Errorf("target %s: Service %s's link %s is not on the server", tg.Name, l[1], l[2])
					continue
				}
				resp, err := w.hc.Get(l[2] + "facts")
				if err != nil {
					t.Errorf("target %s: preview of %s: %v", tg.Name, l[1], err)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(body) != "potato facts at /facts" {
					t.Errorf("target %s: preview of %s (%s): %s %s", tg.Name, l[1], l[2], resp.Status, body)
				}
				n++
			}
		}
	}
	return n
}
