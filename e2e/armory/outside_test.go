package armory

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sortie-cd/sortie/agent"
	"github.com/sortie-cd/sortie/tlstest"
)

// outside is the world the files' URLs name, which cannot be reached from
// here: api.github.com (a workflow dispatch), raw.githubusercontent.com
// (the quick-start's manifests), Jenkins (jenkins.jenkins:8080, inside
// the cluster's network) and the command hook of deploy-w-argo.yml
// (cmd-hook.borealis-demo-agent-prod:8081). The processes that would call
// them (the server for direct webhooks, the agents for relayed ones, the
// CLI for manifests) get it as their HTTP(S)_PROXY: plain http requests it
// answers itself, an https CONNECT it sends to a local TLS server holding
// a certificate for those names from a test CA (given to the server as
// SSL_CERT_FILE, to the CLI as --manifest-ca-file). So the URLs stay as
// written. Each stand-in answers as the real service would and then, like
// the workflow or job the file's author set up, posts success to the
// callback URI the request carried. Any other host is refused and fails
// the test.
type outside struct {
	t      *testing.T
	proxy  *httptest.Server
	tls    *httptest.Server
	caFile string
	// callback posts a webhook's verdict to a callback URI.
	callback func(uri, message string)
	// manifests is the folder raw.githubusercontent.com serves at
	// /armory-io/cdaas-examples/main/.
	manifests string
	secrets   map[string]string

	mu    sync.Mutex
	calls []call
}

// call is one request a stand-in answered.
type call struct {
	Host, Method, Path string
	Query              string
	// RelayedBy is the agent that relayed it (empty: sent directly).
	RelayedBy string
	Body      string
}

func newOutside(t *testing.T, cdaasExamples string, secrets map[string]string) *outside {
	o := &outside{t: t, manifests: cdaasExamples, secrets: secrets}
	ca := tlstest.NewCA(t, t.TempDir())
	dir := t.TempDir()
	leaf := ca.Issue(t, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), "api.github.com", "raw.githubusercontent.com")
	cert, err := tls.LoadX509KeyPair(leaf.CertFile, leaf.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	o.caFile = ca.File
	o.tls = httptest.NewUnstartedServer(http.HandlerFunc(o.serve))
	o.tls.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	o.tls.StartTLS()
	t.Cleanup(o.tls.Close)
	o.proxy = httptest.NewServer(http.HandlerFunc(o.forward))
	t.Cleanup(o.proxy.Close)
	return o
}

// env is what a process that reaches the outside gets.
func (o *outside) env() []string {
	return []string{"HTTPS_PROXY=" + o.proxy.URL, "HTTP_PROXY=" + o.proxy.URL, "NO_PROXY=", "SSL_CERT_FILE=" + o.caFile}
}

// forward is the proxy: a CONNECT goes to the TLS stand-ins, an absolute
// http URL to the stand-ins directly.
func (o *outside) forward(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		host, _, _ := net.SplitHostPort(r.Host)
		if host != "api.github.com" && host != "raw.githubusercontent.com" {
			o.refuse(w, r)
			return
		}
		up, err := net.Dial("tcp", o.tls.Listener.Addr().String())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
		go func() {
			io.Copy(up, buf)
			up.(*net.TCPConn).CloseWrite()
		}()
		io.Copy(conn, up)
		conn.Close()
		up.Close()
		return
	}
	if !r.URL.IsAbs() {
		o.refuse(w, r)
		return
	}
	o.serve(w, r)
}

func (o *outside) refuse(w http.ResponseWriter, r *http.Request) {
	o.t.Errorf("a request to a host no stand-in answers: %s %s", r.Method, r.Host)
	http.Error(w, "no stand-in for "+r.Host, http.StatusBadGateway)
}

func (o *outside) record(r *http.Request, body []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, call{Host: r.Host, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, RelayedBy: r.Header.Get(agent.RelayedByHeader), Body: string(body)})
}

// callsOf returns the requests a pipeline made (its id is in the
// callback URI each carries), by host.
func (o *outside) callsOf(pipeline string) map[string][]call {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string][]call{}
	for _, c := range o.calls {
		if strings.Contains(c.Body, pipeline) || strings.Contains(c.Query, pipeline) {
			out[c.Host] = append(out[c.Host], c)
		}
	}
	return out
}

func (o *outside) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	switch r.Host {
	case "raw.githubusercontent.com":
		o.raw(w, r)
	case "api.github.com":
		o.record(r, body)
		o.github(w, r, body)
	case "jenkins.jenkins:8080":
		o.record(r, body)
		o.jenkins(w, r)
	case "cmd-hook.borealis-demo-agent-prod:8081":
		o.record(r, body)
		o.cmdHook(w, r, body)
	default:
		o.refuse(w, r)
	}
}

// raw serves the quick-start's manifests as GitHub serves a repository's
// files.
func (o *outside) raw(w http.ResponseWriter, r *http.Request) {
	rel, ok := strings.CutPrefix(r.URL.Path, "/armory-io/cdaas-examples/main/")
	if !ok || r.Method != http.MethodGet || strings.Contains(rel, "..") {
		http.NotFound(w, r)
		return
	}
	b, err := os.ReadFile(filepath.Join(o.manifests, filepath.FromSlash(rel)))
	if err != nil {
		http.Error(w, "404: Not Found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(b)
}

// github answers POST /repos/ORG/REPO/dispatches (a repository_dispatch) as
// GitHub does, 204 after checking the token, then runs the "workflow":
// it posts success to client_payload.callbackUri.
func (o *outside) github(w http.ResponseWriter, r *http.Request, body []byte) {
	want := "/repos/" + o.secrets["github_org"] + "/" + o.secrets["github_repository"] + "/dispatches"
	wantAlt := "/repos/" + o.secrets["github_org"] + "/" + o.secrets["github_repo"] + "/dispatches"
	if r.Method != http.MethodPost || (r.URL.Path != want && r.URL.Path != wantAlt) {
		http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
		return
	}
	auth := r.Header.Get("Authorization")
	if auth != "token "+o.secrets["github_token"] && auth != "token "+o.secrets["github_personal_access_token"] {
		http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
		return
	}
	var d struct {
		EventType     string `json:"event_type"`
		ClientPayload struct {
			CallbackURI string `json:"callbackUri"`
		} `json:"client_payload"`
	}
	if err := json.Unmarshal(body, &d); err != nil || d.EventType == "" || d.ClientPayload.CallbackURI == "" {
		http.Error(w, `{"message":"Invalid request."}`, http.StatusUnprocessableEntity)
		o.t.Errorf("a dispatch GitHub would refuse: %v: %s", err, body)
		return
	}
	w.WriteHeader(http.StatusNoContent)
	go o.callback(d.ClientPayload.CallbackURI, "GitHub workflow for "+d.EventType+" passed")
}

// jenkins answers buildWithParameters as Jenkins does (201, the build
// queued) after checking basic auth; the job posts success to its url
// parameter.
func (o *outside) jenkins(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/job/WebhookCallback/buildWithParameters" {
		http.NotFound(w, r)
		return
	}
	if user, pass, ok := r.BasicAuth(); !ok || user == "" || pass == "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="Jenkins"`)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	cb := r.URL.Query().Get("url")
	if _, err := url.ParseRequestURI(cb); err != nil {
		http.Error(w, "url parameter: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Location", "http://jenkins.jenkins:8080/queue/item/1/")
	w.WriteHeader(http.StatusCreated)
	go o.callback(cb, "Jenkins job WebhookCallback passed")
}

// cmdHook runs the command it is given (here: says it did) and posts
// success to callbackURL.
func (o *outside) cmdHook(w http.ResponseWriter, r *http.Request, body []byte) {
	var d struct {
		Cmd         string `json:"cmd"`
		Arg         string `json:"arg"`
		CallbackURL string `json:"callbackURL"`
	}
	if r.Method != http.MethodPost || r.URL.Path != "/cmd" || json.Unmarshal(body, &d) != nil || d.CallbackURL == "" {
		http.Error(w, "want POST /cmd {cmd, arg, callbackURL}", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
	go o.callback(d.CallbackURL, fmt.Sprintf("%s %s: condition met", d.Cmd, d.Arg))
}

// slack is Slack's incoming-webhook endpoint ({{secrets.slackwebhookURL}}):
// it answers "ok" and keeps the messages.
type slack struct {
	srv  *httptest.Server
	mu   sync.Mutex
	sent []string
}

func newSlack(t *testing.T) *slack {
	s := &slack{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct {
			Message string `json:"message"`
		}
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || json.Unmarshal(b, &m) != nil || m.Message == "" {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.sent = append(s.sent, string(b))
		s.mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// messagesOf returns the messages about a pipeline (its id is in the
// status_url the corpus's messages carry).
func (s *slack) messagesOf(pipeline string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.sent {
		if strings.Contains(m, pipeline) {
			out = append(out, m)
		}
	}
	return out
}

// post sends a webhook's verdict as the external system would.
func post(hc *http.Client, uri, token string, success bool, message string) error {
	b, _ := json.Marshal(map[string]any{"success": success, "mdMessage": message})
	req, err := http.NewRequest(http.MethodPost, uri, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		rb, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("callback %s: %s %s", uri, resp.Status, rb)
	}
	return nil
}
