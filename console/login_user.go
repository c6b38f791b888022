package console

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/auth"
)

// SSO is the browser's single sign-on (OpenID Connect authorization code
// with PKCE) as the login page needs it; package sso has it.
type SSO interface {
	// Name is the provider's name on the login button.
	Name() string
	// AuthCodeURL is where to send the browser: the provider's
	// authorization endpoint with state, nonce and the S256 challenge of
	// verifier.
	AuthCodeURL(state, nonce, verifier string) string
	// Exchange redeems code with verifier, verifies the ID token (nonce
	// included) and maps its groups to a tenant and roles.
	Exchange(ctx context.Context, code, verifier, nonce string) (auth.Identity, error)
}

// ssoCookie carries a code flow's state, nonce, PKCE verifier and next
// page from the login button to the callback. SameSite=Lax: the callback
// is a top-level navigation coming from the provider's site.
const ssoCookie = "sortie_sso"

// SetSSO turns on single sign-on on the login page; call it before
// serving.
func (c *Console) SetSSO(s SSO) { c.sso = s }

func (c *Console) ssoName() string {
	if c.sso == nil {
		return ""
	}
	return c.sso.Name()
}

// loginRoutes registers the logins of people: a local user's password and
// single sign-on.
func (c *Console) loginRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /login/password", c.passwordLogin)
	mux.HandleFunc("GET /login/sso", c.ssoStart)
	mux.HandleFunc("GET /login/sso/callback", c.ssoCallback)
}

// passwordLogin logs a local user in through the token endpoint's password
// grant, in process (its rate limits, constant-time checks and audit).
// The session holds the access token only: the refresh token is revoked at
// once, so a console session lasts one token, as with client credentials.
func (c *Console) passwordLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read", http.StatusBadRequest)
		return
	}
	f := r.PostForm
	d := loginData{Page: c.page(r, nil, "Log in"), Next: safeNext(f.Get("next")), Tab: "password", SSO: c.ssoName()}
	ck, err := r.Cookie(loginCSRFCookie)
	if err != nil || !sameOrigin(r) || !equal(f.Get(csrfField), ck.Value) {
		d.CSRF = c.loginCSRF(w, r)
		d.Error = "The login form was stale (CSRF check failed); try again."
		c.render(w, r, http.StatusForbidden, "login", d)
		return
	}
	d.CSRF = ck.Value
	username, password := strings.TrimSpace(f.Get("username")), f.Get("password")
	if username == "" || password == "" {
		d.Error = "Enter your username and password."
		c.render(w, r, http.StatusBadRequest, "login", d)
		return
	}
	form := url.Values{"grant_type": {auth.GrantPassword}, "username": {username}, "password": {password}}
	if t := strings.TrimSpace(f.Get("tenant")); t != "" {
		form.Set("tenant", t)
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, auth.TokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		c.render(w, r, http.StatusInternalServerError, "login", d)
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = r.RemoteAddr
	rec := serveInProcess(c.auth.TokenHandler(), req)
	var body struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		Error        string `json:"error"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	switch {
	case rec.Code == http.StatusOK && body.AccessToken != "":
		if err := c.auth.RevokeRefreshToken(r.Context(), body.RefreshToken); err != nil {
			c.log.Warn("console login: refresh token not revoked", "err", err)
		}
		c.signIn(w, r, body.AccessToken, d.Next, false)
		return
	case rec.Code == http.StatusTooManyRequests:
		d.Error = "Too many login attempts; wait " + rec.Header().Get("Retry-After") + " seconds and try again."
	case body.Error == "invalid_grant":
		d.Error = "Unknown user or wrong password."
	default:
		d.Error = "The login failed; try again later."
	}
	c.render(w, r, rec.Code, "login", d)
}

// signIn starts the session of a verified token and sends the browser to
// next. After single sign-on the answer is a page that moves on by itself:
// the navigation came from the provider's site, and the SameSite=Strict
// session cookie is only sent on a navigation this site starts.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request, token, next string, crossSite bool) {
	p, err := c.auth.Verify(token)
	if err != nil {
		c.serverError(w, r, err)
		return
	}
	c.startSession(w, r, token)
	c.log.Info("console login", "client_id", p.ClientID, "tenant", p.Tenant)
	if next = safeNext(next); next == "" {
		next = "/"
	}
	if !crossSite {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	u := template.HTMLEscapeString(next)
	w.Write([]byte(`<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=` + u + `"><title>Signed in</title><p>Signed in. <a href="` + u + `">Continue</a>.</p>`))
}

func (c *Console) ssoStart(w http.ResponseWriter, r *http.Request) {
	if c.sso == nil {
		c.notFound(w, r, nil)
		return
	}
	state, nonce, verifier := randomToken(), randomToken(), randomToken()+randomToken()
	next := safeNext(r.URL.Query().Get("next"))
	v := base64.RawURLEncoding.EncodeToString([]byte(state + "\x00" + nonce + "\x00" + verifier + "\x00" + next))
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: v, Path: "/login/sso", MaxAge: int((10 * time.Minute).Seconds()),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secureCookie(r)})
	http.Redirect(w, r, c.sso.AuthCodeURL(state, nonce, verifier), http.StatusFound)
}

func (c *Console) ssoCallback(w http.ResponseWriter, r *http.Request) {
	if c.sso == nil {
		c.notFound(w, r, nil)
		return
	}
	d := loginData{Page: c.page(r, nil, "Log in"), Tab: "sso", SSO: c.ssoName()}
	d.CSRF = c.loginCSRF(w, r)
	fail := func(status int, msg string) {
		d.Error = msg
		c.render(w, r, status, "login", d)
	}
	ck, err := r.Cookie(ssoCookie)
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Path: "/login/sso", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secureCookie(r)})
	if err != nil {
		fail(http.StatusBadRequest, "The single sign-on took too long or started elsewhere; try again.")
		return
	}
	b, err := base64.RawURLEncoding.DecodeString(ck.Value)
	parts := strings.Split(string(b), "\x00")
	q := r.URL.Query()
	if err != nil || len(parts) != 4 || !equal(q.Get("state"), parts[0]) {
		fail(http.StatusBadRequest, "The single sign-on answer does not match this browser's request (state); try again.")
		return
	}
	if e := q.Get("error"); e != "" {
		fail(http.StatusUnauthorized, "The identity provider refused the login: "+e+" "+q.Get("error_description"))
		return
	}
	id, err := c.sso.Exchange(r.Context(), q.Get("code"), parts[2], parts[1])
	if err != nil {
		c.log.Warn("console single sign-on refused", "err", err)
		fail(http.StatusUnauthorized, "Single sign-on failed: "+userFacing(err))
		return
	}
	tok, refresh, err := c.auth.LoginIdentity(r.Context(), r, id)
	if err != nil {
		c.log.Warn("console single sign-on refused", "user", id.Username, "tenant", id.Tenant, "err", err)
		fail(http.StatusForbidden, "Single sign-on failed: "+userFacing(err))
		return
	}
	if err := c.auth.RevokeRefreshToken(r.Context(), refresh); err != nil {
		c.log.Warn("console login: refresh token not revoked", "err", err)
	}
	clearCookie(w, r, loginCSRFCookie)
	c.signIn(w, r, tok.AccessToken, parts[3], true)
}

// userFacing is the part of an SSO error fit to show: the auth package's
// own sentences, else a generic one (details go to the log).
func userFacing(err error) string {
	var inv *auth.InvalidError
	switch {
	case errors.As(err, &inv):
		return inv.Message
	case errors.Is(err, auth.ErrSSOConflict):
		return auth.ErrSSOConflict.Error() + "."
	}
	return "the identity provider's answer could not be verified; ask an administrator to check the server's log."
}
