package clienttest

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/egress"
	"github.com/sortie-cd/sortie/server"
)

// Server is a running server.
type Server struct {
	// URL is the server's base URL.
	URL string
	// Credentials is the bootstrap admin credential and CredentialsPath
	// the file the server wrote it to.
	Credentials     auth.CredentialsFile
	CredentialsPath string
}

// Start runs server.Run with cfg on a free loopback port (Addr and Ready are
// set here; DataDir defaults to a temporary directory) until the test ends.
// With cfg.TLSCertFile the URL is https. A nil cfg.EgressAllow becomes
// egress.Loopback: the tests' stand-ins (webhook receivers, Prometheus)
// listen there. Give an empty, non-nil one for the server's own default.
func Start(t testing.TB, cfg server.Config) *Server {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.Addr = "127.0.0.1:0"
	if cfg.EgressAllow == nil {
		cfg.EgressAllow = egress.Loopback
	}
	type ready struct{ addr, creds string }
	readyc := make(chan ready, 1)
	cfg.Ready = func(addr, creds string) { readyc <- ready{addr, creds} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	var r ready
	select {
	case r = <-readyc:
	case err := <-done:
		t.Fatalf("the server did not start: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the server did not start within a minute")
	}
	scheme := "http://"
	if cfg.TLSCertFile != "" {
		scheme = "https://"
	}
	s := &Server{URL: scheme + r.addr, CredentialsPath: r.creds}
	b, err := os.ReadFile(r.creds)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s.Credentials); err != nil {
		t.Fatal(err)
	}
	return s
}
