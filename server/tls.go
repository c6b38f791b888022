package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"
)

// hsts is the Strict-Transport-Security header sent over TLS (and when the
// public URL is https, a TLS proxy in front): browsers then never try the
// server in plaintext for a year.
const hsts = "max-age=31536000"

// certReloader serves the certificate of a certificate file and key file,
// read again at the first handshake after either file changed (its
// modification time, size or inode: a Kubernetes Secret mount swaps a
// symlink). A change that does not load (half written, or a key that does
// not match) keeps the certificate served until then, logged once.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu     sync.Mutex
	cert   *tls.Certificate
	stamp  [2]fileStamp
	failed [2]fileStamp // the stamps of the last change that did not load
}

type fileStamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

func stampOf(fi os.FileInfo) fileStamp {
	s := fileStamp{mod: fi.ModTime(), size: fi.Size()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
	}
	return s
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("server: TLS needs both --tls-cert-file and --tls-key-file")
	}
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	cert, stamp, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cert, r.stamp = cert, stamp
	return r, nil
}

// load reads and checks both files.
func (r *certReloader) load() (*tls.Certificate, [2]fileStamp, error) {
	var stamp [2]fileStamp
	cfi, err := os.Stat(r.certFile)
	if err != nil {
		return nil, stamp, fmt.Errorf("server: TLS certificate file: %w", err)
	}
	kfi, err := os.Stat(r.keyFile)
	if err != nil {
		return nil, stamp, fmt.Errorf("server: TLS key file: %w", err)
	}
	if err := checkKeyFileMode(r.keyFile, kfi); err != nil {
		return nil, stamp, err
	}
	stamp = [2]fileStamp{stampOf(cfi), stampOf(kfi)}
	certPEM, err := os.ReadFile(r.certFile)
	if err != nil {
		return nil, stamp, fmt.Errorf("server: TLS certificate file: %w", err)
	}
	keyPEM, err := os.ReadFile(r.keyFile)
	if err != nil {
		return nil, stamp, fmt.Errorf("server: TLS key file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The standard library's messages name no file, and never quote
		// the key.
		return nil, stamp, fmt.Errorf("server: the TLS certificate file %s and key file %s do not make a key pair: %v", r.certFile, r.keyFile, err)
	}
	return &cert, stamp, nil
}

// checkKeyFileMode is PostgreSQL's rule for its key file: owned by the
// server's user and readable by it only (0600 or less), or owned by root and
// readable by root's group too (0640 or less: a Kubernetes Secret mounted
// with defaultMode 0640 and fsGroup).
func checkKeyFileMode(path string, fi os.FileInfo) error {
	perm := fi.Mode().Perm()
	owner := -1
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		owner = int(st.Uid)
	}
	switch {
	case owner == os.Geteuid() && perm&0o077 == 0:
		return nil
	case owner == 0 && perm&0o137 == 0:
		return nil
	case owner == 0:
		return fmt.Errorf("server: the TLS key file %s is readable by others (mode %04o, owned by root): make it 0600, or 0640 for root's group (chmod 0640 %s)", path, perm, path)
	case owner != os.Geteuid():
		return fmt.Errorf("server: the TLS key file %s must be owned by the server's user (uid %d) or by root, not uid %d", path, os.Geteuid(), owner)
	}
	return fmt.Errorf("server: the TLS key file %s is readable by group or others (mode %04o): make it readable by its owner only (chmod 0600 %s)", path, perm, path)
}

// GetCertificate is tls.Config's: the files' certificate, reloaded when they
// changed since the last handshake.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfi, err1 := os.Stat(r.certFile)
	kfi, err2 := os.Stat(r.keyFile)
	if err1 != nil || err2 != nil {
		return r.cert, nil // being replaced: keep serving the one loaded
	}
	now := [2]fileStamp{stampOf(cfi), stampOf(kfi)}
	if now == r.stamp || now == r.failed {
		return r.cert, nil
	}
	cert, stamp, err := r.load()
	if err != nil {
		r.failed = now
		r.log.Error("TLS certificate not reloaded; still serving the previous one", "err", err)
		return r.cert, nil
	}
	r.cert, r.stamp = cert, stamp
	r.log.Info("TLS certificate reloaded", "cert_file", r.certFile, "not_after", cert.Leaf.NotAfter)
	return r.cert, nil
}

// tlsConfig is the listener's TLS: HTTP/2 (the agents' gRPC streams and the
// API) and HTTP/1.1 by ALPN, TLS 1.2 at least.
func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: r.GetCertificate,
	}
}

// plaintextAllowed says whether the server may listen at addr without TLS:
// on a loopback address always; elsewhere only when told a TLS proxy
// terminates TLS in front of it.
func plaintextAllowed(addr net.Addr, behindProxy bool) error {
	if isLoopback(addr) || behindProxy {
		return nil
	}
	return fmt.Errorf("server: refusing to serve plaintext HTTP on %s, a non-loopback address: clients would send credentials in the clear. Give --tls-cert-file and --tls-key-file, or --behind-tls-proxy when a proxy in front terminates TLS", addr)
}

// isLoopback reports whether the listener's address is a loopback one
// (not the unspecified address, which is every interface).
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// withHSTS adds the Strict-Transport-Security header to every answer.
func withHSTS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", hsts)
		next.ServeHTTP(w, r)
	})
}
