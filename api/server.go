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
	"github.com/sortie-cd/sortie/pipeline"
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
	// Providers keeps the tenants' metric providers; nil answers the
	// provider routes with 501.
	Providers ProviderStore
}

// access is what a route asks of the caller.
type access int

const (
	public  access = iota // no token
	read                  // any of the reading roles
	deploy                // start, act, redeploy
	approve               // deploy roles, or a custom role the approval may require
	admin                 // credentials
)

var (
	readRoles   = []string{pipeline.RoleViewer, pipeline.RoleDeployer, pipeline.RoleTenantAdmin, pipeline.RoleOrganizationAdmin}
	deployRoles = []string{pipeline.RoleDeployer, pipeline.RoleTenantAdmin, pipeline.RoleOrganizationAdmin}
	adminRoles  = []string{pipeline.RoleTenantAdmin, pipeline.RoleOrganizationAdmin}
	systemRoles = []string{pipeline.RoleViewer, pipeline.RoleDeployer, pipeline.RoleTenantAdmin, pipeline.RoleOrganizationAdmin, pipeline.RoleAgent}
)

// allows reports whether p may use a route of access a.
func (a access) allows(p Principal) bool {
	switch a {
	case public:
		return true
	case read:
		return p.HasAnyRole(readRoles...)
	case deploy:
		return p.HasAnyRole(deployRoles...)
	case approve:
		// Whether this role suits this approval is the engine's call
		// (requiresRoles); here only viewers and agents are kept out.
		if p.HasAnyRole(deployRoles...) {
			return true
		}
		for _, r := range p.Roles {
			if !slices.Contains(systemRoles, r) {
				return true
			}
		}
		return false
	case admin:
		return p.HasAnyRole(adminRoles...)
	}
	return false
}

// route is one entry of the route table, the single list that both builds
// the mux and is checked against docs/openapi.yaml.
type route struct {
	method, path string
	access       access
	// stream marks long-lived responses, kept out of the duration metric.
	stream bool
	handle func(s *server, w http.ResponseWriter, r *http.Request, p Principal)
}

func routes() []route {
	return []route{
		{method: "GET", path: "/healthz", handle: (*server).healthz},
		{method: "GET", path: "/readyz", handle: (*server).readyz},
		{method: "GET", path: "/metrics", handle: (*server).metrics},
		{method: "POST", path: auth.TokenPath, handle: (*server).token},

		{method: "POST", path: Prefix + "/pipelines", access: deploy, handle: (*server).startPipeline},
		{method: "GET", path: Prefix + "/pipelines", access: read, handle: (*server).listPipelines},
		{method: "GET", path: Prefix + "/pipelines/{id}", access: read, handle: (*server).getPipeline},
		{method: "GET", path: Prefix + "/pipelines/{id}/source", access: read, handle: (*server).getSource},
		{method: "POST", path: Prefix + "/pipelines/{id}/approve", access: approve, handle: actOn(actApprove)},
		{method: "POST", path: Prefix + "/pipelines/{id}/skip", access: deploy, handle: actOn(actSkip)},
		{method: "POST", path: Prefix + "/pipelines/{id}/rollback", access: deploy, handle: actOn(actRollback)},
		{method: "POST", path: Prefix + "/pipelines/{id}/cancel", access: deploy, handle: actOn(actCancel)},
		{method: "POST", path: Prefix + "/pipelines/{id}/redeploy", access: deploy, handle: (*server).redeploy},
		{method: "POST", path: Prefix + "/pipelines/{id}/webhooks/{target}/{group}/{index}/callback", access: deploy, handle: (*server).webhookCallback},
		{method: "GET", path: Prefix + "/pipelines/{id}/events", access: read, stream: true, handle: (*server).pipelineEvents},
		{method: "GET", path: Prefix + "/events", access: read, stream: true, handle: (*server).tenantEvents},

		{method: "GET", path: Prefix + "/agents", access: read, handle: (*server).listAgents},

		{method: "GET", path: Prefix + "/credentials", access: admin, handle: (*server).listCredentials},
		{method: "POST", path: Prefix + "/credentials", access: admin, handle: (*server).createCredential},
		{method: "DELETE", path: Prefix + "/credentials/{id}", access: admin, handle: (*server).deleteCredential},

		{method: "GET", path: Prefix + "/providers", access: read, handle: (*server).listProviders},
		{method: "POST", path: Prefix + "/providers", access: admin, handle: (*server).createProvider},
		{method: "DELETE", path: Prefix + "/providers/{name}", access: admin, handle: (*server).deleteProvider},
	}
}

// Route is a method and a path pattern the handler serves.
type Route struct {
	Method, Path string
	// Authenticated routes need a bearer token.
	Authenticated bool
}

// Routes lists every route New registers, for tests that must cover all of
// them (the OpenAPI document, tenant isolation).
func Routes() []Route {
	var out []Route
	for _, rt := range routes() {
		out = append(out, Route{Method: rt.method, Path: rt.path, Authenticated: rt.access != public})
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
	providers ProviderStore
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
		providers: o.Providers,
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
		if !rt.access.allows(p) {
			s.writeError(w, r, errorf(http.StatusForbidden, CodeForbidden, "your roles do not allow "+r.Method+" "+rt.path))
			return
		}
		rt.handle(s, w, r, p)
	}
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
