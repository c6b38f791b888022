package api

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/notify"
)

// Prefix is the path every REST route starts with.
const Prefix = "/api/v1"

// DefaultHeartbeat is how often an idle event stream sends a comment, so
// proxies keep it open and clients notice a dead connection.
const DefaultHeartbeat = 15 * time.Second

// Options configure the handler New returns.
type Options struct {
	// Deployments is the deployment runner; required.
	Deployments Deployments
	// Agents lists the connected agents; nil means none are.
	Agents Agents
	// Auth verifies bearer tokens, serves /oauth/token and keeps
	// credentials; required.
	Auth *auth.Service
	// Logger receives server errors (with their error id); nil discards.
	Logger *slog.Logger
	// Metrics is the registry /metrics serves and the API's own metrics
	// join; nil means a new registry with only the API's metrics.
	Metrics *prometheus.Registry
	// Ready answers /readyz: nil error means ready. Nil means always ready.
	Ready func(context.Context) error
	// Heartbeat is the event streams' heartbeat period; zero means
	// DefaultHeartbeat.
	Heartbeat time.Duration
	// Streams caps the event streams each principal holds open at once
	// (429 beyond); share one with the console. Nil means a cap of
	// auth.DefaultMaxStreams for this API's streams alone.
	Streams *auth.StreamLimit
	// Providers keeps the tenants' metric providers; nil answers the
	// provider routes with 501.
	Providers ProviderStore
	// Store keeps tenants, custom roles, credentials' roles and the audit
	// log; nil answers those routes with 501, records no audit and gives
	// custom roles no grant.
	Store SecurityStore
	// Secrets keeps the tenants' secrets and the master key; nil answers
	// the secret and master-key routes with 501.
	Secrets Secrets
	// Controls keeps deploy windows and freezes; nil answers those routes
	// with 501.
	Controls Controls
	// Notifications keeps subscriptions and deliveries; nil answers the
	// notification routes with 501 and refuses action links.
	Notifications NotificationStore
	// Notifier sends test messages; nil answers the test route with 501.
	Notifier Notifier
	// Links verifies notifications' action links; nil refuses them.
	Links *notify.Links
}

// access is what a route asks of the caller: a grant (auth.SystemRoles
// and the tenant's custom roles say which roles give it).
type access int

const (
	public       access = iota // no token
	signedIn                   // any valid token: the caller's own account
	read                       // see the tenant's deployments
	deploy                     // start, act, redeploy
	approve                    // the approve grant (system deploy roles, or a custom role defined with it)
	admin                      // credentials, providers, secrets, audit
	organization               // tenants, roles, the master key
)

var accessGrant = map[access]auth.Grant{
	read:         auth.GrantRead,
	deploy:       auth.GrantDeploy,
	approve:      auth.GrantApprove,
	admin:        auth.GrantAdmin,
	organization: auth.GrantOrganization,
}

// allowed reports whether p may use a route of access a. The tenant's
// custom roles are read only for a principal holding one.
func (s *server) allowed(ctx context.Context, a access, p Principal) (bool, error) {
	if a == public || a == signedIn {
		return true, nil
	}
	g := accessGrant[a]
	if auth.Has(p.Roles, nil, g) {
		return true, nil
	}
	if s.store == nil || !slices.ContainsFunc(p.Roles, func(r string) bool { return !auth.IsSystemRole(r) }) {
		return false, nil
	}
	custom, err := s.customRoles(ctx, p.Tenant)
	if err != nil {
		return false, err
	}
	return auth.Has(p.Roles, custom, g), nil
}

// route is one entry of the route table, the single list that both builds
// the mux and is checked against docs/openapi.yaml.
type route struct {
	method, path string
	access       access
	// stream marks long-lived responses, kept out of the duration metric.
	stream bool
	// audit names the action recorded in the audit log when the route
	// answers 2xx, with the path's ids and the created object's id.
	audit  string
	handle func(s *server, w http.ResponseWriter, r *http.Request, p Principal)
}

func routes() []route {
	return []route{
		{method: "GET", path: "/healthz", handle: (*server).healthz},
		{method: "GET", path: "/readyz", handle: (*server).readyz},
		{method: "GET", path: "/metrics", handle: (*server).metrics},
		{method: "POST", path: auth.TokenPath, handle: (*server).token},
		{method: "POST", path: auth.RevokePath, handle: (*server).revoke},
		{method: "POST", path: auth.DeviceAuthorizationPath, handle: (*server).deviceAuthorization},

		{method: "POST", path: Prefix + "/pipelines", access: deploy, audit: "pipeline.start", handle: (*server).startPipeline},
		{method: "GET", path: Prefix + "/pipelines", access: read, handle: (*server).listPipelines},
		{method: "GET", path: Prefix + "/pipelines/{id}", access: read, handle: (*server).getPipeline},
		{method: "GET", path: Prefix + "/pipelines/{id}/source", access: read, handle: (*server).getSource},
		{method: "POST", path: Prefix + "/pipelines/{id}/approve", access: approve, audit: "pipeline.approve", handle: actOn(actApprove)},
		{method: "POST", path: Prefix + "/pipelines/{id}/reject", access: approve, audit: "pipeline.reject", handle: actOn(actReject)},
		{method: "POST", path: Prefix + "/pipelines/{id}/skip", access: deploy, audit: "pipeline.skip", handle: actOn(actSkip)},
		{method: "POST", path: Prefix + "/pipelines/{id}/rollback", access: deploy, audit: "pipeline.rollback", handle: actOn(actRollback)},
		{method: "POST", path: Prefix + "/pipelines/{id}/cancel", access: deploy, audit: "pipeline.cancel", handle: actOn(actCancel)},
		{method: "POST", path: Prefix + "/pipelines/{id}/redeploy", access: deploy, audit: "pipeline.redeploy", handle: (*server).redeploy},
		{method: "POST", path: Prefix + "/pipelines/{id}/restore", access: deploy, audit: "pipeline.restore", handle: (*server).restore},
		{method: "POST", path: Prefix + "/pipelines/{id}/webhooks/{target}/{group}/{index}/callback", access: deploy, audit: "pipeline.callback", handle: (*server).webhookCallback},
		{method: "GET", path: Prefix + "/pipelines/{id}/events", access: read, stream: true, handle: (*server).pipelineEvents},
		{method: "GET", path: Prefix + "/events", access: read, stream: true, handle: (*server).tenantEvents},

		{method: "GET", path: Prefix + "/agents", access: read, handle: (*server).listAgents},
		{method: "GET", path: Prefix + "/dora", access: read, handle: (*server).getDora},

		{method: "GET", path: Prefix + "/credentials", access: admin, handle: (*server).listCredentials},
		{method: "POST", path: Prefix + "/credentials", access: admin, audit: "credential.create", handle: (*server).createCredential},
		{method: "DELETE", path: Prefix + "/credentials/{id}", access: admin, audit: "credential.delete", handle: (*server).deleteCredential},
		{method: "PUT", path: Prefix + "/credentials/{id}/roles", access: admin, audit: "credential.roles", handle: (*server).setCredentialRoles},

		{method: "GET", path: Prefix + "/users", access: admin, handle: (*server).listUsers},
		{method: "POST", path: Prefix + "/users", access: admin, audit: "user.create", handle: (*server).createUser},
		{method: "DELETE", path: Prefix + "/users/{username}", access: admin, audit: "user.delete", handle: (*server).deleteUser},
		{method: "PUT", path: Prefix + "/users/{username}/roles", access: admin, audit: "user.roles", handle: (*server).setUserRoles},
		{method: "PUT", path: Prefix + "/users/{username}/password", access: admin, audit: "user.password", handle: (*server).setUserPassword},
		{method: "GET", path: Prefix + "/account", access: signedIn, handle: (*server).getAccount},
		{method: "PUT", path: Prefix + "/account/password", access: signedIn, audit: "account.password", handle: (*server).changePassword},

		{method: "GET", path: Prefix + "/providers", access: read, handle: (*server).listProviders},
		{method: "POST", path: Prefix + "/providers", access: admin, audit: "provider.create", handle: (*server).createProvider},
		{method: "DELETE", path: Prefix + "/providers/{name}", access: admin, audit: "provider.delete", handle: (*server).deleteProvider},

		{method: "GET", path: Prefix + "/secrets", access: admin, handle: (*server).listSecrets},
		{method: "PUT", path: Prefix + "/secrets/{name}", access: admin, audit: "secret.put", handle: (*server).putSecret},
		{method: "DELETE", path: Prefix + "/secrets/{name}", access: admin, audit: "secret.delete", handle: (*server).deleteSecret},

		{method: "GET", path: Prefix + "/windows", access: read, handle: (*server).listWindows},
		{method: "PUT", path: Prefix + "/windows/{scope}/{name}", access: admin, audit: "window.put", handle: (*server).putWindow},
		{method: "DELETE", path: Prefix + "/windows/{scope}/{name}", access: admin, audit: "window.delete", handle: (*server).deleteWindow},
		{method: "GET", path: Prefix + "/freezes", access: read, handle: (*server).listFreezes},
		{method: "PUT", path: Prefix + "/freezes/{scope}", access: admin, audit: "freeze.set", handle: (*server).setFreeze},
		{method: "DELETE", path: Prefix + "/freezes/{scope}", access: admin, audit: "freeze.lift", handle: (*server).liftFreeze},
		{method: "GET", path: Prefix + "/controls", access: read, handle: (*server).getControls},
		{method: "GET", path: Prefix + "/notifications", access: read, handle: (*server).listSubscriptions},
		{method: "POST", path: Prefix + "/notifications", access: admin, audit: "notification.create", handle: (*server).createSubscription},
		{method: "DELETE", path: Prefix + "/notifications/{id}", access: admin, audit: "notification.delete", handle: (*server).deleteSubscription},
		{method: "POST", path: Prefix + "/notifications/{id}/test", access: admin, audit: "notification.test", handle: (*server).testSubscription},
		{method: "GET", path: Prefix + "/notifications/deliveries", access: admin, handle: (*server).listDeliveries},

		{method: "GET", path: Prefix + "/audit", access: admin, handle: (*server).listAudit},

		{method: "GET", path: Prefix + "/tenants", access: organization, handle: (*server).listTenants},
		{method: "POST", path: Prefix + "/tenants", access: organization, audit: "tenant.create", handle: (*server).createTenant},
		{method: "GET", path: Prefix + "/config", access: organization, handle: (*server).getConfig},
		{method: "PUT", path: Prefix + "/config", access: organization, audit: "config.apply", handle: (*server).applyConfig},
		{method: "POST", path: Prefix + "/master-key/rotate", access: organization, audit: "master-key.rotate", handle: (*server).rotateMasterKey},
	}
}

// Route is a method and a path pattern the handler serves.
type Route struct {
	Method, Path string
	// Authenticated routes need a bearer token.
	Authenticated bool
	// Grant is what an authenticated route needs of the caller's roles;
	// empty for a route any valid token may use (the caller's own account).
	Grant auth.Grant
	// Audit is the action an answered request records; empty for reads.
	Audit string
	// Stream routes answer with a long-lived event stream.
	Stream bool
}

// Routes lists every route New registers, for tests that must cover all of
// them (the OpenAPI document, tenant isolation).
func Routes() []Route {
	var out []Route
	for _, rt := range routes() {
		out = append(out, Route{Method: rt.method, Path: rt.path, Authenticated: rt.access != public,
			Grant: accessGrant[rt.access], Audit: rt.audit, Stream: rt.stream})
	}
	return out
}

type server struct {
	d         Deployments
	agents    Agents
	auth      *auth.Service
	log       *slog.Logger
	registry  *prometheus.Registry
	ready     func(context.Context) error
	heartbeat time.Duration
	streams   *auth.StreamLimit
	providers ProviderStore
	store     SecurityStore
	secrets   Secrets
	controls  Controls
	notes     NotificationStore
	notifier  Notifier
	links     *notify.Links
	m         *metrics
}

// New returns the server's HTTP handler: the REST API under /api/v1 (bearer
// token required), the token endpoint, /healthz, /readyz and /metrics.
func New(o Options) (http.Handler, error) {
	if o.Deployments == nil || o.Auth == nil {
		return nil, errors.New("api: Options need Deployments and Auth")
	}
	s := &server{
		d:         o.Deployments,
		agents:    o.Agents,
		auth:      o.Auth,
		log:       o.Logger,
		registry:  o.Metrics,
		ready:     o.Ready,
		heartbeat: o.Heartbeat,
		streams:   o.Streams,
		providers: o.Providers,
		store:     o.Store,
		secrets:   o.Secrets,
		controls:  o.Controls,
		notes:     o.Notifications,
		notifier:  o.Notifier,
		links:     o.Links,
	}
	if s.notes == nil {
		s.links = nil
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	if s.heartbeat <= 0 {
		s.heartbeat = DefaultHeartbeat
	}
	if s.streams == nil {
		s.streams = auth.NewStreamLimit(0)
	}
	m, err := newMetrics(s.registry)
	if err != nil {
		return nil, err
	}
	s.m = m

	mux := http.NewServeMux()
	// paths matches a path whatever the method, to tell a 405 from a 404.
	paths := http.NewServeMux()
	methods := map[string][]string{}
	for _, rt := range routes() {
		var h http.Handler = s.handler(rt)
		if rt.access != public {
			h = s.auth.Middleware(h, s.unauthorized)
		}
		mux.Handle(rt.method+" "+rt.path, s.instrument(rt, h))
		if methods[rt.path] == nil {
			paths.Handle(rt.path, http.NotFoundHandler())
		}
		methods[rt.path] = append(methods[rt.path], rt.method)
	}
	// Anything else under the API answers in the API's error format.
	mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := paths.Handler(r); pattern != "" {
			w.Header().Set("Allow", strings.Join(methods[pattern], ", "))
			s.writeError(w, r, errorf(http.StatusMethodNotAllowed, CodeInvalid, r.Method+" is not allowed on "+r.URL.Path+"; use "+strings.Join(methods[pattern], " or ")))
			return
		}
		s.writeError(w, r, errorf(http.StatusNotFound, CodeNotFound, "no such route: "+r.Method+" "+r.URL.Path))
	})
	return mux, nil
}

func (s *server) handler(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.PrincipalFrom(r.Context())
		ok, err := s.allowed(r.Context(), rt.access, p)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if !ok {
			s.writeError(w, r, errorf(http.StatusForbidden, CodeForbidden, "your roles do not allow "+r.Method+" "+rt.path))
			s.recordDenied(w, r, p, rt, false)
			return
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		rt.handle(s, rec, r, p)
		switch {
		case rec.status == http.StatusForbidden:
			// Refused by the handler: the subset rule, an approval's
			// requiresRoles, a wrong current password.
			s.recordDenied(w, r, p, rt, true)
		case rt.audit != "" && rec.status < 300:
			s.record(r, p, rt, rec.Header().Get("Location"))
		}
	}
}

// recordDenied records a 403 once the answer has left: the caller does not
// wait for the audit log's write (nor does an event stream's client).
// looked tells that the handler refused, after finding the path's ids in
// the caller's tenant: only then are they recorded. A request refused for
// its route's grant was looked up nowhere, and its ids, which may be
// another tenant's, stay out of this tenant's log.
func (s *server) recordDenied(w http.ResponseWriter, r *http.Request, p Principal, rt route, looked bool) {
	http.NewResponseController(w).Flush()
	objects := []string{rt.method + " " + rt.path}
	if looked {
		objects = append(objects, pathIDs(r, rt)...)
	}
	s.appendAudit(r, p, ActionDenied, objects)
}

func (s *server) unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	s.writeError(w, r, errorf(http.StatusUnauthorized, CodeUnauthorized, err.Error()))
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request, _ Principal) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request, _ Principal) {
	if s.ready != nil {
		if err := s.ready(r.Context()); err != nil {
			// Unauthenticated: the reason goes to the log, not the caller.
			id := s.logged(r, "not ready", err)
			writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{ErrorID: id, Errors: []ErrorEntry{{Message: "not ready", Code: CodeNotReady}}})
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ready\n")
}

func (s *server) logged(r *http.Request, msg string, err error) string {
	id := randomID()
	s.log.Warn(msg, "error_id", id, "path", r.URL.Path, "err", err)
	return id
}

func (s *server) metrics(w http.ResponseWriter, r *http.Request, _ Principal) {
	promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

func (s *server) token(w http.ResponseWriter, r *http.Request, _ Principal) {
	s.auth.TokenHandler().ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// metrics are the API's own Prometheus metrics.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	streams  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortie_api_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sortie_api_request_duration_seconds",
			Help:    "Time to answer an HTTP request (event streams excluded), by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sortie_api_event_streams",
			Help: "Server-Sent Event streams open now.",
		}),
	}
	var err error
	m.requests, err = register(reg, m.requests)
	if err == nil {
		m.duration, err = register(reg, m.duration)
	}
	if err == nil {
		m.streams, err = register(reg, m.streams)
	}
	return m, err
}

// register registers c, or returns the collector already registered under
// its name (a second handler on the same registry shares the metrics).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

func (s *server) instrument(rt route, next http.Handler) http.Handler {
	pattern := rt.path
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.m.requests.WithLabelValues(pattern, r.Method, strconv.Itoa(rec.status)).Inc()
		if !rt.stream {
			s.m.duration.WithLabelValues(pattern, r.Method).Observe(time.Since(start).Seconds())
		}
	})
}

// statusRecorder remembers the status code; Unwrap lets
// http.ResponseController reach the connection's Flush and deadlines.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func randomID() string { return rand.Text() }
