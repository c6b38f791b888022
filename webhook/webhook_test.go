package webhook_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/deployfile"
	"github.com/sortie-cd/sortie/egress"
	"github.com/sortie-cd/sortie/webhook"
)

type secrets map[string]string

func (s secrets) Secret(_ context.Context, _, name string) (string, []string, error) {
	v, ok := s[name]
	if !ok {
		return "", nil, &webhook.SecretNotSetError{Name: name}
	}
	return v, nil, nil
}

// local sends to the tests' stand-ins, which listen on loopback.
var local = (&egress.Policy{Allow: egress.Loopback}).Client(time.Minute)

func hook(method, uri string, headers map[string]string, body string) *deployfile.Webhook {
	wh := &deployfile.Webhook{Name: "notify", Method: method, URITemplate: deployfile.Template{Text: uri}}
	for k, v := range headers {
		wh.Headers = append(wh.Headers, &deployfile.Header{Key: k, Value: deployfile.Template{Text: v}})
	}
	if body != "" {
		wh.BodyTemplate = &deployfile.Body{Inline: deployfile.Template{Text: body}}
	}
	return wh
}

var vars = webhook.Vars{
	Armory:  map[string]string{"applicationName": "web", "callbackUri": "http://sortie/cb", "deploymentId": "p1"},
	Context: map[string]string{"env": "prod"},
}

func TestRenderAndMask(t *testing.T) {
	wh := hook("post", "https://ci.example/hook?token={{secrets.ci-token}}&app={{armory.applicationName}}",
		map[string]string{"Authorization": "Bearer {{secrets.ci-token}}"},
		`{"app": "{{sortie.applicationName}}", "env": "{{context.env}}", "callback": "{{armory.callbackUri}}"}`)
	req, err := webhook.Render(t.Context(), "main", wh, vars, secrets{"ci-token": "s3cr3t"})
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != "POST" || req.URL != "https://ci.example/hook?token=s3cr3t&app=web" || req.Headers[0].Value != "Bearer s3cr3t" {
		t.Errorf("rendered %+v", req)
	}
	if want := `{"app": "web", "env": "prod", "callback": "http://sortie/cb"}`; req.Body != want {
		t.Errorf("body %q, want %q", req.Body, want)
	}
	m := req.Masked()
	if strings.Contains(m, "s3cr3t") || !strings.Contains(m, "token=******") || !strings.Contains(m, "Authorization: Bearer ******") {
		t.Errorf("masked request:\n%s", m)
	}
}

func TestRenderSecretNotSet(t *testing.T) {
	wh := hook("GET", "https://ci.example/?k={{secrets.missing}}", nil, "")
	_, err := webhook.Render(t.Context(), "main", wh, vars, webhook.NoSecrets{})
	var notSet *webhook.SecretNotSetError
	if !errors.As(err, &notSet) || !strings.Contains(err.Error(), "secret missing is not set") {
		t.Errorf("err = %v, want secret missing is not set", err)
	}
	_, err = webhook.Render(t.Context(), "main", hook("GET", "https://x/{{context.nope}}", nil, ""), vars, nil)
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown context key: %v", err)
	}
}

// server answers with the statuses given, one per request, then 200.
func server(t *testing.T, statuses ...int) (*httptest.Server, *[]*http.Request, *[]string) {
	var mu sync.Mutex
	var reqs []*http.Request
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		n := len(reqs)
		reqs = append(reqs, r)
		bodies = append(bodies, string(b))
		mu.Unlock()
		if n < len(statuses) {
			w.WriteHeader(statuses[n])
			io.WriteString(w, "echo "+r.URL.RawQuery)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &reqs, &bodies
}

func TestSendRetriesServerErrors(t *testing.T) {
	srv, reqs, bodies := server(t, 503, 502)
	wh := hook("PUT", srv.URL+"/deploy", map[string]string{"X-App": "{{armory.applicationName}}"}, "hello {{context.env}}")
	wh.RetryCount = 2
	req, err := webhook.Render(t.Context(), "main", wh, vars, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &webhook.Sender{Direct: local, Backoff: time.Millisecond}
	res, err := s.Send(t.Context(), wh, webhook.Target{Tenant: "main", Account: "prod"}, req)
	if err != nil || res.Status != 200 || res.Attempts != 3 {
		t.Fatalf("Send = %+v, %v; want 200 after 3 attempts", res, err)
	}
	r := (*reqs)[2]
	if r.Method != "PUT" || r.Header.Get("X-App") != "web" || (*bodies)[2] != "hello prod" {
		t.Errorf("request %s %s %v %q", r.Method, r.URL, r.Header, (*bodies)[2])
	}
}

func TestSendGivesUpAndMasks(t *testing.T) {
	srv, reqs, _ := server(t, 500, 500, 500)
	wh := hook("GET", srv.URL+"/?token={{secrets.tok}}", nil, "")
	wh.RetryCount = 1
	req, err := webhook.Render(t.Context(), "main", wh, vars, secrets{"tok": "hunter2"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&webhook.Sender{Direct: local, Backoff: time.Millisecond}).Send(t.Context(), wh, webhook.Target{}, req)
	if err == nil || res.Attempts != 2 || len(*reqs) != 2 {
		t.Fatalf("Send = %+v, %v after %d requests; want a failure after 2", res, err, len(*reqs))
	}
	if strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "500") {
		t.Errorf("error %q leaks the secret or hides the status", err)
	}
}

// TestSendRetriesAreBounded: a webhook that did not come through the
// deployment file's validation still retries at most MaxRetryCount times.
func TestSendRetriesAreBounded(t *testing.T) {
	statuses := make([]int, 3*deployfile.MaxRetryCount)
	for i := range statuses {
		statuses[i] = 503
	}
	srv, reqs, _ := server(t, statuses...)
	wh := hook("POST", srv.URL, nil, "")
	wh.RetryCount = 1 << 30
	req, _ := webhook.Render(t.Context(), "main", wh, vars, nil)
	res, err := (&webhook.Sender{Direct: local, Backoff: time.Microsecond, MaxBackoff: time.Microsecond}).Send(t.Context(), wh, webhook.Target{}, req)
	if want := deployfile.MaxRetryCount + 1; err == nil || res.Attempts != want || len(*reqs) != want {
		t.Errorf("Send = %+v, %v after %d requests; want a failure after %d", res, err, len(*reqs), want)
	}
}

func TestSendClientErrorIsNotRetried(t *testing.T) {
	srv, reqs, _ := server(t, 404)
	wh := hook("POST", srv.URL, nil, "")
	wh.RetryCount = 5
	req, _ := webhook.Render(t.Context(), "main", wh, vars, nil)
	_, err := (&webhook.Sender{Direct: local, Backoff: time.Millisecond}).Send(t.Context(), wh, webhook.Target{}, req)
	if err == nil || len(*reqs) != 1 {
		t.Errorf("err %v after %d requests; want one failed request", err, len(*reqs))
	}
}

func TestSendRetriesConnectionErrors(t *testing.T) {
	srv, _, _ := server(t)
	url := srv.URL
	srv.Close() // nothing listens any more
	wh := hook("POST", url, nil, "")
	wh.RetryCount = 2
	req, _ := webhook.Render(t.Context(), "main", wh, vars, nil)
	res, err := (&webhook.Sender{Direct: local, Backoff: time.Millisecond}).Send(t.Context(), wh, webhook.Target{}, req)
	if err == nil || res.Attempts != 3 {
		t.Errorf("Send = %+v, %v; want a failure after 3 attempts", res, err)
	}
}

func TestRemoteNetworkAgentNeedsARelay(t *testing.T) {
	wh := hook("POST", "http://10.0.0.1/", nil, "")
	wh.NetworkMode = webhook.ModeAgent
	req, _ := webhook.Render(t.Context(), "main", wh, vars, nil)
	_, err := (&webhook.Sender{Direct: local}).Send(t.Context(), wh, webhook.Target{Tenant: "main", Account: "prod"}, req)
	if err == nil || !strings.Contains(err.Error(), "agent prod") {
		t.Errorf("err = %v, want a refusal naming agent prod", err)
	}
	srv, reqs, _ := server(t)
	wh.URITemplate.Text = srv.URL
	wh.AgentIdentifier = "edge"
	req, _ = webhook.Render(t.Context(), "main", wh, vars, nil)
	relay := relayFunc(func(tenant, agent string) (webhook.Doer, error) {
		if tenant != "main" || agent != "edge" {
			t.Errorf("relay asked for %s/%s", tenant, agent)
		}
		return http.DefaultClient, nil
	})
	if _, err := (&webhook.Sender{Relay: relay}).Send(t.Context(), wh, webhook.Target{Tenant: "main", Account: "prod"}, req); err != nil || len(*reqs) != 1 {
		t.Errorf("relayed call: %v, %d requests", err, len(*reqs))
	}
}

type relayFunc func(tenant, agent string) (webhook.Doer, error)

func (f relayFunc) Doer(tenant, agent string) (webhook.Doer, error) { return f(tenant, agent) }
