package webhook_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sortie-cd/sortie/webhook"
)

// secretForms is a secret with characters every encoding changes, and the
// forms an echo of it takes.
func secretForms(secret string) map[string]string {
	j, _ := json.Marshal(secret)
	return map[string]string{
		"json":           string(j[1 : len(j)-1]),
		"query":          url.QueryEscape(secret),
		"path":           url.PathEscape(secret),
		"base64 std":     base64.StdEncoding.EncodeToString([]byte(secret)),
		"base64 url":     base64.URLEncoding.EncodeToString([]byte(secret)),
		"base64 std raw": base64.RawStdEncoding.EncodeToString([]byte(secret)),
		"base64 url raw": base64.RawURLEncoding.EncodeToString([]byte(secret)),
	}
}

// TestEncodedSecretsAreMasked: an endpoint that echoes the secret of the
// request back JSON-escaped, URL-encoded or base64-encoded gets none of
// those forms into the step's error, and the error does not quote the
// answer at all when the request carried a secret (item 11 of issue 16).
func TestEncodedSecretsAreMasked(t *testing.T) {
	const secret = `tok/en+"<v>"?&=é~1`
	forms := secretForms(secret)
	for name, form := range forms {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprintf(w, "you sent %s", form)
			}))
			defer srv.Close()
			wh := hook("POST", srv.URL+"/hook", map[string]string{"Authorization": "Bearer {{secrets.tok}}"}, "")
			req, err := webhook.Render(t.Context(), "main", wh, vars, secrets{"tok": secret})
			if err != nil {
				t.Fatal(err)
			}
			if got := req.Mask("echo " + form); got != "echo ******" {
				t.Errorf("Mask(%s form) = %q", name, got)
			}
			_, err = (&webhook.Sender{Direct: local}).Send(t.Context(), wh, webhook.Target{}, req)
			if err == nil {
				t.Fatal("a 403 succeeded")
			}
			if strings.Contains(err.Error(), form) || strings.Contains(err.Error(), "you sent") || !strings.Contains(err.Error(), "403") {
				t.Errorf("error %q quotes the answer or hides the status", err)
			}
		})
	}
}

// TestSecretInURLMaskedInTransportErrors: Go's client quotes the URL,
// escaped, in a connection error; the escaped secret is masked too.
func TestSecretInURLMaskedInTransportErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	const secret = `a b"c`
	wh := hook("GET", u+"/hook/{{secrets.tok}}", nil, "")
	req, err := webhook.Render(t.Context(), "main", wh, vars, secrets{"tok": secret})
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&webhook.Sender{Direct: local}).Send(t.Context(), wh, webhook.Target{}, req)
	if err == nil {
		t.Fatal("a call to a closed port succeeded")
	}
	for _, f := range append([]string{secret}, secretForms(secret)["path"], url.QueryEscape(secret), "a%20b%22c") {
		if strings.Contains(err.Error(), f) {
			t.Errorf("error %q holds %q", err, f)
		}
	}
}

// TestAnswerQuotedWithoutSecrets: a request without secrets still shows
// the start of the answer, which says what went wrong.
func TestAnswerQuotedWithoutSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad field app", http.StatusBadRequest)
	}))
	defer srv.Close()
	wh := hook("POST", srv.URL, nil, "")
	req, _ := webhook.Render(t.Context(), "main", wh, vars, nil)
	_, err := (&webhook.Sender{Direct: local}).Send(t.Context(), wh, webhook.Target{}, req)
	if err == nil || !strings.Contains(err.Error(), "bad field app") {
		t.Errorf("error %v, want the answer's start", err)
	}
}
