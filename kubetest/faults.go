package kubetest

import (
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Fault is what FaultProxy does to one request instead of passing it on.
type Fault struct {
	code   int                 // answer with a Status of this code and reason
	reason metav1.StatusReason // (code 0: reset the connection)
	outage time.Duration       // from this request on, reset every request
}

// The faults a test can schedule.
var (
	// Unavailable answers 503 with a ServiceUnavailable Status.
	Unavailable = Fault{code: http.StatusServiceUnavailable, reason: metav1.StatusReasonServiceUnavailable}
	// TooManyRequests answers 429 (without Retry-After, so client-go does
	// not retry it itself).
	TooManyRequests = Fault{code: http.StatusTooManyRequests, reason: metav1.StatusReasonTooManyRequests}
	// Forbidden answers 403 with a Forbidden Status.
	Forbidden = Fault{code: http.StatusForbidden, reason: metav1.StatusReasonForbidden}
	// Reset resets the request's connection before any answer.
	Reset = Fault{}
)

// Outage is an outage of all requests for d, starting with the request it
// is given to: that one and every request until d has passed have their
// connection reset, and connections open when it starts (watches) are cut.
func Outage(d time.Duration) Fault { return Fault{outage: d} }

// FaultProxy is a TLS reverse proxy in front of the cluster's API server
// whose faults the test schedules: requests pass through to the real API
// server (with the cluster's admin credentials) unless a fault is due.
type FaultProxy struct {
	srv *httptest.Server
	cfg *rest.Config

	mu        sync.Mutex
	due       []scheduled
	downUntil time.Time
	injected  map[string]int // by fault name, for the test to check
}

type scheduled struct {
	match func(*http.Request) bool
	fault Fault
}

// NewFaultProxy starts a FaultProxy in front of the shared cluster, closed
// when the test ends.
func NewFaultProxy(t testing.TB) *FaultProxy {
	t.Helper()
	upstream := Config(t)
	target, err := url.Parse(upstream.Host)
	if err != nil {
		t.Fatalf("kubetest: API server URL: %v", err)
	}
	transport, err := rest.TransportFor(upstream)
	if err != nil {
		t.Fatalf("kubetest: API server transport: %v", err)
	}
	p := &FaultProxy{injected: map[string]int{}}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport:     transport,
		FlushInterval: -1, // watches stream
	}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f, ok := p.fault(r); ok {
			p.inject(w, f)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	p.cfg = &rest.Config{
		Host:            p.srv.URL,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		QPS:             upstream.QPS,
		Burst:           upstream.Burst,
		Timeout:         upstream.Timeout,
	}
	return p
}

// Config is a REST configuration that reaches the API server through the
// proxy.
func (p *FaultProxy) Config() *rest.Config { return rest.CopyConfig(p.cfg) }

// Kubeconfig writes a kubeconfig file that reaches the API server through
// the proxy, for a process the test starts (`sortie agent --kubeconfig`),
// and returns its path.
func (p *FaultProxy) Kubeconfig(t testing.TB) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["faults"] = &clientcmdapi.Cluster{Server: p.cfg.Host, CertificateAuthorityData: p.cfg.CAData}
	cfg.AuthInfos["none"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["faults"] = &clientcmdapi.Context{Cluster: "faults", AuthInfo: "none"}
	cfg.CurrentContext = "faults"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatalf("kubetest: write the proxy's kubeconfig: %v", err)
	}
	return path
}

// Inject schedules faults for the next requests match accepts, one request
// each, in order (after those scheduled before).
func (p *FaultProxy) Inject(match func(*http.Request) bool, faults ...Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range faults {
		p.due = append(p.due, scheduled{match, f})
	}
}

// Injected reports how many requests got each fault: "503", "429", "403",
// "reset" (outages' requests included), "outage" (outages begun).
func (p *FaultProxy) Injected() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.injected {
		out[k] = v
	}
	return out
}

// Pending reports how many scheduled faults no request has met yet.
func (p *FaultProxy) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.due)
}

// fault returns the fault due for r, if any.
func (p *FaultProxy) fault(r *http.Request) (Fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Now().Before(p.downUntil) {
		return Reset, true
	}
	for i, s := range p.due {
		if s.match == nil || s.match(r) {
			p.due = append(p.due[:i:i], p.due[i+1:]...)
			if s.fault.outage > 0 {
				p.downUntil = time.Now().Add(s.fault.outage)
				p.injected["outage"]++
				// Cut what is open (watches) too; new connections are
				// reset until the outage ends.
				go p.srv.CloseClientConnections()
			}
			return s.fault, true
		}
	}
	return Fault{}, false
}

func (p *FaultProxy) inject(w http.ResponseWriter, f Fault) {
	if f.code == 0 {
		p.count("reset")
		reset(w)
		return
	}
	p.count(strconv.Itoa(f.code))
	st := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Code: int32(f.code), Reason: f.reason,
		Message: "injected fault: " + http.StatusText(f.code),
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.code)
	_ = json.NewEncoder(w).Encode(st)
}

func (p *FaultProxy) count(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.injected[name]++
}

// reset closes the request's connection with a TCP reset (SO_LINGER 0).
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	raw := conn
	if nc, ok := conn.(interface{ NetConn() net.Conn }); ok {
		raw = nc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = raw.Close()
}
