package localkube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	watchtools "k8s.io/client-go/tools/watch"
)

// NodeName is the simulated node every cluster gets.
const NodeName = "kwok-node-0"

// Options configure Start.
type Options struct {
	// Binaries come from EnsureBinaries.
	Binaries Binaries
	// Dir holds the cluster's state, certificates and logs. Empty means a new
	// temporary directory, removed by Stop.
	Dir string
	// StartTimeout bounds how long the cluster may take to become ready.
	// Zero means two minutes.
	StartTimeout time.Duration
}

// Cluster is a running local control plane.
type Cluster struct {
	// Dir holds everything the cluster writes; logs are Dir/<component>.log.
	Dir string
	// Kubeconfig is the path of an admin kubeconfig for the cluster.
	Kubeconfig string
	// Config is the admin REST configuration.
	Config *rest.Config
	// Client is an admin clientset.
	Client kubernetes.Interface

	ownDir   bool
	procs    []*process
	stopOnce sync.Once
}

// Start brings up etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok on free loopback ports, registers one simulated node
// with room for many pods, and returns once the node is Ready and the
// controllers are working. On error nothing is left running.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	c := &Cluster{Dir: opts.Dir}
	if c.Dir == "" {
		if c.Dir, err = os.MkdirTemp("", "localkube-"); err != nil {
			return nil, err
		}
		c.ownDir = true
	} else if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, c.LogTail(30))
			c.Stop()
		}
	}()
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	p, err := writePKI(c.Dir)
	if err != nil {
		return nil, fmt.Errorf("localkube: certificates: %w", err)
	}
	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	etcdClient, etcdPeer, apiPort, kwokPort := ports[0], ports[1], ports[2], ports[3]
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	server := "https://127.0.0.1:" + strconv.Itoa(apiPort)

	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	if err := writeKubeconfig(c.Kubeconfig, server, p); err != nil {
		return nil, err
	}
	if c.Config, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig); err != nil {
		return nil, err
	}
	c.Config.QPS, c.Config.Burst = 200, 400
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return nil, err
	}

	bin := opts.Binaries
	start := func(name string, args ...string) error {
		pr, err := startProcess(name, bin.Path(name), args, filepath.Join(c.Dir, name+".log"))
		if err != nil {
			return err
		}
		c.procs = append(c.procs, pr)
		return nil
	}
	if err := start(Etcd,
		"--data-dir", filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "default="+peerURL,
		"--unsafe-no-fsync", // throwaway data: durability is not worth the disk latency
		"--log-level", "warn",
	); err != nil {
		return nil, err
	}
	if err := start(KubeAPIServer,
		"--etcd-servers", etcdURL,
		"--secure-port", strconv.Itoa(apiPort),
		"--bind-address", "127.0.0.1",
		"--cert-dir", filepath.Join(c.Dir, "apiserver-certs"),
		"--tls-cert-file", p.ServingCert, "--tls-private-key-file", p.ServingKey,
		"--client-ca-file", p.CACert,
		"--token-auth-file", filepath.Join(c.Dir, "tokens.csv"),
		"--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", p.SAPub,
		"--service-account-signing-key-file", p.SAKey,
		"--service-cluster-ip-range", "10.96.0.0/16",
		"--allow-privileged",
		"--profiling=false",
	); err != nil {
		return nil, err
	}
	if err := c.waitAPIServer(ctx); err != nil {
		return nil, err
	}
	kc := c.Kubeconfig
	if err := start(ControllerManager,
		"--kubeconfig", kc, "--authentication-kubeconfig", kc, "--authorization-kubeconfig", kc,
		"--leader-elect=false",
		"--service-account-private-key-file", p.SAKey,
		"--root-ca-file", p.CACert,
		"--secure-port=0",
		"--controllers=*,-nodeipam",
		"--profiling=false",
	); err != nil {
		return nil, err
	}
	if err := start(Scheduler,
		"--kubeconfig", kc, "--authentication-kubeconfig", kc, "--authorization-kubeconfig", kc,
		"--leader-elect=false", "--secure-port=0", "--profiling=false",
	); err != nil {
		return nil, err
	}
	stages := filepath.Join(c.Dir, "kwok-stages.yaml")
	if err := writeClusterStages(bin.StagesFile(), stages); err != nil {
		return nil, err
	}
	if err := start(Kwok,
		"--kubeconfig", kc,
		"--config", stages,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake",
		"--cidr", "10.0.0.1/24",
		"--node-ip", "10.0.0.1",
		"--server-address", "127.0.0.1:"+strconv.Itoa(kwokPort),
	); err != nil {
		return nil, err
	}
	if err := c.registerNode(ctx); err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// waitAPIServer waits until /readyz answers ok, failing at once if a
// component exits. A process start-up offers no event to watch, so this is
// the one place that asks repeatedly.
func (c *Cluster) waitAPIServer(ctx context.Context) error {
	rc, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if err := c.exited(); err != nil {
			return false, err
		}
		body, err := rc.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", nil
	})
}

func (c *Cluster) registerNode(ctx context.Context) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("1000"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        NodeName,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels:      map[string]string{"kubernetes.io/hostname": NodeName, "kubernetes.io/os": "linux", "type": "kwok"},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
	_, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("localkube: register node: %w", err)
	}
	return nil
}

// waitReady waits, by watching, until the node is Ready and the controllers
// have created the default ServiceAccount (so pods can be admitted).
func (c *Cluster) waitReady(ctx context.Context) error {
	nodes := cache.NewListWatchFromClient(c.Client.CoreV1().RESTClient(), "nodes", "", fields.OneTermEqualSelector("metadata.name", NodeName))
	if _, err := watchtools.UntilWithSync(ctx, nodes, &corev1.Node{}, nil, func(ev watch.Event) (bool, error) {
		n, ok := ev.Object.(*corev1.Node)
		if !ok {
			return false, nil
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return len(n.Spec.Taints) == 0, nil
			}
		}
		return false, nil
	}); err != nil {
		return fmt.Errorf("localkube: node %s not ready: %w", NodeName, errors.Join(err, c.exited()))
	}
	return WaitServiceAccount(ctx, c.Client, metav1.NamespaceDefault)
}

// WaitServiceAccount waits until the controllers have created the default
// ServiceAccount of namespace ns, which pods of that namespace need.
func WaitServiceAccount(ctx context.Context, client kubernetes.Interface, ns string) error {
	sas := cache.NewListWatchFromClient(client.CoreV1().RESTClient(), "serviceaccounts", ns, fields.OneTermEqualSelector("metadata.name", "default"))
	_, err := watchtools.UntilWithSync(ctx, sas, &corev1.ServiceAccount{}, nil, func(ev watch.Event) (bool, error) {
		return ev.Type == watch.Added || ev.Type == watch.Modified, nil
	})
	if err != nil {
		return fmt.Errorf("localkube: default service account in %s: %w", ns, err)
	}
	return nil
}

// exited returns an error naming the first component that stopped.
func (c *Cluster) exited() error {
	for _, p := range c.procs {
		select {
		case <-p.done:
			return fmt.Errorf("localkube: %s exited: %v", p.name, p.err)
		default:
		}
	}
	return nil
}

// Done is closed when any component of the cluster exits.
func (c *Cluster) Done() <-chan struct{} {
	ch := make(chan struct{})
	var once sync.Once
	for _, p := range c.procs {
		go func() {
			<-p.done
			once.Do(func() { close(ch) })
		}()
	}
	return ch
}

// Err names the component that exited, if any did.
func (c *Cluster) Err() error { return c.exited() }

// Stop stops every component and, when Start made the directory, removes it.
// It is safe to call more than once.
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() {
		var wg sync.WaitGroup
		for _, p := range c.procs {
			wg.Go(func() { p.stop(2 * time.Second) })
		}
		wg.Wait()
		if c.ownDir {
			_ = os.RemoveAll(c.Dir)
		}
	})
}

// LogTail returns the last n lines of each component's log, for a failing
// test to print.
func (c *Cluster) LogTail(n int) string {
	var out []byte
	for _, p := range c.procs {
		out = fmt.Appendf(out, "----- %s (%s) -----\n%s\n", p.name, p.logPath, tailFile(p.logPath, n))
	}
	return string(out)
}

func writeKubeconfig(path, server string, p pki) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["localkube"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: p.CAPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: p.Token}
	cfg.Contexts["localkube"] = &clientcmdapi.Context{Cluster: "localkube", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "localkube"
	return clientcmd.WriteToFile(*cfg, path)
}

// freePorts asks the kernel for n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("localkube: free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	const max = 64 << 10
	st, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := max64(0, st.Size()-max)
	b, err := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	if err != nil {
		return err.Error()
	}
	lines := 0
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' && i != len(b)-1 {
			lines++
			if lines == n {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

var _ runtime.Object = (*corev1.Node)(nil)
