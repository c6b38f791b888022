package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/sortie-cd/sortie/client"
)

// Manifests named by URL (`manifests[].path: https://...`, as Armory's
// quick-start names them) are fetched here, by the CLI at deploy start,
// and their text is sent with the file: the server never fetches, and the
// stored text makes a redeploy identical.

const (
	// maxManifestBytes bounds one fetched manifest (a start request is
	// bounded at 10 MiB in all).
	maxManifestBytes = 4 << 20
	// manifestFetchTimeout bounds one fetch, redirects included.
	manifestFetchTimeout = 30 * time.Second
	maxManifestRedirects = 5
)

// manifestFetcher fetches manifest URLs: https with the certificate
// verified (the system's CAs, and those of --manifest-ca-file), plain http
// only to a loopback address, at most maxBytes, within timeout. Each URL is
// fetched once per command.
type manifestFetcher struct {
	ctx      context.Context
	client   *http.Client
	maxBytes int64
	timeout  time.Duration

	mu   sync.Mutex
	done map[string]fetched
}

type fetched struct {
	text string
	err  error
}

// newManifestFetcher trusts the system's CAs and, when caFile is not
// empty, the PEM certificates in it too.
func newManifestFetcher(ctx context.Context, caFile string) (*manifestFetcher, error) {
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--manifest-ca-file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--manifest-ca-file %s holds no PEM certificate", caFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	f := &manifestFetcher{ctx: ctx, maxBytes: maxManifestBytes, timeout: manifestFetchTimeout, done: map[string]fetched{}}
	f.client = &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxManifestRedirects {
			return fmt.Errorf("more than %d redirects", maxManifestRedirects)
		}
		if err := allowedManifestURL(req.URL); err != nil {
			return fmt.Errorf("redirected to %s: %w", req.URL.Redacted(), err)
		}
		return nil
	}}
	return f, nil
}

// allowedManifestURL is the rule for a manifest URL and every redirect.
func allowedManifestURL(u *url.URL) error {
	if u.User != nil {
		return errors.New("a manifest URL must not carry a user name or password (it would be stored with the deployment)")
	}
	if u.Host == "" {
		return errors.New("the URL names no host")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if client.Loopback(u.Hostname()) {
			return nil
		}
		return errors.New("plain http is allowed only to a loopback address (127.0.0.1, ::1, localhost); use https")
	}
	return fmt.Errorf("the scheme %q is not https", u.Scheme)
}

// fetch is deployfile.Options.Fetch: the text at raw, or why not. Its
// errors do not repeat the URL (the caller's message names it).
func (f *manifestFetcher) fetch(raw string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.done[raw]; ok {
		return r.text, r.err
	}
	text, err := f.get(raw)
	f.done[raw] = fetched{text, err}
	return text, err
}

func (f *manifestFetcher) get(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("not a valid URL")
	}
	if err := allowedManifestURL(u); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(f.ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/yaml, text/yaml, text/plain, */*")
	req.Header.Set("User-Agent", "sortie/"+Version)
	resp, err := f.client.Do(req)
	if err != nil {
		var ue *url.Error
		switch {
		case errors.Is(err, context.DeadlineExceeded) && f.ctx.Err() == nil:
			return "", fmt.Errorf("no answer within %s", f.timeout)
		case errors.As(err, &ue):
			return "", ue.Err
		}
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("the server answered %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	switch {
	case errors.Is(err, context.DeadlineExceeded) && f.ctx.Err() == nil:
		return "", fmt.Errorf("no answer within %s", f.timeout)
	case err != nil:
		return "", fmt.Errorf("reading the answer: %w", err)
	case int64(len(b)) > f.maxBytes:
		return "", fmt.Errorf("the manifest is larger than %d MiB", f.maxBytes>>20)
	}
	return string(b), nil
}
