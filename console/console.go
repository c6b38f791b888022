package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/notify"
	"github.com/sortie-cd/sortie/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// DefaultHeartbeat is how often an idle console event stream sends a
// comment, so proxies keep it open.
const DefaultHeartbeat = 15 * time.Second

// Options configure the handler New returns.
type Options struct {
	// Deployments is the same deployment runner the REST API uses;
	// required. Every call passes the signed-in principal's tenant.
	Deployments api.Deployments
	// Auth issues and verifies the session's token and keeps credentials;
	// required.
	Auth *auth.Service
	// Agents lists the connected agents (the server's agent hub); nil
	// means none are.
	Agents api.Agents
	// API is the REST API's handler (api.New). The console makes every
	// write, and reads configuration, through it in process with the
	// session's token, so the API's role checks and audit log apply to
	// clicks as they do to the CLI. Nil means Mount's apiHandler; a console
	// with neither shows pages but changes nothing.
	API http.Handler
	// Logger receives server errors; nil discards.
	Logger *slog.Logger
	// Heartbeat is the event streams' heartbeat period; zero means
	// DefaultHeartbeat.
	Heartbeat time.Duration
	// Streams caps the event streams each principal holds open at once
	// (429 beyond); the server shares one with the API. Nil means a cap of
	// auth.DefaultMaxStreams for the console's streams alone.
	Streams *auth.StreamLimit
	// Now is the clock for durations shown; nil means time.Now.
	Now func() time.Time
	// SecureCookies marks every cookie Secure, also on a request that came
	// in plaintext: the public URL is https and a TLS proxy in front
	// terminates TLS. Without it only requests over TLS get Secure cookies.
	SecureCookies bool
}

// Console serves the web console.
type Console struct {
	d         api.Deployments
	auth      *auth.Service
	agents    api.Agents
	api       http.Handler
	sso       SSO
	log       *slog.Logger
	heartbeat time.Duration
	streams   *auth.StreamLimit
	now       func() time.Time
	secure    bool
	pages     map[string]*template.Template
	mux       *http.ServeMux
}

// New returns the console's handler. Mount it at "/" next to the API with
// Mount.
func New(o Options) (*Console, error) {
	if o.Deployments == nil || o.Auth == nil {
		return nil, errors.New("console: Options need Deployments and Auth")
	}
	c := &Console{d: o.Deployments, auth: o.Auth, agents: o.Agents, api: o.API, log: o.Logger, heartbeat: o.Heartbeat, streams: o.Streams, now: o.Now, secure: o.SecureCookies}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.streams == nil {
		c.streams = auth.NewStreamLimit(0)
	}
	if c.heartbeat <= 0 {
		c.heartbeat = DefaultHeartbeat
	}
	if c.now == nil {
		c.now = time.Now
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c.pages = pages
	c.mux = c.routes()
	return c, nil
}

// Mount returns a handler that sends the API's routes (every path of
// api.Routes and anything under api.Prefix) to apiHandler and everything
// else to the console. A *Console built without Options.API makes its
// writes through apiHandler; call Mount before serving.
func Mount(apiHandler, console http.Handler) http.Handler {
	if c, ok := console.(*Console); ok && c.api == nil {
		c.api = apiHandler
	}
	mux := http.NewServeMux()
	seen := map[string]bool{}
	for _, rt := range api.Routes() {
		if !seen[rt.Path] {
			seen[rt.Path] = true
			mux.Handle(rt.Path, apiHandler)
		}
	}
	mux.Handle(api.Prefix+"/", apiHandler)
	mux.Handle("/", console)
	return mux
}

func (c *Console) routes() *http.ServeMux {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	mux.HandleFunc("GET /login", c.loginPage)
	mux.HandleFunc("POST /login", c.login)
	mux.HandleFunc("POST /logout", c.logout)
	c.loginRoutes(mux)

	page := func(pattern string, h func(http.ResponseWriter, *http.Request, *session)) {
		mux.Handle(pattern, c.signedIn(h, false))
	}
	post := func(pattern string, h func(http.ResponseWriter, *http.Request, *session)) {
		mux.Handle(pattern, c.signedIn(c.checkCSRF(h), false))
	}
	partial := func(pattern string, h func(http.ResponseWriter, *http.Request, *session)) {
		mux.Handle(pattern, c.signedIn(h, true))
	}
	page("GET /{$}", c.listPage)
	page("GET /pipelines/{id}", c.pipelinePage)
	page("GET /pipelines/{id}/source", c.sourcePage)
	post("POST /pipelines/{id}/actions/{action}", c.act)
	post("POST /pipelines/{id}/redeploy", c.redeploy)
	page("GET "+notify.LinkPath+"{token}", c.linkPage)
	post("POST "+notify.LinkPath+"{token}", c.useLink)
	page("GET /delivery", c.deliveryPage)
	page("GET /settings/credentials", c.credentialsPage)
	post("POST /settings/credentials", c.createCredential)
	post("POST /settings/credentials/{id}/delete", c.deleteCredential)
	page("GET /settings/agents", c.agentsPage)
	page("GET /settings/secrets", c.secretsPage)
	post("POST /settings/secrets", c.putSecret)
	post("POST /settings/secrets/{name}/delete", c.deleteSecret)
	page("GET /settings/providers", c.providersPage)
	post("POST /settings/providers", c.createProvider)
	post("POST /settings/providers/{name}/delete", c.deleteProvider)
	page("GET /settings/windows", c.windowsPage)
	post("POST /settings/windows", c.putWindow)
	post("POST /settings/windows/delete", c.deleteWindow)
	post("POST /settings/windows/freezes", c.setFreeze)
	post("POST /settings/windows/freezes/lift", c.liftFreeze)
	page("GET /settings/users", c.usersPage)
	post("POST /settings/credentials/{id}/roles", c.setRoles)
	page("GET /settings/notifications", c.notificationsPage)
	post("POST /settings/notifications", c.createSubscription)
	post("POST /settings/notifications/{id}/delete", c.deleteSubscription)
	page("GET /settings/audit", c.auditPage)
	page("GET /settings/tenant", c.tenantPage)
	post("POST /settings/tenant", c.switchTenant)
	partial("GET /console/fragments/list", c.listFragment)
	partial("GET /console/fragments/pipelines/{id}", c.pipelineFragment)
	partial("GET /console/events", c.events)
	partial("GET /console/session", c.sessionInfo)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.notFound(w, r, nil)
	})
	return mux
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// No inline script or style anywhere: the policy can say so.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	if c.secure {
		r = r.WithContext(context.WithValue(r.Context(), secureCookiesKey{}, true))
	}
	c.mux.ServeHTTP(w, r)
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		next.ServeHTTP(w, r)
	})
}

// render writes a full page, or only its "content" part for fragments.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	t, ok := c.pages[name]
	if !ok {
		panic("console: no template " + name)
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, name, data); err != nil {
		c.serverError(w, r, fmt.Errorf("render %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, b.String())
}

func (c *Console) serverError(w http.ResponseWriter, r *http.Request, err error) {
	id := randomToken()[:12]
	c.log.Error("console: request failed", "error_id", id, "path", r.URL.Path, "err", err)
	http.Error(w, "The server could not answer this page; report error id "+id+".", http.StatusInternalServerError)
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request, s *session) {
	c.render(w, r, http.StatusNotFound, "notfound", struct {
		Page
	}{Page: c.page(r, s, "Not found")})
}

// fail answers a request that the runner refused or that failed, in the
// user's words.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	var ae *apiError
	switch {
	case errors.Is(err, store.ErrNotFound), errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		c.notFound(w, r, s)
	default:
		c.serverError(w, r, err)
	}
}

// userMessage returns what to tell the user about a refused action.
func userMessage(err error) string {
	if ce, ok := errors.AsType[*apiError](err); ok {
		return ce.Message // the API's own words, from its answer
	}
	status, entries := api.Classify(err)
	if status == http.StatusInternalServerError {
		return ""
	}
	msgs := make([]string, len(entries))
	for i, e := range entries {
		msgs[i] = e.Message
	}
	return strings.Join(msgs, "; ")
}

// errorText is an error as the user reads it: the API's or engine's message
// when there is one.
func errorText(err error) string {
	if msg := userMessage(err); msg != "" {
		return msg
	}
	return err.Error()
}
