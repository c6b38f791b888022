package auth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"math"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/store"
)

// TokenPath is where the server serves TokenHandler.
const TokenPath = "/oauth/token"

// maxTokenRequest bounds a token request's body.
const maxTokenRequest = 16 << 10

// tokenResponse is RFC 6749 §5.1's successful response.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// Grant types the token endpoint serves.
const (
	GrantClientCredentials = "client_credentials"
	GrantPassword          = "password"
	GrantRefreshToken      = "refresh_token"
	GrantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
)

// TokenHandler serves the OAuth 2.0 token endpoint (POST, form-encoded):
//
//   - client_credentials: a machine client authenticates with client_id
//     and client_secret in the form or with HTTP Basic (RFC 6749 §2.3.1).
//   - password: a local user's username and password (RFC 6749 §4.3), in
//     the tenant the optional tenant parameter names (default main). The
//     answer carries a refresh token too.
//   - refresh_token: a user's refresh token, which is used up: the answer
//     carries its replacement (rotation).
//   - device_code: a device login through the OpenID Connect provider
//     (RFC 8628), when single sign-on is configured: see SSO.
//
// A client credential's token acts in one tenant: its credential's, unless
// the form's optional tenant parameter names another, which only a
// credential with the organization-admin role may do (for a tenant that
// exists). An organization admin thus gets one token per tenant it acts in.
//
// Brute force meets three walls: every request counts against its remote
// address (AddrLimit), every failed attempt against its client id or
// tenant and username *from that address* (ClientLimit), both answering
// 429 with Retry-After; and each attempt costs an argon2id verification,
// unknown client ids and usernames included. Failures count per (id,
// address) so that nobody can lock a credential or a user out by failing
// on purpose: the owner, from another address, is never refused for
// others' failures. An IPv6 address counts by its /64, which one host
// usually holds whole. The remote address is the connection's: behind a
// proxy, have the proxy limit too.
func (s *Service) TokenHandler() http.Handler {
	return http.HandlerFunc(s.serveToken)
}

func (s *Service) serveToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	now := s.now()

	if wait, _ := s.addrs.reserve(addrKey(remoteHost(r)), now); wait > 0 {
		tooMany(w, wait)
		return
	}
	form, ok := readForm(w, r)
	if !ok {
		return
	}
	switch gt := form.Get("grant_type"); gt {
	case GrantClientCredentials:
		s.clientCredentials(w, r, form, now)
	case GrantPassword:
		s.passwordGrant(w, r, form, now)
	case GrantRefreshToken:
		s.refreshGrant(w, r, form)
	case GrantDeviceCode:
		s.deviceGrant(w, r, form)
	case "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "grant_type is missing; use client_credentials, password or refresh_token")
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type "+strconv.Quote(gt)+" is not supported; use client_credentials, password, refresh_token or "+GrantDeviceCode)
	}
}

// readForm parses a form-encoded POST body, answering the request itself
// when it is not one.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "send the request as application/x-www-form-urlencoded")
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenRequest)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the request body is not a valid form")
		return nil, false
	}
	return r.PostForm, true
}

func (s *Service) clientCredentials(w http.ResponseWriter, r *http.Request, form url.Values, now time.Time) {
	id, secret, basic, ok := clientAuth(r, form)
	if !ok {
		oauthError(w, http.StatusBadRequest, "invalid_request", "authenticate the client with either HTTP Basic or client_id and client_secret in the form, not both")
		return
	}
	if id == "" || secret == "" {
		s.refuse(w, basic)
		return
	}

	wait, giveBack := s.clients.reserve(fromKey(id, r), now)
	if wait > 0 {
		s.log.Warn("token request refused: too many failed attempts", "client_id", id, "remote", remoteHost(r))
		tooMany(w, wait)
		return
	}
	c, err := s.creds.GetCredential(r.Context(), id)
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		giveBack()
		s.serverError(w, "look up credential", err)
		return
	}
	hash := dummyHash()
	if found {
		hash = c.SecretHash
	}
	match, ok := s.verify(w, giveBack, hash, secret)
	if !ok {
		return
	}
	switch {
	case !found:
		s.log.Info("token request refused: unknown client id", "client_id", id, "remote", remoteHost(r))
		s.refuse(w, basic)
		return
	case !match:
		s.log.Info("token request refused: wrong secret", "client_id", id, "remote", remoteHost(r))
		s.refuse(w, basic)
		return
	}
	giveBack()
	if t := form.Get("tenant"); t != "" && t != c.Tenant {
		ok, err := s.mayActIn(r.Context(), c, t)
		if err != nil {
			s.serverError(w, "look up tenants", err)
			return
		}
		if !ok {
			// The same answer for a tenant that does not exist: a
			// credential learns nothing of other tenants.
			oauthError(w, http.StatusBadRequest, "invalid_request", "this credential may not act in tenant "+strconv.Quote(t)+": only an organization admin gets a token for another tenant, and only for one that exists")
			return
		}
		scoped := *c
		scoped.Tenant = t
		c = &scoped
	}
	tok, err := s.Issue(c)
	if err != nil {
		s.serverError(w, "issue token", err)
		return
	}
	if !s.recordLogin(w, r, store.AuditEntry{Tenant: c.Tenant, At: now, Actor: c.Name, ClientID: c.ClientID, Objects: []string{c.ClientID}}) {
		return
	}
	s.writeToken(w, tok, "")
}

// passwordGrant logs a local user in. Every refusal says the same, so the
// answer tells nobody whether a username exists.
func (s *Service) passwordGrant(w http.ResponseWriter, r *http.Request, form url.Values, now time.Time) {
	if s.users == nil {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "this server keeps no user accounts; use client_credentials")
		return
	}
	username, password := strings.TrimSpace(form.Get("username")), form.Get("password")
	tenant := form.Get("tenant")
	if tenant == "" {
		tenant = store.DefaultTenant
	}
	if username == "" || password == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "give username and password")
		return
	}
	if len(password) > MaxPasswordLen || len(username) > 128 {
		s.refuseUser(w)
		return
	}
	wait, giveBack := s.clients.reserve(fromKey(userLimitKey(tenant, username), r), now)
	if wait > 0 {
		s.log.Warn("token request refused: too many failed attempts", "user", username, "tenant", tenant, "remote", remoteHost(r))
		tooMany(w, wait)
		return
	}
	u, err := s.users.GetUser(r.Context(), tenant, username)
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		giveBack()
		s.serverError(w, "look up user", err)
		return
	}
	// An unknown user, a single sign-on account or one whose password was
	// never set costs a verification too.
	hash := dummyHash()
	if found && len(u.PasswordHash) > 0 {
		hash = u.PasswordHash
	}
	match, ok := s.verify(w, giveBack, hash, password)
	if !ok {
		return
	}
	switch {
	case !found:
		s.log.Info("token request refused: unknown user", "user", username, "tenant", tenant, "remote", remoteHost(r))
		s.refuseUser(w)
		return
	case len(u.PasswordHash) == 0:
		s.log.Info("token request refused: the user has no password", "user", username, "tenant", tenant, "remote", remoteHost(r))
		s.refuseUser(w)
		return
	case !match:
		s.log.Info("token request refused: wrong password", "user", username, "tenant", tenant, "remote", remoteHost(r))
		s.refuseUser(w)
		return
	}
	giveBack()
	s.loginUser(w, r, u)
}

// loginUser answers a successful user login: it is recorded, and the user
// gets an access token and a refresh token.
func (s *Service) loginUser(w http.ResponseWriter, r *http.Request, u *store.User) {
	tok, refresh, err := s.userTokens(r.Context(), u)
	if err != nil {
		s.serverError(w, "issue token", err)
		return
	}
	if !s.recordLogin(w, r, store.AuditEntry{Tenant: u.Tenant, Actor: u.Username, ClientID: UserSubject(u.Username), Objects: []string{UserSubject(u.Username)}}) {
		return
	}
	s.writeToken(w, tok, refresh)
}

func (s *Service) userTokens(ctx context.Context, u *store.User) (Token, string, error) {
	tok, err := s.issueUser(u)
	if err != nil {
		return Token{}, "", err
	}
	refresh, err := s.newRefreshToken(ctx, u)
	return tok, refresh, err
}

func (s *Service) refreshGrant(w http.ResponseWriter, r *http.Request, form url.Values) {
	if s.users == nil {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "this server keeps no user accounts; use client_credentials")
		return
	}
	u, err := s.useRefreshToken(r.Context(), form.Get("refresh_token"))
	switch {
	case errors.Is(err, errBadRefresh):
		s.log.Info("token request refused: bad refresh token", "remote", remoteHost(r))
		oauthError(w, http.StatusBadRequest, "invalid_grant", errBadRefresh.Error())
		return
	case err != nil:
		s.serverError(w, "use refresh token", err)
		return
	}
	tok, refresh, err := s.userTokens(r.Context(), u)
	if err != nil {
		s.serverError(w, "issue token", err)
		return
	}
	s.writeToken(w, tok, refresh)
}

// RevokePath is where the server serves RevokeHandler.
const RevokePath = "/oauth/revoke"

// RevokeHandler serves RFC 7009 token revocation for refresh tokens: the
// token is unusable afterwards. It answers 200 whatever the token, as the
// RFC says, so it tells nothing about tokens it does not know. Access
// tokens cannot be revoked: they expire within the token lifetime.
func (s *Service) RevokeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if wait, _ := s.addrs.reserve(addrKey(remoteHost(r)), s.now()); wait > 0 {
			tooMany(w, wait)
			return
		}
		form, ok := readForm(w, r)
		if !ok {
			return
		}
		if err := s.RevokeRefreshToken(r.Context(), form.Get("token")); err != nil {
			s.serverError(w, "revoke refresh token", err)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// recordLogin appends a login's audit entry, answering the request itself
// (and returning false) when it cannot.
func (s *Service) recordLogin(w http.ResponseWriter, r *http.Request, e store.AuditEntry) bool {
	if s.audit == nil {
		return true
	}
	if e.At.IsZero() {
		e.At = s.now()
	}
	e.Remote, e.Action = remoteHost(r), "login"
	if err := s.audit.AppendAudit(r.Context(), e); err != nil {
		s.serverError(w, "record the login", err)
		return false
	}
	return true
}

func (s *Service) writeToken(w http.ResponseWriter, tok Token, refresh string) {
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken:  tok.AccessToken,
		TokenType:    "Bearer",
		ExpiresIn:    int64(tok.ExpiresAt.Sub(s.now()).Round(time.Second) / time.Second),
		RefreshToken: refresh,
	})
}

func (s *Service) refuseUser(w http.ResponseWriter) {
	oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown user or wrong password")
}

// mayActIn reports whether credential c may get a token for tenant t:
// only an organization admin may, and only for a tenant that exists.
func (s *Service) mayActIn(ctx context.Context, c *store.Credential, t string) (bool, error) {
	if s.tenants == nil || !Has(c.Roles, nil, GrantOrganization) {
		return false, nil
	}
	ts, err := s.tenants.ListTenants(ctx)
	if err != nil {
		return false, err
	}
	return slices.Contains(ts, t), nil
}

// clientAuth returns the client's id and secret, whether they came by HTTP
// Basic, and false when the client used both methods (RFC 6749 §2.3).
func clientAuth(r *http.Request, form url.Values) (id, secret string, basic, ok bool) {
	bid, bsecret, basic := r.BasicAuth()
	fid, fsecret := form.Get("client_id"), form.Get("client_secret")
	if !basic {
		return fid, fsecret, false, true
	}
	if fsecret != "" || (fid != "" && fid != bid) {
		return "", "", true, false
	}
	// Basic credentials are form-encoded first (RFC 6749 §2.3.1).
	if u, err := url.QueryUnescape(bid); err == nil {
		bid = u
	}
	if u, err := url.QueryUnescape(bsecret); err == nil {
		bsecret = u
	}
	return bid, bsecret, true, true
}

func (s *Service) refuse(w http.ResponseWriter, basic bool) {
	if basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="sortie"`)
	}
	oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client id or wrong client secret")
}

func (s *Service) serverError(w http.ResponseWriter, what string, err error) {
	id := rand.Text()
	s.log.Error("token endpoint: "+what, "error_id", id, "err", err)
	writeOAuthError(w, http.StatusInternalServerError, id, "server_error", "the server could not answer; try again later or report error id "+id)
}

func tooMany(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	oauthError(w, http.StatusTooManyRequests, "slow_down", "too many token requests; retry after "+w.Header().Get("Retry-After")+" s")
}

// oauthErrorBody has both RFC 6749 §5.2's fields, for OAuth clients, and
// the API's error envelope, for everything else Sortie ships.
type oauthErrorBody struct {
	Error       string       `json:"error"`
	Description string       `json:"error_description"`
	ErrorID     string       `json:"error_id"`
	Errors      []errorEntry `json:"errors"`
}

type errorEntry struct {
	Message string `json:"message"`
	Code    string `json:"code"`
}

func oauthError(w http.ResponseWriter, status int, code, msg string) {
	writeOAuthError(w, status, rand.Text(), code, msg)
}

func writeOAuthError(w http.ResponseWriter, status int, id, code, msg string) {
	writeJSON(w, status, oauthErrorBody{
		Error: code, Description: msg, ErrorID: id,
		Errors: []errorEntry{{Message: msg, Code: code}},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// addrKey is what the limits count a remote host by: an IPv4 address (an
// IPv4-mapped IPv6 one as IPv4), or an IPv6 address's /64.
func addrKey(host string) string {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.String()
}

// fromKey is the failure limit's key of id (a client id, or a user's
// userLimitKey) tried from r's address.
func fromKey(id string, r *http.Request) string {
	return id + " from " + addrKey(remoteHost(r))
}

// remoteHost is the address the connection comes from, without its port.
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
