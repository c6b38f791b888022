package cli

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// caFile writes the certificate of a TLS test server as a PEM file.
func caFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestManifestFetcher: the rules a manifest URL is fetched by, each tried
// against a real local server (no fake transport): TLS verified, http only
// to loopback, no credentials in the URL, redirects held to the same rules,
// a size limit, a timeout, a failed status named, each URL fetched once.
func TestManifestFetcher(t *testing.T) {
	const manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
	var hits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/ok.yaml", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte(manifest))
	})
	mux.HandleFunc("/big.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("#", maxManifestBytes+1)))
	})
	mux.HandleFunc("/slow.yaml", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // answers nothing until the client gives up
	})
	mux.HandleFunc("/downgrade.yaml", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://manifests.example.com/ok.yaml", http.StatusFound)
	})
	mux.HandleFunc("/moved.yaml", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok.yaml", http.StatusMovedPermanently)
	})
	tlsSrv := httptest.NewTLSServer(mux)
	defer tlsSrv.Close()
	plain := httptest.NewServer(mux)
	defer plain.Close()

	f, err := newManifestFetcher(t.Context(), caFile(t, tlsSrv))
	if err != nil {
		t.Fatal(err)
	}
	f.timeout = 300 * time.Millisecond
	for _, u := range []string{tlsSrv.URL + "/ok.yaml", tlsSrv.URL + "/moved.yaml", plain.URL + "/ok.yaml", strings.Replace(plain.URL, "127.0.0.1", "localhost", 1) + "/ok.yaml"} {
		if text, err := f.fetch(u); err != nil || text != manifest {
			t.Errorf("%s: %q, %v", u, text, err)
		}
	}
	before := hits.Load()
	if _, err := f.fetch(tlsSrv.URL + "/ok.yaml"); err != nil || hits.Load() != before {
		t.Errorf("a URL fetched twice: %v, %d requests more", err, hits.Load()-before)
	}
	for _, tc := range []struct{ url, want string }{
		{tlsSrv.URL + "/missing.yaml", "the server answered 404 Not Found"},
		{tlsSrv.URL + "/big.yaml", "larger than 4 MiB"},
		{tlsSrv.URL + "/slow.yaml", "no answer within 300ms"},
		{tlsSrv.URL + "/downgrade.yaml", "redirected to http://manifests.example.com/ok.yaml: plain http is allowed only to a loopback address"},
		{"http://manifests.example.com/ok.yaml", "plain http is allowed only to a loopback address"},
		{"https://user:pa55word@127.0.0.1/ok.yaml", "must not carry a user name or password"},
	} {
		_, err := f.fetch(tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pa55word") {
			t.Errorf("%s: the error shows the password: %v", tc.url, err)
		}
	}
	// Without the test server's CA, its certificate is not trusted.
	strict, err := newManifestFetcher(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strict.fetch(tlsSrv.URL + "/ok.yaml"); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("an untrusted certificate: %v", err)
	}
	if _, err := newManifestFetcher(t.Context(), filepath.Join(t.TempDir(), "none.pem")); err == nil || !strings.Contains(err.Error(), "--manifest-ca-file") {
		t.Errorf("a missing CA file: %v", err)
	}
}
