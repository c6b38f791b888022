package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/egress"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/server"
)

// egressServer is a real server (in-process cluster executor on the shared
// cluster) whose webhooks may reach what allow allows.
type egressServer struct {
	t     *testing.T
	url   string
	admin *client.Client
	ns    string
}

func newEgressServer(t *testing.T, allow []netip.Prefix) *egressServer {
	t.Helper()
	srv := clienttest.Start(t, server.Config{DataDir: filepath.Join(t.TempDir(), "data"), EgressAllow: allow,
		Kubeconfig: kubetest.Cluster(t).Kubeconfig, Account: "local"})
	c, err := client.New(client.Options{Server: srv.URL, ClientID: srv.Credentials.ClientID, ClientSecret: srv.Credentials.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	return &egressServer{t: t, url: srv.URL, admin: c, ns: kubetest.Namespace(t)}
}

// hook deploys with a webhook to uri (with the header given, when not
// empty) run before the deployment, and waits until that step has ended.
// It returns the step and the pipeline.
func (s *egressServer) hook(uri, header string) (pipeline.StepState, *api.PipelineView) {
	s.t.Helper()
	headers := ""
	if header != "" {
		headers = "    headers:\n      - key: Authorization\n        value: '" + header + "'\n"
	}
	file := fmt.Sprintf(`version: v1
kind: kubernetes
application: egress
targets:
  prod:
    account: local
    namespace: %s
    strategy: canary
    constraints:
      beforeDeployment:
        - runWebhook: {name: probe}
strategies:
  canary:
    canary:
      steps:
        - setWeight: {weight: 100}
webhooks:
  - name: probe
    method: GET
    uriTemplate: '%s'
    disableCallback: true
    retryCount: 2
%smanifests:
  - inline: |
%s`, s.ns, uri, headers, kubetest.Inline(kubetest.SampleApp("egress", 1, "example/egress:v1")))
	res, err := s.admin.StartPipeline(context.Background(), api.StartRequest{FileName: "deploy.yml", File: file})
	if err != nil {
		s.t.Fatalf("start: %v", err)
	}
	var st pipeline.StepState
	p := clienttest.WaitPipeline(s.t, s.admin, res.PipelineID, "the webhook step ends", func(p *api.PipelineView) bool {
		for _, x := range p.Targets[0].Steps {
			if x.ID == "beforeDeployment/0" && x.Status.Terminal() {
				st = x
				return true
			}
		}
		return p.Status.Terminal()
	})
	if st.ID == "" {
		s.t.Fatalf("no webhook step ended:\n%s", clienttest.Dump(p))
	}
	return st, p
}

// target is a stand-in on ip whose answer, were it read, would show.
type target struct {
	srv  *httptest.Server
	hits atomic.Int32
	auth atomic.Value
}

func newTarget(t *testing.T, ip string, h http.HandlerFunc) *target {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	x := &target{}
	x.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x.hits.Add(1)
		x.auth.Store(r.Header.Get("Authorization"))
		h(w, r)
	}))
	x.srv.Listener.Close()
	x.srv.Listener = ln
	x.srv.Start()
	t.Cleanup(x.srv.Close)
	return x
}

const internalBody = "INTERNAL-ONLY: aws_secret_access_key=abc"

func internal(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusInternalServerError)
	io.WriteString(w, internalBody)
}

func ok(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }

// refused checks that the step failed at once with the egress policy's
// refusal (reason given), showing nothing the target would have answered.
func refused(t *testing.T, what string, st pipeline.StepState, p *api.PipelineView, reason string) {
	t.Helper()
	dump := clienttest.Dump(p)
	if st.Status != pipeline.StatusFailed || !strings.Contains(st.Message, "refused by the egress policy") || !strings.Contains(st.Message, reason) {
		t.Errorf("%s: step %s %q, want failed, refused as %s\n%s", what, st.Status, st.Message, reason, dump)
	}
	if strings.Contains(st.Message, "after") || strings.Contains(dump, internalBody) {
		t.Errorf("%s: the refusal was retried or shows the target's body:\n%s", what, dump)
	}
}

// TestWebhookEgressPolicy: a deployer's webhook to loopback, to the server's
// own API or to the cloud metadata address is refused at connect time by
// default, with a step message that says so and nothing of the target's.
func TestWebhookEgressPolicy(t *testing.T) {
	t.Parallel()
	x := newTarget(t, "127.0.0.1", internal)
	s := newEgressServer(t, []netip.Prefix{})
	st, p := s.hook(x.srv.URL+"/admin", "")
	refused(t, "loopback", st, p, egress.ReasonLoopback)
	if n := x.hits.Load(); n != 0 {
		t.Fatalf("the loopback target was called %d times", n)
	}
	if !strings.Contains(st.Message, "sortie server --egress-allow 127.0.0.1/32") {
		t.Errorf("the refusal does not say how to allow it: %q", st.Message)
	}
	// The same client refuses the metadata address before any packet
	// leaves (a net.Dialer Control func runs before connect).
	st, p = s.hook("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "")
	refused(t, "metadata", st, p, egress.ReasonMetadata)
	st, p = s.hook("http://[fd00:ec2::254]/latest/meta-data/", "")
	refused(t, "metadata (IPv6)", st, p, egress.ReasonMetadata)

	// With loopback allowed, the server's own API stays refused.
	self := newEgressServer(t, egress.Loopback)
	st, p = self.hook(self.url+api.Prefix+"/pipelines", "")
	refused(t, "the server's own address", st, p, egress.ReasonSelf)
}

// TestWebhookRedirectToLoopback: an allowed host redirecting to loopback is
// refused at connect time; --egress-allow 127.0.0.0/8 permits it.
func TestWebhookRedirectToLoopback(t *testing.T) {
	t.Parallel()
	inner := newTarget(t, "127.0.0.2", internal)
	outer := newTarget(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, inner.srv.URL+"/admin", http.StatusFound)
	})
	only := newEgressServer(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	st, p := only.hook(outer.srv.URL+"/hook", "")
	refused(t, "a redirect to loopback", st, p, egress.ReasonLoopback)
	if outer.hits.Load() != 1 || inner.hits.Load() != 0 {
		t.Errorf("calls: outer %d, inner %d; want the allowed host only", outer.hits.Load(), inner.hits.Load())
	}
	allowed := newEgressServer(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	st, p = allowed.hook(outer.srv.URL+"/hook", "")
	if inner.hits.Load() == 0 || strings.Contains(st.Message, "egress policy") || !strings.Contains(st.Message, "answered 500") {
		t.Errorf("with --egress-allow 127.0.0.0/8 the redirect was not followed: step %s %q (inner hit %d times)\n%s",
			st.Status, st.Message, inner.hits.Load(), clienttest.Dump(p))
	}
}

// TestRestrictedSecretInWebhook: a deployer renders a secret an admin
// restricted to one host into a webhook to another host: refused before
// the call; to its allowed host it goes through.
func TestRestrictedSecretInWebhook(t *testing.T) {
	t.Parallel()
	x := newTarget(t, "127.0.0.1", ok)
	s := newEgressServer(t, egress.Loopback)
	ctx := context.Background()
	if _, err := s.admin.PutSecret(ctx, "slack-token", api.PutSecretRequest{Value: "xoxb-secret-value", AllowedHosts: []string{"hooks.slack.com"}}); err != nil {
		t.Fatal(err)
	}
	st, p := s.hook(x.srv.URL+"/collect", "Bearer {{secrets.slack-token}}")
	if st.Status != pipeline.StatusFailed || !strings.Contains(st.Message, "not an allowed host of secret slack-token (hooks.slack.com)") || x.hits.Load() != 0 {
		t.Fatalf("restricted secret to another host: step %s %q, %d calls\n%s", st.Status, st.Message, x.hits.Load(), clienttest.Dump(p))
	}
	if strings.Contains(clienttest.Dump(p), "xoxb-secret-value") {
		t.Errorf("the secret's value shows:\n%s", clienttest.Dump(p))
	}
	host := strings.TrimPrefix(x.srv.URL, "http://")
	if _, err := s.admin.PutSecret(ctx, "slack-token", api.PutSecretRequest{Value: "xoxb-secret-value", AllowedHosts: []string{host}}); err != nil {
		t.Fatal(err)
	}
	st, p = s.hook(x.srv.URL+"/collect", "Bearer {{secrets.slack-token}}")
	if st.Status != pipeline.StatusSucceeded || x.hits.Load() != 1 || x.auth.Load() != "Bearer xoxb-secret-value" {
		t.Errorf("restricted secret to its allowed host %s: step %s %q, %d calls\n%s", host, st.Status, st.Message, x.hits.Load(), clienttest.Dump(p))
	}
}
