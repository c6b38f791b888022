package kubetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/sortie-cd/sortie/localkube"
)

// The cluster of this test binary: started by the first test that asks
// for it, stopped by Main after the last test.
var shared struct {
	mu      sync.Mutex
	main    bool // Main is running the tests
	started bool // a start was tried (once: a failure is every caller's)
	c       *localkube.Cluster
	err     error
	// build is where the binaries come from, resolved by Main before any
	// test runs: a test may change HOME or the working directory (the
	// CLI's do) before it first asks for the cluster.
	build localkube.BuildOptions
}

// startTimeout bounds building the binaries (once per machine, cached) and
// starting the control plane.
const startTimeout = 20 * time.Minute

// Main runs the tests and stops the cluster if one was started. Call it
// from TestMain:
//
//	func TestMain(m *testing.M) { kubetest.Main(m) }
//
// The cluster starts on the first call of Cluster, Config, Client or
// Namespace, so a test binary (or a -run selection) whose tests need no
// cluster starts none. The components die with the test binary even when
// it panics or times out; when a test failed, Main prints their recent
// logs.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the exit: it returns the tests' exit code, for a
// TestMain that wraps it in another harness (pgtest.Around).
func Run(m *testing.M) int {
	build := localkube.BuildOptions{Log: os.Stderr}
	var err error
	if build.ToolsDir, err = localkube.FindToolsDir(); err == nil {
		build.CacheDir, err = localkube.DefaultCacheDir()
	}
	shared.mu.Lock()
	shared.main = true
	shared.build = build
	if err != nil {
		shared.started, shared.err = true, err // every cluster test fails with it
	}
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.main = false
	if c := shared.c; c != nil {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "kubetest: tests failed; cluster logs:\n%s", c.LogTail(40))
		}
		c.Stop()
		shared.c = nil
	}
	return code
}

// Cluster returns the shared cluster, starting it on the first call. It
// fails the test if Main is not running the tests (nothing would stop the
// cluster) or the cluster cannot start.
func Cluster(t testing.TB) *localkube.Cluster {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.main {
		t.Fatal("kubetest: no cluster; call kubetest.Main from TestMain")
	}
	if !shared.started {
		shared.started = true
		shared.c, shared.err = start(shared.build)
	}
	if shared.err != nil {
		t.Fatalf("kubetest: %v", shared.err)
	}
	return shared.c
}

// start builds (if not cached) and starts the local control plane.
func start(build localkube.BuildOptions) (*localkube.Cluster, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	bins, err := localkube.EnsureBinaries(ctx, build)
	if err != nil {
		return nil, err
	}
	c, err := localkube.Start(ctx, localkube.Options{Binaries: bins})
	if err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	fmt.Fprintf(os.Stderr, "kubetest: started a local cluster in %s\n", c.Dir)
	return c, nil
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
