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
	// HonorLabels keeps the job (and instance) labels the exporter's
	// series carry, as a Prometheus scraping through a federation or a
	// pushgateway does, instead of renaming them exported_job: how a test
	// serves series of several jobs (kubelet, kube-state-metrics) from one
	// exporter.
	HonorLabels bool
	// Scrape are more targets, each a URL whose path is the metrics path
	// (http://127.0.0.1:8080/metrics), scraped as job "scraped-N" (N its index) every
	// second too: how a test has Prometheus read a real server.
	Scrape []string
	// RuleFiles are rule files (alerting and recording rules) Prometheus
	// loads; one that does not load fails the start.
	RuleFiles []string
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
  evaluation_interval: 1s
scrape_configs:
  - job_name: app
    honor_labels: %t
    static_configs:
      - targets: [%q]
`, o.HonorLabels, strings.TrimPrefix(exporter.URL, "http://"))
	for i, target := range o.Scrape {
		u, err := url.Parse(target)
		if err != nil {
			t.Fatalf("promtest: scrape target %q: %v", target, err)
		}
		config += fmt.Sprintf("  - job_name: scraped-%d\n    scheme: %s\n    metrics_path: %q\n    static_configs:\n      - targets: [%q]\n", i, u.Scheme, u.Path, u.Host)
	}
	if len(o.RuleFiles) > 0 {
		config += "rule_files:\n"
		for _, f := range o.RuleFiles {
			config += fmt.Sprintf("  - %q\n", f)
		}
	}
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
	var body struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	q := url.Values{"query": {query}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	if err := p.get(ctx, q, &body); err != nil {
		return 0, err
	}
	if len(body.Data.Result) == 0 {
		return 0, fmt.Errorf("no result")
	}
	s, _ := body.Data.Result[0].Value[1].(string)
	return strconv.ParseFloat(s, 64)
}

// get runs an instant query and decodes Prometheus's answer into out.
func (p *Prometheus) get(ctx context.Context, q url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/api/v1/query?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

// Series runs the instant query now and returns how many series it
// answered (1 for a scalar), or why Prometheus refused it.
func (p *Prometheus) Series(ctx context.Context, query string) (int, error) {
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := p.get(ctx, url.Values{"query": {query}}, &body); err != nil {
		return 0, err
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("promtest: query %s: %s", query, body.Error)
	}
	if body.Data.ResultType == "scalar" || body.Data.ResultType == "string" {
		return 1, nil
	}
	var series []json.RawMessage
	if err := json.Unmarshal(body.Data.Result, &series); err != nil {
		return 0, err
	}
	return len(series), nil
}

// WaitSeries waits until the instant query answers at least one series,
// looking again after each scrape.
func (p *Prometheus) WaitSeries(ctx context.Context, query string) error {
	for {
		n, err := p.Series(ctx, query)
		if err == nil && n > 0 {
			return nil
		}
		if e := p.Scraped(ctx, 1); e != nil {
			return fmt.Errorf("promtest: %s answered no series (%v): %w", query, err, e)
		}
	}
}
