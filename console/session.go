package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/auth"
)

// Cookie names. The session cookie holds the short-lived JWT itself: the
// server keeps no session state, and a session ends when its token expires.
const (
	sessionCookie    = "sortie_session"
	loginCSRFCookie  = "sortie_login"
	flashCookie      = "sortie_flash"
	csrfField        = "csrf"
	maxFormBytes     = 64 << 10
	maxTokenBytes    = 8 << 10
	expiredMessage   = "Your session expired (console sessions last as long as an access token). Log in again."
	signedOutMessage = "You are signed out."
)

// session is the signed-in principal of a request.
type session struct {
	auth.Principal
	token string
	// CSRF is the token every POST form of this session carries: a hash of
	// the session's JWT, which a cross-site page can neither read nor
	// compute.
	CSRF string
}

func newSession(p auth.Principal, token string) *session {
	sum := sha256.Sum256([]byte("sortie-console-csrf\x00" + token))
	return &session{Principal: p, token: token, CSRF: base64.RawURLEncoding.EncodeToString(sum[:])}
}

// signedIn lets a request through with a valid session cookie. Pages
// redirect to the login page; partials and streams (partial) answer 401 so
// the page's script can say the session expired.
func (c *Console) signedIn(h func(http.ResponseWriter, *http.Request, *session), partial bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error = auth.ErrNoToken
		var p auth.Principal
		ck, cerr := r.Cookie(sessionCookie)
		if cerr == nil && ck.Value != "" {
			p, err = c.auth.Verify(ck.Value)
		}
		if err != nil {
			reason := ""
			if errors.Is(err, auth.ErrTokenExpired) {
				reason = "expired"
			}
			if partial {
				w.Header().Set("Cache-Control", "no-store")
				msg := "not signed in"
				if reason != "" {
					msg = expiredMessage
				}
				http.Error(w, msg, http.StatusUnauthorized)
				return
			}
			if cerr == nil {
				clearCookie(w, r, sessionCookie)
			}
			q := url.Values{}
			if reason != "" {
				q.Set("reason", reason)
			}
			if r.Method == http.MethodGet && r.URL.RequestURI() != "/" {
				q.Set("next", r.URL.RequestURI())
			}
			target := "/login"
			if len(q) > 0 {
				target += "?" + q.Encode()
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		h(w, r, newSession(p, ck.Value))
	})
}

// checkCSRF refuses a POST whose form lacks the session's CSRF token, or
// that comes from another origin.
func (c *Console) checkCSRF(h func(http.ResponseWriter, *http.Request, *session)) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "the form could not be read", http.StatusBadRequest)
			return
		}
		if !sameOrigin(r) || !equal(r.PostForm.Get(csrfField), s.CSRF) {
			http.Error(w, "This form is stale or did not come from this console (CSRF check failed). Reload the page and try again.", http.StatusForbidden)
			return
		}
		h(w, r, s)
	}
}

// sameOrigin is a second wall after the CSRF token: a browser's Origin
// header, when sent, must name this host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func equal(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

type loginData struct {
	Page
	CSRF    string
	Next    string
	Message string
	Error   string
	Tab     string
	// SSO names the single sign-on provider; empty: no button.
	SSO string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	d := loginData{Page: c.page(r, nil, "Log in"), Next: safeNext(r.URL.Query().Get("next")), Tab: "client", SSO: c.ssoName()}
	switch r.URL.Query().Get("reason") {
	case "expired":
		d.Message = expiredMessage
	case "signedout":
		d.Message = signedOutMessage
	}
	d.CSRF = c.loginCSRF(w, r)
	c.render(w, r, http.StatusOK, "login", d)
}

// loginCSRF returns the login form's CSRF token: a random value also set
// in a SameSite=Strict cookie (double submit), since no session exists yet.
func (c *Console) loginCSRF(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(loginCSRFCookie); err == nil && len(ck.Value) >= 20 {
		return ck.Value
	}
	v := randomToken()
	setCookie(w, r, loginCSRFCookie, v, time.Time{})
	return v
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read", http.StatusBadRequest)
		return
	}
	f := r.PostForm
	d := loginData{Page: c.page(r, nil, "Log in"), Next: safeNext(f.Get("next")), Tab: "client", SSO: c.ssoName()}
	ck, err := r.Cookie(loginCSRFCookie)
	if err != nil || !sameOrigin(r) || !equal(f.Get(csrfField), ck.Value) {
		d.CSRF = c.loginCSRF(w, r)
		d.Error = "The login form was stale (CSRF check failed); try again."
		c.render(w, r, http.StatusForbidden, "login", d)
		return
	}
	d.CSRF = ck.Value
	var token string
	status := http.StatusUnauthorized
	if pasted := strings.TrimSpace(f.Get("token")); pasted != "" || f.Get("method") == "token" {
		d.Tab = "token"
		token = strings.TrimPrefix(pasted, "Bearer ")
		if token == "" || len(token) > maxTokenBytes {
			d.Error = "Paste an access token (from `sortie auth token` or /oauth/token)."
			status = http.StatusBadRequest
			token = ""
		}
	} else {
		var msg string
		token, status, msg = c.exchange(r, strings.TrimSpace(f.Get("client_id")), f.Get("client_secret"), strings.TrimSpace(f.Get("tenant")))
		d.Error = msg
	}
	if token != "" {
		p, err := c.auth.Verify(token)
		switch {
		case errors.Is(err, auth.ErrTokenExpired):
			d.Error = "That token has expired; get a new one."
		case err != nil:
			d.Error = "That token is not valid for this server."
		default:
			c.startSession(w, r, token)
			c.log.Info("console login", "client_id", p.ClientID, "tenant", p.Tenant)
			next := d.Next
			if next == "" {
				next = "/"
			}
			http.Redirect(w, r, next, http.StatusSeeOther)
			return
		}
	}
	c.render(w, r, status, "login", d)
}

// exchange gets a token for a client id and secret from the server's own
// token endpoint, in process: the same rate limits, constant-time checks,
// log lines and audit entries as /oauth/token, counted against the
// browser's address. tenant, when not empty, asks for a token of that
// tenant (organization admins only).
func (c *Console) exchange(r *http.Request, id, secret, tenant string) (token string, status int, msg string) {
	if id == "" || secret == "" {
		return "", http.StatusBadRequest, "Enter a client id and its secret."
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	if tenant != "" {
		form.Set("tenant", tenant)
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, auth.TokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		return "", http.StatusInternalServerError, "The login could not be processed."
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = r.RemoteAddr
	rec := serveInProcess(c.auth.TokenHandler(), req)
	var body struct {
		AccessToken string `json:"access_token"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	switch {
	case rec.Code == http.StatusOK && body.AccessToken != "":
		return body.AccessToken, http.StatusOK, ""
	case rec.Code == http.StatusTooManyRequests:
		return "", rec.Code, "Too many login attempts; wait " + rec.Header().Get("Retry-After") + " seconds and try again."
	case rec.Code == http.StatusUnauthorized:
		return "", rec.Code, "Unknown client id or wrong secret."
	case rec.Code == http.StatusBadRequest && tenant != "":
		return "", rec.Code, "No token for tenant " + tenant + ": " + body.Description
	}
	return "", rec.Code, "The login failed: " + body.Description
}

func (c *Console) startSession(w http.ResponseWriter, r *http.Request, token string) {
	exp := c.now().Add(auth.DefaultTTL)
	// The cookie lives as long as the token; the token's own exp is what
	// counts (a stale cookie only leads to the "expired" message).
	if claims, ok := tokenExpiry(token); ok {
		exp = claims
	}
	setCookie(w, r, sessionCookie, token, exp)
	clearCookie(w, r, loginCSRFCookie)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	// A logout form carries the session's CSRF token; without a valid
	// session there is nothing to log out of.
	if ck, err := r.Cookie(sessionCookie); err == nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		_ = r.ParseForm()
		if !equal(r.PostForm.Get(csrfField), newSession(auth.Principal{}, ck.Value).CSRF) || !sameOrigin(r) {
			http.Error(w, "CSRF check failed; reload the page and try again.", http.StatusForbidden)
			return
		}
	}
	clearCookie(w, r, sessionCookie)
	http.Redirect(w, r, "/login?reason=signedout", http.StatusSeeOther)
}

// sessionInfo answers the page script's question "is my session still
// good?" with the seconds left.
func (c *Console) sessionInfo(w http.ResponseWriter, r *http.Request, s *session) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	left := 0
	if exp, ok := tokenExpiry(s.token); ok {
		left = int(exp.Sub(c.now()).Seconds())
	}
	json.NewEncoder(w).Encode(map[string]any{"tenant": s.Tenant, "name": s.Name, "expiresIn": left})
}

// tokenExpiry reads a verified token's exp claim (display only).
func tokenExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var cl struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(b, &cl) != nil || cl.Exp == 0 {
		return time.Time{}, false
	}
	return time.Unix(cl.Exp, 0), true
}

// secureCookiesKey marks a request whose cookies are Secure though it came
// in plaintext (Options.SecureCookies).
type secureCookiesKey struct{}

// secureCookie says whether cookies set in answer to r carry Secure: r
// came over TLS, or through a TLS proxy of an https public URL.
func secureCookie(r *http.Request) bool {
	return r.TLS != nil || r.Context().Value(secureCookiesKey{}) != nil
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", Expires: expires,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secureCookie(r),
	})
}

func clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secureCookie(r),
	})
}

// setFlash leaves a one-time message for the next page (after a redirect).
func setFlash(w http.ResponseWriter, r *http.Request, kind, msg string) {
	if len(msg) > 1500 {
		msg = msg[:1500] + "…"
	}
	setCookie(w, r, flashCookie, base64.RawURLEncoding.EncodeToString([]byte(kind+"\x00"+msg)), time.Now().Add(time.Minute))
}

// Flash is a one-time message shown at the top of a page.
type Flash struct{ Kind, Message string }

func takeFlash(w http.ResponseWriter, r *http.Request) *Flash {
	ck, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	clearCookie(w, r, flashCookie)
	b, err := base64.RawURLEncoding.DecodeString(ck.Value)
	if err != nil {
		return nil
	}
	kind, msg, ok := strings.Cut(string(b), "\x00")
	if !ok || (kind != "ok" && kind != "error") {
		return nil
	}
	return &Flash{Kind: kind, Message: msg}
}

// safeNext keeps a post-login redirect on this site: only a path that
// parses with no scheme, host or user, starts with one "/", and holds no
// control character or backslash (browsers drop tabs and newlines and read
// a backslash as "/", so "/<tab>/evil.example" would leave the site), else "".
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return ""
	}
	for _, r := range next {
		if r < 0x20 || r == 0x7f || r == '\\' || (r >= 0x80 && r <= 0x9f) {
			return ""
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return ""
	}
	return next
}

func randomToken() string { return rand.Text() }
