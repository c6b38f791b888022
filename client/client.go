package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sortie-cd/sortie/auth"
)

// RefreshMargin is how long before its expiry a token is replaced, so a
// request never leaves with a token that dies on the way.
const RefreshMargin = time.Minute

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 1 << 20

// Token is an access token and when it expires (zero: unknown, never
// refreshed by time), with the refresh token of a user's login.
type Token struct {
	AccessToken string
	Expiry      time.Time
	// RefreshToken gets the next token of a user's session; it is used
	// up by that request and replaced by the answer's.
	RefreshToken string
}

// Fresh reports whether t can still be used at now.
func (t Token) Fresh(now time.Time) bool {
	return t.AccessToken != "" && (t.Expiry.IsZero() || now.Add(RefreshMargin).Before(t.Expiry))
}

// Options configure a Client.
type Options struct {
	// Server is the server's base URL, such as https://sortie.example.com;
	// required.
	Server string
	// ClientID and ClientSecret get tokens with the client-credentials
	// grant. Empty means the client only has Token.
	ClientID, ClientSecret string
	// Tenant, when not empty, asks client-credential tokens for that tenant
	// instead of the credential's own (only an organization admin's
	// credential may; the server refuses others).
	Tenant string
	// Token is a token already held (cached, or given by the user). Zero
	// means fetch one on the first request.
	Token Token
	// OnToken, when not nil, is called with every token the client fetched,
	// for the caller to cache it.
	OnToken func(Token)
	// HTTPClient makes the requests; nil means a client without an overall
	// timeout (event streams last), whose connections time out on dial and
	// on response headers.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// UserAgent is sent with every request; empty means "sortie-client".
	UserAgent string
	// RootCAs are the CAs trusted for the server's certificate; nil means
	// the system's (SSL_CERT_FILE and SSL_CERT_DIR replace those). Unused
	// with HTTPClient.
	RootCAs *x509.CertPool
	// Trace, when set, is told of every HTTP exchange once it is answered
	// (or failed): method, URL without its query, status and duration. It
	// never sees a header or a body, so no token or secret.
	Trace func(method string, u *url.URL, status int, d time.Duration, err error)
	// Plaintext allows an http:// Server that is not a loopback address:
	// credentials and tokens then cross the network in the clear. Without
	// it New refuses such a URL with ErrPlaintext.
	Plaintext bool
}

// ErrPlaintext is New's error for an http:// URL of a host that is not
// loopback, without Options.Plaintext.
var ErrPlaintext = errors.New("refusing to send credentials in plaintext to a server that is not on this machine")

// Client calls one Sortie server. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	id        string
	secret    string
	tenant    string
	onToken   func(Token)
	hc        *http.Client
	now       func() time.Time
	userAgent string

	mu  sync.Mutex
	tok Token
}

// New returns a Client for o.Server.
func New(o Options) (*Client, error) {
	u, err := ParseServer(o.Server)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "http" && !o.Plaintext && !Loopback(u.Hostname()) {
		return nil, fmt.Errorf("%w (%s): use its https:// URL", ErrPlaintext, u.Redacted())
	}
	c := &Client{base: u, id: o.ClientID, secret: o.ClientSecret, tenant: o.Tenant, onToken: o.OnToken, hc: o.HTTPClient, now: o.Now, userAgent: o.UserAgent, tok: o.Token}
	if c.hc == nil {
		c.hc = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			ResponseHeaderTimeout: 60 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			TLSClientConfig:       &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2:     true,
		}}
	}
	if o.Trace != nil {
		hc := *c.hc
		next := hc.Transport
		if next == nil {
			next = http.DefaultTransport
		}
		hc.Transport = tracing{next: next, trace: o.Trace}
		c.hc = &hc
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.userAgent == "" {
		c.userAgent = "sortie-client"
	}
	return c, nil
}

// Loopback reports whether host (a URL's host name, without port) is
// localhost or a loopback address.
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParseServer checks a server URL: http or https, a host, no query. A
// trailing slash is dropped.
func ParseServer(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("no server URL")
	}
	u, err := url.Parse(strings.TrimRight(s, "/"))
	if err == nil && u.User != nil {
		// Never echo it: it holds a password.
		return nil, errors.New("the server URL must not carry a user or password; log in with client credentials")
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("server URL %q is not an http(s)://host[:port] URL", s)
	}
	return u, nil
}

// Server is the server's base URL.
func (c *Client) Server() string { return c.base.String() }

// Token returns a fresh token, fetching one when the one held is missing or
// about to expire.
func (c *Client) Token(ctx context.Context) (Token, error) {
	c.mu.Lock()
	tok := c.tok
	c.mu.Unlock()
	if tok.Fresh(c.now()) {
		return tok, nil
	}
	if (c.id == "" || c.secret == "") && tok.RefreshToken != "" {
		return c.Refresh(ctx)
	}
	if c.id == "" || c.secret == "" {
		if tok.AccessToken != "" {
			return Token{}, errors.New("the access token has expired and no client credentials are configured to get another; run 'sortie login'")
		}
		return Token{}, errors.New("not logged in: run 'sortie login --server URL --client-id ID --client-secret SECRET' (or set SORTIE_CLIENT_ID and SORTIE_CLIENT_SECRET)")
	}
	return c.FetchToken(ctx)
}

// FetchToken gets a new token with the client credentials, whatever the one
// held.
func (c *Client) FetchToken(ctx context.Context) (Token, error) {
	if c.id == "" || c.secret == "" {
		return Token{}, errors.New("no client credentials to get a token with")
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.id}, "client_secret": {c.secret}}
	if c.tenant != "" {
		form.Set("tenant", c.tenant)
	}
	return c.requestToken(ctx, form)
}

// PasswordLogin logs a local user in (the password grant) in tenant (empty:
// the server's default) and holds the session's tokens from then on.
func (c *Client) PasswordLogin(ctx context.Context, tenant, username, password string) (Token, error) {
	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}
	if tenant != "" {
		form.Set("tenant", tenant)
	}
	return c.requestToken(ctx, form)
}

// Refresh replaces the held token using its refresh token, which the
// server then considers used: the new one comes with the answer.
func (c *Client) Refresh(ctx context.Context) (Token, error) {
	c.mu.Lock()
	rt := c.tok.RefreshToken
	c.mu.Unlock()
	if rt == "" {
		return Token{}, errors.New("no refresh token: run 'sortie login'")
	}
	tok, err := c.requestToken(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if e, ok := errors.AsType[*Error](err); ok && e.Status == http.StatusBadRequest {
		return Token{}, errors.New("the session ended (the refresh token was used, revoked or expired): run 'sortie login' again")
	}
	return tok, err
}

// Revoke makes the held refresh token unusable (RFC 7009), as a logout.
func (c *Client) Revoke(ctx context.Context) error {
	c.mu.Lock()
	rt := c.tok.RefreshToken
	c.mu.Unlock()
	if rt == "" {
		return nil
	}
	_, err := c.postForm(ctx, auth.RevokePath, url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}})
	return err
}

// postForm posts a form to one of the server's OAuth endpoints and returns
// the answer's body when it is 200, otherwise the decoded *Error.
func (c *Client) postForm(ctx context.Context, path string, form url.Values) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(path, nil), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%s request: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, transportError(err, c.base.String())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return nil, fmt.Errorf("%s request: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, decodeError(resp, body)
	}
	return body, nil
}

// requestToken posts a grant to the token endpoint and holds the answer.
func (c *Client) requestToken(ctx context.Context, form url.Values) (Token, error) {
	start := c.now()
	body, err := c.postForm(ctx, auth.TokenPath, form)
	if err != nil {
		return Token{}, err
	}
	var tr struct {
		AccessToken  string `json:"access_token"`
		ExpiresIn    int64  `json:"expires_in"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return Token{}, fmt.Errorf("the token endpoint of %s answered something that is not a token", c.base)
	}
	tok := Token{AccessToken: tr.AccessToken, RefreshToken: tr.RefreshToken}
	if tr.ExpiresIn > 0 {
		tok.Expiry = start.Add(time.Duration(tr.ExpiresIn) * time.Second)
	}
	c.mu.Lock()
	c.tok = tok
	c.mu.Unlock()
	if c.onToken != nil {
		c.onToken(tok)
	}
	return tok, nil
}

// transportError says the server could not be reached, without the
// request's URL query or body.
func transportError(err error, server string) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("cannot reach the server at %s: %w", server, err)
}

func (c *Client) url(path string, q url.Values) string {
	u := *c.base
	u.Path = strings.TrimRight(c.base.Path, "/") + path
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// do sends an authenticated request and returns the answer when its status
// is 2xx; otherwise the decoded *Error. A 401 with a token that was not
// just fetched is retried once with a new token (the server may have
// rotated its keys).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body any, header http.Header) (*http.Response, error) {
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.Token(ctx)
		if err != nil {
			return nil, err
		}
		var rd io.Reader
		if data != nil {
			rd = bytes.NewReader(data)
		}
		req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), rd)
		if err != nil {
			return nil, fmt.Errorf("request: %w", err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		if data != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if req.Header.Get("Accept") == "" {
			req.Header.Set("Accept", "application/json")
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("User-Agent", c.userAgent)
		resp, err := c.hc.Do(req)
		if err != nil {
			return nil, transportError(err, c.base.String())
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return resp, nil
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 && (c.id != "" && c.secret != "" || tok.RefreshToken != "") {
			// Expire the held token; a refresh token stays to get the
			// next one.
			c.mu.Lock()
			if c.tok == tok {
				c.tok = Token{RefreshToken: tok.RefreshToken}
			}
			c.mu.Unlock()
			continue
		}
		return nil, decodeError(resp, b)
	}
}

// call sends a request and decodes a JSON answer into out (nil: discard).
func (c *Client) call(ctx context.Context, method, path string, q url.Values, body, out any) error {
	resp, err := c.do(ctx, method, path, q, body, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// tracing tells Options.Trace of each exchange.
type tracing struct {
	next  http.RoundTripper
	trace func(method string, u *url.URL, status int, d time.Duration, err error)
}

func (t tracing) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	u := *r.URL
	u.RawQuery, u.User = "", nil
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	t.trace(r.Method, &u, status, time.Since(start), err)
	return resp, err
}
