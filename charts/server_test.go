package charts

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/charts/charttest"
	"github.com/sortie-cd/sortie/cli"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/store/postgres/pgtest"
	"github.com/sortie-cd/sortie/tlstest"
)

const serverChart = "sortie"

var serverMinimal = []string{"--set", "publicURL=https://sortie.example.com"}

// TestServerChartSchema: values that cannot work are refused by the values
// schema, each with a message naming the value.
func TestServerChartSchema(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no public URL", nil, "publicURL"},
		{"TLS without a Secret", append(append([]string{}, serverMinimal...), "--set", "tls.enabled=true"), "existingSecret"},
		{"an unknown store", append(append([]string{}, serverMinimal...), "--set", "database.type=mysql"), "type"},
		{"PostgreSQL without its URL's Secret", append(append([]string{}, serverMinimal...), "--set", "database.type=postgresql"), "existingSecret"},
		{"single sign-on without a client", append(append([]string{}, serverMinimal...), "--set", "sso.issuer=https://idp.example.com"), "clientID"},
		{"an Ingress without a host", append(append([]string{}, serverMinimal...), "--set", "ingress.enabled=true"), "host"},
		{"several replicas on SQLite", append(append([]string{}, serverMinimal...), "--set", "replicaCount=2"), "postgresql"},
		{"a lease TTL that is no duration", append(append([]string{}, serverMinimal...), "--set", "database.type=postgresql", "--set", "database.postgresql.existingSecret=db", "--set", "leaseTTL=soon"), "leaseTTL"},
		{"a misspelt value", append(append([]string{}, serverMinimal...), "--set", "publicUrl=https://x"), "publicUrl"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, err := helm(t, append([]string{"template", "a", serverChart}, c.args...)...)
			if err == nil || !strings.Contains(errOut, "values don't meet the specifications of the schema") || !strings.Contains(errOut, c.want) {
				t.Errorf("helm template with %s: %v\n%s%s\nwant a schema error naming %s", c.name, err, errOut, out, c.want)
			}
		})
	}
}

// TestServerChart: helm lint passes; the minimal and the full renderings
// are accepted by the API server (--dry-run=server); helm install, with a
// PersistentVolume made here (the local cluster has no provisioner),
// creates every object, binds the claim and makes the Deployment available;
// the generated master key is kept on upgrade.
func TestServerChart(t *testing.T) {
	mustHelm(t, append([]string{"lint", "--strict", serverChart}, serverMinimal...)...)
	ns := kubetest.Namespace(t)
	serviceMonitorCRD(t)

	minimal := mustHelm(t, append([]string{"template", "a", serverChart, "--namespace", ns}, serverMinimal...)...)
	got := kinds(t, minimal)
	for _, want := range []string{"Secret/" + ns + "/a-sortie-master-key", "Secret/" + ns + "/a-sortie-bootstrap", "PersistentVolumeClaim/" + ns + "/a-sortie-data", "Deployment/" + ns + "/a-sortie", "Service/" + ns + "/a-sortie"} {
		if !got[want] {
			t.Errorf("the minimal rendering lacks %s: %v", want, got)
		}
	}
	if !strings.Contains(minimal, "--behind-tls-proxy") || !strings.Contains(minimal, "readOnlyRootFilesystem: true") {
		t.Errorf("the minimal rendering: want --behind-tls-proxy and a read-only root filesystem")
	}
	if want := `image: "` + cli.ImageRepository + `:`; !strings.Contains(minimal, want) {
		t.Errorf("the server chart's default image is not make image's repository (%s)", want)
	}
	kubectl(t, minimal, "apply", "--dry-run=server", "-f", "-")

	full := mustHelm(t, "template", "b", serverChart, "--namespace", ns, "-f", "testdata/server-full.yaml")
	got = kinds(t, full)
	for _, want := range []string{"Ingress/" + ns + "/b-sortie", "PodDisruptionBudget/" + ns + "/b-sortie", "ServiceMonitor/" + ns + "/b-sortie"} {
		if !got[want] {
			t.Errorf("the full rendering lacks %s: %v", want, got)
		}
	}
	if got["Secret/"+ns+"/b-sortie-master-key"] || got["Secret/"+ns+"/b-sortie-bootstrap"] || got["PersistentVolumeClaim/"+ns+"/b-sortie-data"] {
		t.Errorf("the full rendering (existing master key, bootstrap credential and claim) made its own: %v", got)
	}
	for _, want := range []string{"--tls-cert-file=/etc/sortie/tls/tls.crt", "--oidc-issuer=https://idp.example.com", "scheme: HTTPS", "defaultMode: 0440", "secretName: sortie-bootstrap"} {
		if !strings.Contains(full, want) {
			t.Errorf("the full rendering lacks %s", want)
		}
	}
	kubectl(t, full, "apply", "--dry-run=server", "-f", "-")
	// The PostgreSQL URL reaches the server from its Secret, as
	// SORTIE_DATABASE_URL (never an argument, which ps would show).
	p := charttest.Container(t, full, map[string]map[string][]byte{
		"sortie-tls": {"tls.crt": []byte("c"), "tls.key": []byte("k")}, "sortie-master-key": {"key": []byte("m")},
		"sortie-bootstrap": {"client-id": []byte("i"), "client-secret": []byte("s")}, "sortie-oidc": {"secret": []byte("o")}, "sortie-db": {"dsn": []byte("postgres://sortie:pw@db:5432/sortie")},
	})
	if !slices.Contains(p.Env, "SORTIE_DATABASE_URL=postgres://sortie:pw@db:5432/sortie") || strings.Contains(strings.Join(p.Args, " "), "postgres://") {
		t.Errorf("the full rendering with PostgreSQL: env %q, args %q; want SORTIE_DATABASE_URL from Secret sortie-db key dsn", p.Env, p.Args)
	}

	// A PersistentVolume for the claim: the local cluster has no provisioner.
	kubectl(t, fmt.Sprintf(`apiVersion: v1
kind: PersistentVolume
metadata: {name: %[1]s-data}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  hostPath: {path: /tmp/%[1]s}
  claimRef: {namespace: %[1]s, name: c-sortie-data}
`, ns), "apply", "-f", "-")
	install := append([]string{"--namespace", ns, "--wait", "--timeout", "3m", "--set", "persistence.storageClass=manual", "--set", "podDisruptionBudget.enabled=true"}, serverMinimal...)
	mustHelm(t, append([]string{"install", "c", serverChart}, install...)...)
	c := kubetest.Client(t)
	ctx := context.Background()
	// helm's --wait may return before the Deployment's status says so
	// (seen on a loaded machine); the cluster must then get there.
	kubetest.Until(t, ns, "c-sortie is available", 2*time.Minute, func() bool {
		d, err := c.AppsV1().Deployments(ns).Get(ctx, "c-sortie", metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas == 1
	})
	d, err := c.AppsV1().Deployments(ns).Get(ctx, "c-sortie", metav1.GetOptions{})
	if err != nil || d.Status.AvailableReplicas != 1 {
		t.Fatalf("the server Deployment after helm install --wait: %v %+v", err, d.Status)
	}
	if pvc, err := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "c-sortie-data", metav1.GetOptions{}); err != nil || pvc.Status.Phase != corev1.ClaimBound {
		t.Errorf("the data claim: %v %+v", err, pvc.Status)
	}
	if _, err := c.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "c-sortie", metav1.GetOptions{}); err != nil {
		t.Error(err)
	}
	key := func() string {
		s, err := c.CoreV1().Secrets(ns).Get(ctx, "c-sortie-master-key", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// SORTIE_MASTER_KEY is the base64 of 32 random bytes.
		if raw, err := base64.StdEncoding.DecodeString(string(s.Data["master-key"])); err != nil || len(raw) != 32 {
			t.Fatalf("the generated master key is not the base64 of 32 bytes (%d bytes, %v)", len(raw), err)
		}
		return string(s.Data["master-key"])
	}
	bootstrap := func() map[string][]byte {
		s, err := c.CoreV1().Secrets(ns).Get(ctx, "c-sortie-bootstrap", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := auth.ParseGiven(string(s.Data[auth.GivenClientIDFile]), string(s.Data[auth.GivenClientSecretFile])); err != nil {
			t.Fatalf("the generated bootstrap credential is not one the server takes: %v", err)
		}
		return s.Data
	}
	before, beforeCred := key(), bootstrap()
	mustHelm(t, append([]string{"upgrade", "c", serverChart, "--set", "log.level=debug"}, install...)...)
	if key() != before {
		t.Error("helm upgrade replaced the generated master key: every secret it wrapped would be lost")
	}
	if !maps.EqualFunc(bootstrap(), beforeCred, bytes.Equal) {
		t.Error("helm upgrade replaced the generated bootstrap credential")
	}
}

// TestServerAsTheChartRendersIt: kwok pods run no containers, so this test
// runs the real `sortie server` with exactly the arguments and environment
// the chart renders with TLS on: the TLS Secret's files where they are
// mounted, with the mode the chart gives them (under a directory of the
// test standing for the container's root), the master key from the
// rendered Secret, the data volume as an empty directory. One thing
// differs: --addr keeps its host but takes a free port. The server starts,
// serves TLS and HTTP/2 with the test CA's certificate, and the bootstrap
// credential of the chart's generated Secret gets a token.
func TestServerAsTheChartRendersIt(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir)
	leaf := ca.Issue(t, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	rendered := mustHelm(t, append([]string{"template", "s", serverChart, "--namespace", "sortie", "--set", "tls.enabled=true", "--set", "tls.existingSecret=sortie-tls"}, serverMinimal...)...)
	p := charttest.Container(t, rendered, map[string]map[string][]byte{"sortie-tls": {"tls.crt": read(t, leaf.CertFile), "tls.key": read(t, leaf.KeyFile)}})
	port, log := startRendered(t, p)
	base := "https://127.0.0.1:" + port
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: true}}
	resp, err := hc.Get(base + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz over TLS: %v\n%s", err, log)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Errorf("GET /readyz: %d %s, HSTS %q", resp.StatusCode, resp.Proto, resp.Header.Get("Strict-Transport-Security"))
	}
	// The first admin credential is the chart's generated bootstrap
	// Secret, mounted where the server reads it; nothing is written to
	// the data volume.
	cred, err := auth.ReadGiven(filepath.Join(p.Root, "etc/sortie/bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(p.Root, "var/lib/sortie", auth.AdminCredentialsFile)); !os.IsNotExist(err) {
		t.Errorf("the server wrote %s beside the chart's bootstrap Secret (%v)", auth.AdminCredentialsFile, err)
	}
	cf := auth.CredentialsFile{ClientID: cred.ClientID, ClientSecret: cred.ClientSecret}
	resp, err = hc.PostForm(base+auth.TokenPath, url.Values{"grant_type": {"client_credentials"}, "client_id": {cf.ClientID}, "client_secret": {cf.ClientSecret}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("token with the bootstrap credential: %d", resp.StatusCode)
	}
}

// startRendered runs the real `sortie server` as p, the process a pod of
// the rendered chart would run (its --addr keeps its host but takes a free
// port), and returns the port it listens on and its log so far.
func startRendered(t *testing.T, p *charttest.Process) (string, string) {
	t.Helper()
	var args []string
	for _, a := range p.Args {
		if v, ok := strings.CutPrefix(a, "--addr="); ok {
			host, _, _ := strings.Cut(v, ":")
			a = "--addr=" + host + ":0"
		}
		args = append(args, a)
	}
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SORTIE_") {
			env = append(env, e)
		}
	}
	env = append(env, p.Env...)
	cmd := exec.Command(sortieBinary(t), args...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	// The chart logs JSON.
	listening := regexp.MustCompile(`"msg":"sortie server listening","addr":"[^"]*:(\d+)"`)
	lines := make(chan string, 256)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	var port, log string
	timeout := time.After(2 * time.Minute)
	for port == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the server exited before listening:\n%s", log)
			}
			log += line + "\n"
			if m := listening.FindStringSubmatch(line); m != nil {
				port = m[1]
			}
		case <-timeout:
			t.Fatalf("the server did not listen within 2 minutes:\n%s", log)
		}
	}
	return port, log
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sortieBinary builds ./cmd/sortie once per test binary.
func sortieBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		d, err := os.MkdirTemp("", "sortie-charts-")
		if err != nil {
			buildErr = err
			return
		}
		bin = filepath.Join(d, "sortie")
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/sortie-cd/sortie/cmd/sortie").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bin
}

var (
	buildOnce sync.Once
	bin       string
	buildErr  error
)

// TestServerReplicasAsTheChartRendersThem: with database.type postgresql
// and replicaCount 2 the chart renders two replicas that may overlap in a
// rollout, spread over nodes, each named by its pod, with no claim (the
// database keeps everything); two real `sortie server` processes run as
// two of its pods would, on one real PostgreSQL database: both start, a
// token one issued is good on the other (the signing keys are in the
// database, sealed under the chart's master key), and each records itself
// among the live replicas under its pod's name.
func TestServerReplicasAsTheChartRendersThem(t *testing.T) {
	rendered := mustHelm(t, append([]string{"template", "r", serverChart, "--namespace", "sortie", "--set", "database.type=postgresql",
		"--set", "database.postgresql.existingSecret=sortie-db", "--set", "replicaCount=2", "--set", "leaseTTL=3s"}, serverMinimal...)...)
	got := kinds(t, rendered)
	if got["PersistentVolumeClaim/sortie/r-sortie-data"] {
		t.Error("the replicas on PostgreSQL render a claim: a ReadWriteOnce volume cannot be shared by replicas on several nodes")
	}
	for _, want := range []string{"replicas: 2", "type: RollingUpdate", "maxUnavailable: 0", "podAntiAffinity:", "fieldPath: metadata.name", "--lease-ttl=3s"} {
		if !strings.Contains(rendered, want) {
			t.Errorf("the rendering with two replicas lacks %q", want)
		}
	}
	kubectl(t, strings.ReplaceAll(rendered, "namespace: sortie", "namespace: "+kubetest.Namespace(t)), "apply", "--dry-run=server", "-f", "-")

	dbURL := pgtest.Database(t)
	db := map[string]map[string][]byte{"sortie-db": {"url": []byte(dbURL)}}
	a, b := charttest.Container(t, rendered, db), charttest.Container(t, rendered, db)
	if a.PodName == b.PodName {
		t.Fatalf("two pods named %s", a.PodName)
	}
	portA, logA := startRendered(t, a)
	portB, logB := startRendered(t, b)
	hc := &http.Client{Timeout: 30 * time.Second}
	cred, err := auth.ReadGiven(filepath.Join(a.Root, "etc/sortie/bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.PostForm("http://127.0.0.1:"+portA+auth.TokenPath, url.Values{"grant_type": {"client_credentials"}, "client_id": {cred.ClientID}, "client_secret": {cred.ClientSecret}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || tok.AccessToken == "" {
		t.Fatalf("token from replica A: %d %v\n%s", resp.StatusCode, err, logA)
	}
	req, _ := http.NewRequest("GET", "http://127.0.0.1:"+portB+"/api/v1/pipelines", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("replica B answers %d to a token replica A issued\n%s", resp.StatusCode, logB)
	}

	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// Each replica records itself when it claims, every third of the
	// lease's TTL.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute)
	for {
		var ids []string
		rows, err := conn.Query(t.Context(), "SELECT id FROM replicas WHERE live_until > $1", time.Now().UnixNano())
		if err == nil {
			ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(ids, a.PodName) && slices.Contains(ids, b.PodName) {
			break
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("the live replicas are %q, want the pods %s and %s", ids, a.PodName, b.PodName)
		}
	}
}
