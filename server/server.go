package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sortie-cd/sortie/agent"
	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/atomicfile"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/auth/sso"
	"github.com/sortie-cd/sortie/console"
	"github.com/sortie-cd/sortie/egress"
	"github.com/sortie-cd/sortie/gate"
	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/kubeexec"
	"github.com/sortie-cd/sortie/notify"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/preview"
	replica "github.com/sortie-cd/sortie/replicas"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/postgres"
	"github.com/sortie-cd/sortie/store/sqlite"
	"github.com/sortie-cd/sortie/tracing"
	"github.com/sortie-cd/sortie/webhook"
)

// Config is the server's configuration, parsed once by the command line.
type Config struct {
	// Addr is the listen address, host:port.
	Addr string
	// DataDir holds the database, signing keys and the bootstrap admin
	// credentials.
	DataDir string
	// DatabaseURL, when set (postgres://...), keeps the data in that
	// PostgreSQL database instead of <data-dir>/sortie.db. The signing
	// keys, master key and bootstrap credentials stay in DataDir. Several
	// servers (replicas) may share one database: each drives the
	// pipelines whose lease it holds (runner.Options.Replica).
	DatabaseURL string
	// Replica names this server among the replicas sharing the database;
	// each needs its own. Empty means the id in <data-dir>/replica-id,
	// made at the first start: a server started again on its data
	// directory takes its pipelines back at once.
	Replica string
	// LeaseTTL is how long a lease on a pipeline lasts unless renewed;
	// zero means DefaultLeaseTTL.
	LeaseTTL time.Duration
	// PublicURL is how clients reach the server; empty means http://Addr
	// (https://Addr with TLS). An https URL makes the console's cookies
	// Secure and sends HSTS, also when a TLS proxy in front terminates TLS.
	PublicURL string
	// TLSCertFile and TLSKeyFile, when set, serve TLS with that
	// certificate (PEM, the chain after the leaf) and key (PEM, readable by
	// its owner only), read again when they change.
	TLSCertFile, TLSKeyFile string
	// BehindTLSProxy allows plaintext on a non-loopback address: a proxy
	// in front terminates TLS. Without it such a listener is refused.
	BehindTLSProxy bool
	// Kubeconfig and Account, when set (sortie dev), serve targets of that
	// account in process against that cluster, in tenant main.
	Kubeconfig string
	Account    string
	// Log receives the server's log; nil discards.
	Log *slog.Logger
	// KeepPrevious keeps each target's previous version warm after a
	// success where the deployment file does not say; nil keeps none.
	KeepPrevious *pipeline.KeepPrevious
	// MasterKey, when set, is the master key wrapping the tenants' data
	// keys (SORTIE_MASTER_KEY), and PreviousMasterKeys the ones it
	// replaced: their data keys are re-wrapped at start. Nil means
	// <data-dir>/master.key, created on first start.
	MasterKey          []byte
	PreviousMasterKeys [][]byte
	// SSO, when not nil, turns on single sign-on with that OpenID Connect
	// provider: the console's button and the CLI's device login. An empty
	// RedirectURL means <public URL>/login/sso/callback.
	SSO *sso.Config
	// BodyReadTimeout bounds how long a request may take to send its body
	// (not the agents' streams); zero means DefaultBodyReadTimeout.
	// IdleTimeout closes keep-alive connections idle that long; zero means
	// DefaultIdleTimeout.
	BodyReadTimeout, IdleTimeout time.Duration
	// RevocationPoll is how often the revocations other replicas stored
	// are read (a revocation made here applies here at once); zero means
	// DefaultRevocationPoll.
	RevocationPoll time.Duration
	// MaxStreams is how many event streams (API and console together) one
	// principal may hold open at once; zero means auth.DefaultMaxStreams.
	MaxStreams int
	// EgressAllow are the address ranges webhooks and metric queries from
	// the server may reach although the egress policy refuses them by
	// default (loopback, link-local, cloud metadata, unspecified; see
	// package egress): --egress-allow. Nil allows none of them. The
	// server's own listen address (and its public URL's) is refused
	// whatever this says.
	EgressAllow []netip.Prefix
	// Bootstrap, when not nil, is the first admin credential, stored when
	// tenant main has none (instead of one made up and written to
	// <data-dir>/admin-credentials.json).
	Bootstrap *auth.Given
	// Tracer, when not nil, traces every pipeline (one trace each, with
	// spans for targets, steps, gates and commands; package runner) and
	// sends the trace context along with agents' commands and webhooks.
	// Nil traces nothing.
	Tracer trace.TracerProvider
	// Ready, when not nil, is called once the server listens, with its
	// address and the path of the bootstrap credentials file ("" when
	// they existed already).
	Ready func(addr, credentialsFile string)
}

// DefaultRevocationPoll is Config.RevocationPoll's default: a token
// revoked through one replica is refused by the others within it.
const DefaultRevocationPoll = 2 * time.Second

// Run runs the server until ctx ends, then shuts down gracefully.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.DataDir == "" {
		return errors.New("server: a data directory is required (--data-dir)")
	}
	if err := privateDir(cfg.DataDir, log); err != nil {
		return fmt.Errorf("server: data directory: %w", err)
	}
	var certs *certReloader
	if cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" {
		var err error
		if certs, err = newCertReloader(cfg.TLSCertFile, cfg.TLSKeyFile, log); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("server: listen: %w", err)
	}
	defer ln.Close()
	if certs == nil {
		if err := plaintextAllowed(ln.Addr(), cfg.BehindTLSProxy); err != nil {
			return err
		}
	}
	public := cfg.PublicURL
	if public == "" {
		public = "http://" + ln.Addr().String()
		if certs != nil {
			public = "https://" + ln.Addr().String()
		}
	}
	secure := certs != nil || strings.HasPrefix(strings.ToLower(public), "https://")

	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	sec, err := openSecrets(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	// One server keeps its signing keys in the data directory; servers
	// sharing PostgreSQL keep them there, sealed under the master key they
	// share, so a token one issued is good on all.
	var keys *auth.KeySet
	_, shared := st.(*postgres.Store)
	if shared {
		keys, err = auth.StoredKeys(ctx, st, sec, nil)
	} else {
		keys, err = auth.LoadKeys(filepath.Join(cfg.DataDir, "keys"))
	}
	if err != nil {
		return err
	}
	var ssoClient *sso.Client
	if cfg.SSO != nil {
		sc := *cfg.SSO
		if sc.RedirectURL == "" {
			sc.RedirectURL = strings.TrimRight(public, "/") + "/login/sso/callback"
		}
		if ssoClient, err = sso.New(sc); err != nil {
			return err
		}
	}
	authOpts := auth.Options{Credentials: st, Users: st, Keys: keys, Issuer: public, Logger: log, Tenants: st, Audit: st, Revocations: st}
	// One name for this server among the replicas sharing the database:
	// its leases, the agent streams it holds, the commands it owns.
	replicaName := cfg.Replica
	if replicaName == "" {
		if replicaName, err = replicaID(cfg.DataDir); err != nil {
			return err
		}
	}
	if pg, ok := st.(*postgres.Store); ok {
		// A revocation here is one on every replica.
		authOpts.Peers = &replica.Peers{Store: pg, Replica: replicaName, Log: log}
	}
	if ssoClient != nil {
		authOpts.SSO = ssoClient
	}
	authSvc, err := auth.New(authOpts)
	if err != nil {
		return err
	}
	// The revocations stored before this start (by this server or
	// another replica) refuse their tokens before anything is served;
	// then the others' are read every RevocationPoll.
	if err := authSvc.SyncRevocations(ctx); err != nil {
		return err
	}
	poll := cfg.RevocationPoll
	if poll <= 0 {
		poll = DefaultRevocationPoll
	}
	followCtx, stopFollow := context.WithCancel(ctx)
	followDone := make(chan struct{})
	go func() {
		defer close(followDone)
		authSvc.FollowRevocations(followCtx, poll)
	}()
	defer func() { stopFollow(); <-followDone }()
	var credFile string
	if cfg.Bootstrap != nil {
		created, err := auth.BootstrapGiven(ctx, st, *cfg.Bootstrap)
		if err != nil {
			return err
		}
		if created {
			log.Info("bootstrap admin credential stored", "client_id", cfg.Bootstrap.ClientID)
		}
	} else if credFile, err = auth.Bootstrap(ctx, st, cfg.DataDir, public); err != nil {
		return err
	}

	hub, err := agent.NewHub(agent.HubOptions{Auth: authSvc, Log: log, Bindings: st})
	if err != nil {
		return err
	}
	defer hub.Close()
	// On PostgreSQL, commands for agents go through the database to the
	// replica holding the agent's stream, and other replicas' events are
	// fed to this one's subscribers; on SQLite everything stays in memory.
	var agents runner.Executor = hub
	var lister agentLister = hub
	var feed runner.Feed
	relay := hubRelay(hub)
	if pg, ok := st.(*postgres.Store); ok {
		node, err := replica.Start(ctx, replica.Options{Store: pg, Hub: hub, Replica: replicaName, Auth: authSvc, Sealer: sec, Log: log})
		if err != nil {
			return err
		}
		defer node.Close()
		agents, lister, feed = node, node, node.Feed()
		// Relayed calls reach the replica holding the agent's stream.
		relay = func(tenant, agentID string) (webhook.Doer, error) {
			r, err := node.Relay(tenant, agentID)
			if err != nil {
				return nil, err
			}
			return r, nil
		}
	}

	accounts := map[string]*kube.Executor{}
	if cfg.Kubeconfig != "" {
		rc, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
		if err != nil {
			return fmt.Errorf("server: kubeconfig: %w", err)
		}
		if cfg.Tracer != nil {
			// The Kubernetes calls of a traced command are its child spans.
			rc.Wrap(tracing.Wrap(true))
		}
		kx, err := kube.New(rc, log)
		if err != nil {
			return err
		}
		account := cfg.Account
		if account == "" {
			account = "local"
		}
		accounts[account] = kx
		log.Info("serving account in process", "account", account, "kubeconfig", cfg.Kubeconfig)
	}
	pkey, err := previewKey(cfg.DataDir, sec, shared)
	if err != nil {
		return err
	}
	previews, err := preview.NewLinks(pkey, public)
	if err != nil {
		return err
	}
	pol, err := egressPolicy(ln.Addr(), public, cfg.EgressAllow)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r := runner.New(runner.Options{
		Replica:      replicaName,
		LeaseTTL:     cfg.LeaseTTL,
		Store:        st,
		Executor:     gateRouter(clusters{kubeexec.New(store.DefaultTenant, accounts, log), agents}, public, previews, st, sec, agentRelay{relay}, pol, log),
		Log:          log,
		Metrics:      runner.NewMetrics(reg),
		Feed:         feed,
		Tracer:       cfg.Tracer,
		KeepPrevious: cfg.KeepPrevious,
	})
	defer r.Close()
	if err := r.Resume(ctx); err != nil {
		return err
	}
	// One cap on event streams per principal, for the API's and the
	// console's together.
	streams := auth.NewStreamLimit(cfg.MaxStreams)
	linkKey, err := sec.DerivedKey("notification action links")
	if err != nil {
		return err
	}
	links := notify.NewLinks(linkKey, public, 0)
	notifier := notify.New(notify.Options{Store: st, Secrets: sec, Links: links, ConsoleURL: public, Log: log, Client: pol.Client(30 * time.Second)})
	notifyCtx, stopNotify := context.WithCancel(ctx)
	notifyDone := make(chan struct{})
	go func() {
		defer close(notifyDone)
		notifier.Run(notifyCtx, r.SubscribeAll)
	}()
	defer func() { stopNotify(); <-notifyDone }()
	handler, err := api.New(api.Options{Deployments: deployments{r}, Agents: agentList{lister}, Auth: authSvc, Logger: log, Metrics: reg, Providers: st, Store: st, Secrets: secretsAPI{sec},
		Streams: streams, Controls: r, Notifications: st, Notifier: notifier, Links: links})
	if err != nil {
		return err
	}
	// The web console answers every path the API does not.
	web, err := console.New(console.Options{Deployments: deployments{r}, Agents: agentList{lister}, Auth: authSvc, Logger: log, SecureCookies: secure, Streams: streams})
	if err != nil {
		return err
	}
	if ssoClient != nil {
		web.SetSSO(ssoClient)
	}
	handler = console.Mount(handler, web)
	handler = withPreviews(handler, &preview.Handler{
		Links: previews, Pipeline: r.Get, Doer: previewDoers{accounts, relay}.Doer, ServiceURL: serviceURL, Log: log,
	})
	if secure {
		handler = withHSTS(handler)
	}
	// Agents' gRPC streams come in on the API's own listener.
	// Slow clients are bounded per request (withBodyDeadline) and idle
	// connections by IdleTimeout, never by a ReadTimeout (see deadline.go).
	bodyTimeout, idleTimeout := cfg.BodyReadTimeout, cfg.IdleTimeout
	if bodyTimeout <= 0 {
		bodyTimeout = DefaultBodyReadTimeout
	}
	if idleTimeout <= 0 {
		idleTimeout = DefaultIdleTimeout
	}
	srv := &http.Server{
		Handler:           hub.Handler(withBodyDeadline(handler, bodyTimeout)),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       idleTimeout,
		Protocols:         protocols(certs != nil),
	}
	errc := make(chan error, 1)
	if certs != nil {
		srv.TLSConfig = certs.tlsConfig()
		go func() { errc <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- srv.Serve(ln) }()
		if !isLoopback(ln.Addr()) {
			log.Warn("serving plaintext HTTP on a non-loopback address (--behind-tls-proxy): a proxy in front must terminate TLS, and nothing else may reach this port", "addr", ln.Addr().String())
		}
	}
	log.Info("sortie server listening", "addr", ln.Addr().String(), "url", public, "tls", certs != nil, "data_dir", cfg.DataDir)
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String(), credFile)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	hub.Close() // agent streams never end by themselves
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close() // event streams do not end by themselves
	}
	return nil
}

// gateRouter puts the gate executor (webhooks, analysis; run from the
// server for every account) in front of the cluster executor. Secrets
// resolve {{secrets.NAME}} and provider credentials from the tenant's
// secrets. Webhooks with networkMode remoteNetworkAgent and Prometheus
// providers naming an agent go through relay (the agents' hub).
// openStore opens PostgreSQL when cfg.DatabaseURL is set (never falling
// back to SQLite when it cannot be reached), else the SQLite file in the
// data directory.
func openStore(ctx context.Context, cfg Config, log *slog.Logger) (store.Store, error) {
	if cfg.DatabaseURL == "" {
		return sqlite.Open(ctx, filepath.Join(cfg.DataDir, "sortie.db"), sqlite.Options{Logger: log})
	}
	return postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Logger: log})
}

// DefaultLeaseTTL is Config.LeaseTTL's default.
const DefaultLeaseTTL = runner.DefaultLeaseTTL

// replicaID reads the server's replica id from the data directory, making
// one (random) at the first start.
func replicaID(dir string) (string, error) {
	path := filepath.Join(dir, "replica-id")
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("server: replica id: %w", err)
	}
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("server: replica id: %w", err)
	}
	host, _ := os.Hostname()
	id := strings.Trim(host+"-"+hex.EncodeToString(raw[:]), "-")
	if err := atomicfile.WritePrivate(path, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("server: replica id: %w", err)
	}
	return id, nil
}

func gateRouter(cluster runner.Executor, public string, previews *preview.Links, st store.Store, sec webhook.SecretResolver, relay webhook.Relay, pol *egress.Policy, log *slog.Logger) runner.Executor {
	return gate.Router{Gates: gate.New(gate.Options{PublicURL: public, Providers: st, Secrets: sec, Relay: relay, Egress: pol, Log: log, Previews: previews}), Cluster: cluster, Previews: previews}
}

// egressPolicy is the policy of the server's own calls: allow, and never
// the server itself, at its listen address or where its public URL
// points when that is an IP address (a name is resolved at each call, and
// the dialer sees the address it resolved to).
func egressPolicy(ln net.Addr, public string, allow []netip.Prefix) (*egress.Policy, error) {
	addr, err := netip.ParseAddrPort(ln.String())
	if err != nil {
		return nil, fmt.Errorf("server: listen address %s: %w", ln, err)
	}
	self, err := egress.ListenAddrs(addr)
	if err != nil {
		return nil, err
	}
	if u, err := url.Parse(public); err == nil {
		port := u.Port()
		if port == "" {
			port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
		}
		if ap, err := netip.ParseAddrPort(net.JoinHostPort(u.Hostname(), port)); err == nil && ap != addr {
			self = append(self, ap)
		}
	}
	return &egress.Policy{Allow: allow, Self: self, AllowFlag: "sortie server --egress-allow"}, nil
}

// withPreviews serves preview URLs (no login: the URL is the capability)
// beside everything else.
func withPreviews(next http.Handler, p *preview.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, preview.Path) {
			p.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// deployments adapts the runner to what the API asks.
type deployments struct{ r *runner.Runner }

func (d deployments) Start(ctx context.Context, p api.Principal, req api.StartRequest) (api.StartResult, error) {
	res, err := d.r.Start(ctx, p.Engine(), p.Tenant, req)
	return res, err
}

func (d deployments) Redeploy(ctx context.Context, p api.Principal, id string, req api.RedeployRequest) (api.StartResult, error) {
	res, err := d.r.Redeploy(ctx, p.Engine(), p.Tenant, id, req.Targets)
	return res, err
}

func (d deployments) Restore(ctx context.Context, p api.Principal, id string, req api.RestoreRequest) (api.StartResult, error) {
	to := id
	if req.Previous {
		var err error
		if to, err = d.r.Previous(ctx, p.Tenant, id, req.Targets[0]); err != nil {
			return api.StartResult{}, err
		}
	}
	return d.r.Restore(ctx, p.Engine(), p.Tenant, to, req.Targets, req.Reason)
}

func (d deployments) Get(ctx context.Context, tenant, id string) (*store.Pipeline, error) {
	return d.r.Get(ctx, tenant, id)
}

func (d deployments) List(ctx context.Context, tenant string, f store.Filter) ([]*store.Pipeline, error) {
	return d.r.List(ctx, tenant, f)
}

func (d deployments) Act(ctx context.Context, p api.Principal, id string, ev pipeline.Event) (*store.Pipeline, error) {
	return d.r.Act(ctx, p.Tenant, id, ev)
}

func (d deployments) Events(ctx context.Context, tenant, id string, after int64) ([]store.Event, error) {
	return d.r.Events(ctx, tenant, id, after)
}

func (d deployments) Subscribe(ctx context.Context, tenant string) <-chan store.Event {
	return d.r.Subscribe(ctx, tenant)
}

// privateDir creates the data directory readable by its owner only, and
// takes group and other access away from one that already exists: it holds
// the database, the signing keys, the master key and the bootstrap
// credential.
func privateDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	info, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(dir, perm&0o700); err != nil {
			return err
		}
		log.Warn("data directory was open to other users; now owner only", "data_dir", dir, "was", perm.String())
	}
	return nil
}
