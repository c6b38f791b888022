package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/server"
	"github.com/sortie-cd/sortie/tlstest"
)

// runUntilReady runs the server with cfg and returns the error it stopped
// with before it was ready, or nil once it listens (it then runs until the
// test ends).
func runUntilReady(t *testing.T, cfg server.Config) error {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	ready := make(chan struct{})
	cfg.Ready = func(string, string) { close(ready) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg) }()
	select {
	case err := <-done:
		cancel()
		if err == nil {
			err = errors.New("the server stopped at once without an error")
		}
		return err
	case <-ready:
		t.Cleanup(func() { cancel(); <-done })
		return nil
	case <-time.After(time.Minute):
		cancel()
		t.Fatal("the server neither started nor failed within a minute")
		return nil
	}
}

// TestTLSRefusesBadFiles: a key file readable by others, a key file of
// another user, and a certificate that is not the key's are refused at
// start, each with a message naming the file.
func TestTLSRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir)
	a := ca.Issue(t, filepath.Join(dir, "a.crt"), filepath.Join(dir, "a.key"))
	b := ca.Issue(t, filepath.Join(dir, "b.crt"), filepath.Join(dir, "b.key"))

	if err := os.Chmod(a.KeyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	err := runUntilReady(t, server.Config{Addr: "127.0.0.1:0", TLSCertFile: a.CertFile, TLSKeyFile: a.KeyFile})
	if err == nil || !strings.Contains(err.Error(), a.KeyFile) || !strings.Contains(err.Error(), "readable by") {
		t.Errorf("a key file of mode 0644: %v, want a refusal naming %s", err, a.KeyFile)
	}
	if os.Geteuid() == 0 {
		// Owned by another user, even 0600: that user could read it.
		other := filepath.Join(dir, "other.key")
		b2, _ := os.ReadFile(b.KeyFile)
		if err := os.WriteFile(other, b2, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(other, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		err := runUntilReady(t, server.Config{Addr: "127.0.0.1:0", TLSCertFile: b.CertFile, TLSKeyFile: other})
		if err == nil || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), "owned by") {
			t.Errorf("a key file owned by uid 4242: %v, want a refusal naming %s", err, other)
		}
	}
	err = runUntilReady(t, server.Config{Addr: "127.0.0.1:0", TLSCertFile: a.CertFile, TLSKeyFile: b.KeyFile})
	if err == nil || !strings.Contains(err.Error(), a.CertFile) || !strings.Contains(err.Error(), b.KeyFile) || !strings.Contains(err.Error(), "do not make a key pair") {
		t.Errorf("a's certificate with b's key: %v, want a refusal naming both files", err)
	}
	if err := runUntilReady(t, server.Config{Addr: "127.0.0.1:0", TLSCertFile: a.CertFile}); err == nil || !strings.Contains(err.Error(), "--tls-key-file") {
		t.Errorf("a certificate without a key: %v, want a refusal naming --tls-key-file", err)
	}
}

// TestPlaintextBeyondLoopback: listening in plaintext on every interface is
// refused unless told a TLS proxy is in front; then the server says so at
// start.
func TestPlaintextBeyondLoopback(t *testing.T) {
	err := runUntilReady(t, server.Config{Addr: "0.0.0.0:0"})
	if err == nil || !strings.Contains(err.Error(), "--behind-tls-proxy") || !strings.Contains(err.Error(), "--tls-cert-file") {
		t.Fatalf("plaintext on 0.0.0.0: %v, want a refusal naming --tls-cert-file and --behind-tls-proxy", err)
	}
	var log syncBuffer
	if err := runUntilReady(t, server.Config{Addr: "0.0.0.0:0", BehindTLSProxy: true, Log: slog.New(slog.NewTextHandler(&log, nil))}); err != nil {
		t.Fatalf("plaintext on 0.0.0.0 with BehindTLSProxy: %v", err)
	}
	if !strings.Contains(log.String(), "level=WARN") || !strings.Contains(log.String(), "a proxy in front must terminate TLS") {
		t.Errorf("no warning at start:\n%s", log.String())
	}
}

// TestTLSServe: over TLS the server speaks HTTP/2 by ALPN, sends HSTS, and
// serves a renewed certificate on the next connection after its files
// changed; a change that does not load keeps the previous certificate.
func TestTLSServe(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := ca.Issue(t, certFile, keyFile)
	if os.Geteuid() == 0 {
		// Root's group may read it (a Kubernetes Secret with fsGroup).
		if err := os.Chmod(keyFile, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	var log syncBuffer
	srv := clienttest.Start(t, server.Config{TLSCertFile: certFile, TLSKeyFile: keyFile, Log: slog.New(slog.NewTextHandler(&log, nil))})
	if !strings.HasPrefix(srv.URL, "https://") || srv.Credentials.Server != srv.URL {
		t.Fatalf("server URL %s, credentials for %s: want https", srv.URL, srv.Credentials.Server)
	}
	get := func() *http.Response {
		t.Helper()
		// A new transport: a new connection, a new handshake.
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := get()
	if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" {
		t.Errorf("GET /healthz over TLS: %d %s, want 200 over HTTP/2.0", resp.StatusCode, resp.Proto)
	}
	if h := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(h, "max-age=") {
		t.Errorf("Strict-Transport-Security %q, want max-age=...", h)
	}
	if got := resp.TLS.PeerCertificates[0].SerialNumber; got.Cmp(first.Cert.SerialNumber) != 0 {
		t.Fatalf("served certificate %v, want %v", got, first.Cert.SerialNumber)
	}

	// Renewed in place: the next connection gets the new one.
	second := ca.Issue(t, certFile, keyFile)
	if got := get().TLS.PeerCertificates[0].SerialNumber; got.Cmp(second.Cert.SerialNumber) != 0 {
		t.Fatalf("after the files changed the server serves %v, want the renewed %v", got, second.Cert.SerialNumber)
	}
	if !strings.Contains(log.String(), "TLS certificate reloaded") {
		t.Errorf("the reload is not logged:\n%s", log.String())
	}
	// Half written: the renewed one stays.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\ntruncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := get().TLS.PeerCertificates[0].SerialNumber; got.Cmp(second.Cert.SerialNumber) != 0 {
		t.Fatalf("after a broken rewrite the server serves %v, want still %v", got, second.Cert.SerialNumber)
	}
	if !strings.Contains(log.String(), "TLS certificate not reloaded") {
		t.Errorf("the failed reload is not logged:\n%s", log.String())
	}
}

// TestSecureCookiesBehindTLSProxy: with an https public URL the console's
// cookies are Secure though the request came in plaintext (a TLS proxy in
// front); without it they are not (a laptop's http://127.0.0.1).
func TestSecureCookiesBehindTLSProxy(t *testing.T) {
	cookies := func(public string) (string, string) {
		srv := clienttest.Start(t, server.Config{PublicURL: public})
		resp, err := http.Get(srv.URL + "/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if len(resp.Header.Values("Set-Cookie")) == 0 {
			t.Fatalf("GET /login set no cookie")
		}
		return strings.Join(resp.Header.Values("Set-Cookie"), "\n"), resp.Header.Get("Strict-Transport-Security")
	}
	c, hsts := cookies("https://sortie.example.com")
	if !strings.Contains(c, "; Secure") {
		t.Errorf("public URL https: cookies without Secure:\n%s", c)
	}
	if hsts == "" {
		t.Errorf("public URL https: no Strict-Transport-Security")
	}
	if c, hsts := cookies(""); strings.Contains(c, "Secure") || hsts != "" {
		t.Errorf("plaintext loopback: cookies %q, HSTS %q; want neither Secure nor HSTS", c, hsts)
	}
}

// TestCLIOverTLS: the sortie binary logs in to and calls a server with a
// certificate of a private CA given by --ca-file, or by SSL_CERT_FILE; with
// neither it refuses the certificate.
func TestCLIOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir)
	leaf := ca.Issue(t, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	srv := clienttest.Start(t, server.Config{TLSCertFile: leaf.CertFile, TLSKeyFile: leaf.KeyFile})
	bin := server.SortieBinary(t)
	home := t.TempDir()
	sortie := func(extraEnv []string, args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(cleanEnv(home), extraEnv...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := sortie(nil, "login", "--credentials-file", srv.CredentialsPath); err == nil || !strings.Contains(out, "certificate signed by unknown authority") {
		t.Errorf("login without the CA: %v\n%s\nwant the certificate refused", err, out)
	}
	if out, err := sortie(nil, "login", "--credentials-file", srv.CredentialsPath, "--ca-file", ca.File); err != nil || !strings.Contains(out, "Logged in to "+srv.URL) {
		t.Fatalf("login --ca-file: %v\n%s", err, out)
	}
	if out, err := sortie(nil, "credentials", "list", "--ca-file", ca.File); err != nil || !strings.Contains(out, srv.Credentials.ClientID) {
		t.Errorf("credentials list --ca-file: %v\n%s", err, out)
	}
	if out, err := sortie([]string{"SORTIE_CA_FILE=" + ca.File}, "credentials", "list"); err != nil || !strings.Contains(out, srv.Credentials.ClientID) {
		t.Errorf("credentials list with SORTIE_CA_FILE: %v\n%s", err, out)
	}
	if out, err := sortie([]string{"SSL_CERT_FILE=" + ca.File}, "credentials", "list"); err != nil || !strings.Contains(out, srv.Credentials.ClientID) {
		t.Errorf("credentials list with SSL_CERT_FILE: %v\n%s", err, out)
	}
	if out, err := sortie(nil, "credentials", "list"); err == nil || !strings.Contains(out, "certificate signed by unknown authority") {
		t.Errorf("credentials list without the CA: %v\n%s\nwant the certificate refused", err, out)
	}
	if out, err := sortie(nil, "credentials", "list", "--ca-file", filepath.Join(dir, "tls.key")); err == nil || !strings.Contains(out, "holds no PEM certificate") {
		t.Errorf("--ca-file of a key: %v\n%s", err, out)
	}
}

// TestCLIRefusesPlaintextToAnotherMachine: the CLI sends no credential to an
// http:// server that is not loopback unless told --insecure. HTTP_PROXY
// points at a listener of the test, so a request that left would arrive
// there (and nothing leaves this machine): none does without --insecure,
// one does with it.
func TestCLIRefusesPlaintextToAnotherMachine(t *testing.T) {
	var seen atomic.Int32
	var lastURL atomic.Value
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		lastURL.Store(r.URL.String())
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
	}))
	t.Cleanup(proxy.Close)
	bin := server.SortieBinary(t)
	home := t.TempDir()
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(cleanEnv(home), "HTTP_PROXY="+proxy.URL, "SORTIE_CLIENT_ID=id", "SORTIE_CLIENT_SECRET=the-secret")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return out.String(), cmd.ProcessState.ExitCode()
	}
	for _, args := range [][]string{
		{"login", "--server", "http://sortie.example.com:8080"},
		{"deploy", "list", "--server", "http://sortie.example.com"},
		{"credentials", "list", "--server", "http://10.20.30.40:8080"},
	} {
		out, code := run(args...)
		if code != 2 || !strings.Contains(out, "refusing to send credentials in plaintext") || !strings.Contains(out, "--insecure") {
			t.Errorf("sortie %s: exit %d\n%s\nwant exit 2 refusing plaintext and naming --insecure", strings.Join(args, " "), code, out)
		}
	}
	if n := seen.Load(); n != 0 {
		t.Fatalf("%d requests left without --insecure", n)
	}
	out, code := run("login", "--server", "http://sortie.example.com:8080", "--insecure")
	if seen.Load() != 1 || code != 1 || !strings.Contains(out, "refused") {
		t.Errorf("login --insecure: exit %d, %d requests\n%s\nwant the one token request sent", code, seen.Load(), out)
	}
	if u, _ := lastURL.Load().(string); u != "http://sortie.example.com:8080/oauth/token" {
		t.Errorf("the request went to %q", u)
	}
}

// cleanEnv is an environment for a sortie process with its own home and
// config, none of the test process's Sortie, Armory, proxy or CA variables.
func cleanEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "SORTIE_"), strings.HasPrefix(k, "ARMORY_"), strings.HasPrefix(k, "SSL_CERT_"),
			strings.EqualFold(k, "HTTP_PROXY"), strings.EqualFold(k, "HTTPS_PROXY"), strings.EqualFold(k, "NO_PROXY"),
			k == "HOME", k == "XDG_CONFIG_HOME", k == "CI":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
}
