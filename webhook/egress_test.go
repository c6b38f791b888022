package webhook_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/webhook"
)

// restricted resolves secrets with allowed hosts.
type restricted map[string][2]string // name -> value, allowed host

func (r restricted) Secret(_ context.Context, _, name string) (string, []string, error) {
	v, ok := r[name]
	if !ok {
		return "", nil, &webhook.SecretNotSetError{Name: name}
	}
	return v[0], []string{v[1]}, nil
}

// The default Sender refuses loopback at connect time, at once (no retry),
// and the step message says so instead of quoting the target.
func TestDefaultSenderRefusesLoopback(t *testing.T) {
	srv, reqs, _ := server(t, 500)
	wh := hook("GET", srv.URL+"/admin", nil, "")
	wh.RetryCount = 3
	req, err := webhook.Render(t.Context(), "main", wh, vars, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&webhook.Sender{Backoff: time.Millisecond}).Send(t.Context(), wh, webhook.Target{}, req)
	if err == nil || res.Attempts != 1 || len(*reqs) != 0 {
		t.Fatalf("Send = %+v, %v, %d requests arrived; want one refused attempt", res, err, len(*reqs))
	}
	if !strings.Contains(err.Error(), "refused by the egress policy") || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("error %q does not say the egress policy refused a loopback address", err)
	}
}

// A secret restricted to some hosts goes only there: to another host the
// call is refused before anything is sent.
func TestRestrictedSecretStaysOnItsHosts(t *testing.T) {
	srv, reqs, _ := server(t, 200)
	sec := restricted{"tok": {"s3cr3t-value", "hooks.example.com"}}
	wh := hook("POST", srv.URL+"/steal", map[string]string{"Authorization": "Bearer {{secrets.tok}}"}, "")
	req, err := webhook.Render(t.Context(), "main", wh, vars, sec)
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&webhook.Sender{Direct: local}).Send(t.Context(), wh, webhook.Target{}, req)
	if err == nil || len(*reqs) != 0 || !strings.Contains(err.Error(), "not an allowed host of secret tok (hooks.example.com)") {
		t.Fatalf("Send = %v, %d requests arrived; want a refusal naming the secret", err, len(*reqs))
	}
	if strings.Contains(err.Error(), "s3cr3t-value") {
		t.Errorf("the refusal shows the secret: %v", err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	sec["tok"] = [2]string{"s3cr3t-value", host}
	if req, err = webhook.Render(t.Context(), "main", wh, vars, sec); err != nil {
		t.Fatal(err)
	}
	if _, err := (&webhook.Sender{Direct: local}).Send(t.Context(), wh, webhook.Target{}, req); err != nil || len(*reqs) != 1 {
		t.Fatalf("to its allowed host %s: %v, %d requests", host, err, len(*reqs))
	}
}
