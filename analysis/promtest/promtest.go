package promtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/crypto/bcrypt"
)

// Prometheus is a running Prometheus and the exporter it scrapes.
type Prometheus struct {
	// URL is Prometheus's base URL.
	URL string
	// Registry is what the exporter serves; register the test's metrics.
	Registry *prometheus.Registry

	mu      sync.Mutex
	scrapes int
	changed chan struct{} // closed and replaced on every scrape
	log     *os.File
}

// Options change the Prometheus StartWith starts.
type Options struct {
	// BasicAuth, when not empty, makes Prometheus's web API and UI demand
	// one of these users (name to password) with HTTP basic auth: the
	// passwords go bcrypt-hashed into a --web.config.file, as Prometheus
	// wants them. Scrapes are unaffected (Prometheus sends them).
	BasicAuth map[string]string
}

// Start starts Prometheus scraping a new exporter every second and waits
// until it has scraped twice (so it is up and has samples). A missing
// prometheus binary fails the test: CI installs it (.ci/run).
func Start(t testing.TB) *Prometheus {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, o Options) *Prometheus {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("promtest: the prometheus binary is not installed (apt-get install prometheus; .ci/run installs it): %v", err)
	}
	p := &Prometheus{Registry: prometheus.NewRegistry(), changed: make(chan struct{})}
	metrics := promhttp.HandlerFor(p.Registry, promhttp.HandlerOpts{})
	exporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		metrics.ServeHTTP(w, r)
		p.mu.Lock()
		p.scrapes++
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}))
	t.Cleanup(exporter.Close)

	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: app
    static_configs:
      - targets: [%q]
`, strings.TrimPrefix(exporter.URL, "http://"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	p.URL = "http://" + addr
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	p.log = logf
	args := []string{"--config.file", filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path", filepath.Join(dir, "data"), "--web.listen-address", addr}
	if len(o.BasicAuth) > 0 {
		web := "basic_auth_users:\n"
		for user, password := range o.BasicAuth {
			// The lowest cost: Prometheus checks the hash on every request.
			hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			web += fmt.Sprintf("  %q: %q\n", user, hash)
		}
		path := filepath.Join(dir, "web.yml")
		if err := os.WriteFile(path, []byte(web), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--web.config.file", path)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("promtest: start prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("prometheus log:\n%s", tail(string(b), 30))
		}
		logf.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	select {
	case <-exited:
		b, _ := os.ReadFile(logf.Name())
		t.Fatalf("promtest: prometheus exited:\n%s", tail(string(b), 30))
	default:
	}
	if err := p.Scraped(ctx, 2); err != nil {
		b, _ := os.ReadFile(logf.Name())
		t.Fatalf("promtest: prometheus did not scrape the exporter: %v\n%s", err, tail(string(b), 30))
	}
	return p
}

// Scraped waits until the exporter has served n more scrapes. After a
// change of a metric, Scraped(ctx, 2) means Prometheus has stored the new
// value: it begins a scrape only after storing the previous one.
func (p *Prometheus) Scraped(ctx context.Context, n int) error {
	p.mu.Lock()
	target := p.scrapes + n
	p.mu.Unlock()
	for {
		p.mu.Lock()
		done, ch := p.scrapes >= target, p.changed
		p.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitValue waits until Prometheus itself answers the instant query at
// time at with want (the first sample of the result), looking again after
// each scrape: what a test needs before a judgment run reads a value it
// has just set, on a machine of any load.
func (p *Prometheus) WaitValue(ctx context.Context, query string, at time.Time, want float64) error {
	for {
		got, err := p.value(ctx, query, at)
		if err == nil && got == want {
			return nil
		}
		if err := p.Scraped(ctx, 1); err != nil {
			return fmt.Errorf("promtest: %s = %v (%v), want %v: %w", query, got, err, want, ctx.Err())
		}
	}
}

func (p *Prometheus) value(ctx context.Context, query string, at time.Time) (float64, error) {
	q := url.Values{"query": {query}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/api/v1/query?"+q.Encode(), nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, err
	}
	if len(body.Data.Result) == 0 {
		return 0, fmt.Errorf("no result")
	}
	s, _ := body.Data.Result[0].Value[1].(string)
	return strconv.ParseFloat(s, 64)
}
