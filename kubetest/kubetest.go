package kubetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/sortie-cd/sortie/localkube"
)

var shared *localkube.Cluster

// Main starts the shared cluster, runs the tests and stops the cluster. Call
// it from TestMain:
//
//	func TestMain(m *testing.M) { kubetest.Main(m) }
//
// When -short is given the tests still run; tests that need the cluster are
// expected not to call -short-sensitive code paths.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	bins, err := localkube.EnsureBinaries(ctx, localkube.BuildOptions{Log: os.Stderr})
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubetest: %v\n", err)
		return 1
	}
	c, err := localkube.Start(ctx, localkube.Options{Binaries: bins})
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubetest: start cluster: %v\n", err)
		return 1
	}
	shared = c
	defer c.Stop()
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "kubetest: tests failed; cluster logs:\n%s", c.LogTail(40))
	}
	return code
}

// Cluster returns the shared cluster. It fails the test if Main did not start one.
func Cluster(t testing.TB) *localkube.Cluster {
	t.Helper()
	if shared == nil {
		t.Fatal("kubetest: no cluster; call kubetest.Main from TestMain")
	}
	return shared
}

// Config returns an admin REST configuration for the shared cluster.
func Config(t testing.TB) *rest.Config {
	t.Helper()
	return rest.CopyConfig(Cluster(t).Config)
}

// Client returns an admin clientset for the shared cluster.
func Client(t testing.TB) kubernetes.Interface {
	t.Helper()
	return Cluster(t).Client
}

// Namespace creates a namespace for this test, ready for pods, and deletes it
// when the test ends. When the test fails, the components' recent logs are
// printed with it.
func Namespace(t testing.TB) string {
	t.Helper()
	c := Cluster(t)
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	ns := fmt.Sprintf("t-%s-%s", shortName(t.Name()), hex.EncodeToString(suffix))
	ctx := context.Background()
	_, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kubetest: create namespace: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := localkube.WaitServiceAccount(wctx, c.Client, ns); err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cluster logs (last lines of each component):\n%s", c.LogTail(25))
			if err := c.Err(); err != nil {
				t.Logf("kubetest: %v", err)
			}
		}
		_ = c.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	return ns
}

// shortName turns a test name into a DNS label fragment.
func shortName(name string) string {
	b := make([]byte, 0, 30)
	for i := 0; i < len(name) && len(b) < 30; i++ {
		ch := name[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9':
			b = append(b, ch)
		case ch >= 'A' && ch <= 'Z':
			b = append(b, ch+'a'-'A')
		default:
			if len(b) > 0 && b[len(b)-1] != '-' {
				b = append(b, '-')
			}
		}
	}
	for len(b) > 0 && b[len(b)-1] == '-' {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return "test"
	}
	return string(b)
}

// Until waits until cond holds: it checks cond once, then again after each
// change a watch reports in namespace ns (Pods, Services, Deployments,
// ReplicaSets, ResourceQuotas), and fails the test with what when timeout
// passes first. The watches start before the first check, so no change is
// missed between a check and the wait for the next event.
func Until(t testing.TB, ns, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	changed := Changes(ctx, t, ns)
	for !cond() {
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
	}
}

// Changes returns a channel that receives a value after each change a
// watch reports to the Pods, Services, Deployments, ReplicaSets or
// ResourceQuotas of namespace ns, until ctx ends. The watches are running
// when it returns; a watch the server closes is started again.
func Changes(ctx context.Context, t testing.TB, ns string) <-chan struct{} {
	t.Helper()
	c := Client(t)
	opts := metav1.ListOptions{}
	watches := []func(context.Context) (watch.Interface, error){
		func(ctx context.Context) (watch.Interface, error) { return c.CoreV1().Pods(ns).Watch(ctx, opts) },
		func(ctx context.Context) (watch.Interface, error) { return c.CoreV1().Services(ns).Watch(ctx, opts) },
		func(ctx context.Context) (watch.Interface, error) { return c.AppsV1().Deployments(ns).Watch(ctx, opts) },
		func(ctx context.Context) (watch.Interface, error) { return c.AppsV1().ReplicaSets(ns).Watch(ctx, opts) },
		func(ctx context.Context) (watch.Interface, error) {
			return c.CoreV1().ResourceQuotas(ns).Watch(ctx, opts)
		},
	}
	out := make(chan struct{}, 1)
	notify := func() {
		select {
		case out <- struct{}{}:
		default: // a notification is pending already
		}
	}
	for _, start := range watches {
		w, err := start(ctx)
		if err != nil {
			t.Fatalf("kubetest: watch namespace %s: %v", ns, err)
		}
		go func() {
			for {
				for range w.ResultChan() {
					notify()
				}
				w.Stop()
				if ctx.Err() != nil {
					return
				}
				// The server ended the watch: start it again, and look
				// again in case something changed in between.
				var err error
				if w, err = start(ctx); err != nil {
					return
				}
				notify()
			}
		}()
	}
	go func() { <-ctx.Done(); notify() }()
	return out
}
