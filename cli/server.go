package cli

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/auth/sso"
	"github.com/sortie-cd/sortie/deployfile"
	"github.com/sortie-cd/sortie/egress"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/secrets"
	"github.com/sortie-cd/sortie/server"
)

// serverOptions are the flags of `sortie server` (and of `sortie dev`).
// Each flag's default comes from its SORTIE_* variable, so flags win over
// the environment, which wins over the built-in default.
type serverOptions struct {
	addr, dataDir, publicURL string
	databaseURL              string
	replicaID                string
	leaseTTL                 time.Duration
	leaseTTLEnv              string // a SORTIE_LEASE_TTL that does not parse
	bootstrapDir             string
	logLevel, logFormat      string
	tlsCertFile, tlsKeyFile  string
	behindTLSProxy           bool
	egressAllow              []string
	otlpEndpoint             string
	// Single sign-on (OpenID Connect).
	oidcIssuer, oidcClientID, oidcSecretFile string
	oidcRedirectURL, oidcGroupsClaim         string
	oidcName                                 string
	oidcGroupRoles                           []string
	// The previous version kept warm where the deployment file does not
	// say (keepPrevious).
	keepPrevious         string
	keepPreviousReplicas int32
}

func (o *serverOptions) bind(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", envOr("SORTIE_ADDR", "127.0.0.1:8080"), "listen address (SORTIE_ADDR)")
	f.StringVar(&o.dataDir, "data-dir", envOr("SORTIE_DATA_DIR", defaultDataDir()), "where the database, keys and bootstrap credentials live (SORTIE_DATA_DIR)")
	f.StringVar(&o.databaseURL, "database-url", envOr("SORTIE_DATABASE_URL", ""), "keep the data in this PostgreSQL database (postgres://USER@HOST:PORT/DB?sslmode=...) instead of DATA-DIR/sortie.db; prefer SORTIE_DATABASE_URL when it holds a password (SORTIE_DATABASE_URL)")
	f.StringVar(&o.replicaID, "replica-id", envOr("SORTIE_REPLICA_ID", ""), "this server's name among the replicas sharing one database, unique to each (SORTIE_REPLICA_ID; default an id made once and kept in DATA-DIR/replica-id)")
	ttl, err := time.ParseDuration(envOr("SORTIE_LEASE_TTL", server.DefaultLeaseTTL.String()))
	if err != nil {
		o.leaseTTLEnv = os.Getenv("SORTIE_LEASE_TTL") // refused by config
	}
	f.DurationVar(&o.leaseTTL, "lease-ttl", ttl, "how long a replica's lease on a pipeline lasts unless renewed (every third of it): how long the pipelines of a replica that died wait for another to take them over (SORTIE_LEASE_TTL)")
	f.StringVar(&o.bootstrapDir, "bootstrap-credentials-dir", envOr("SORTIE_BOOTSTRAP_CREDENTIALS_DIR", ""), "on first start, make the admin credential the one in this directory's client-id and client-secret files (a mounted Kubernetes Secret) instead of writing a new one to DATA-DIR/admin-credentials.json (SORTIE_BOOTSTRAP_CREDENTIALS_DIR)")
	f.StringVar(&o.publicURL, "public-url", envOr("SORTIE_PUBLIC_URL", ""), "URL clients and agents use to reach this server (SORTIE_PUBLIC_URL; default http://ADDR)")
	f.StringVar(&o.tlsCertFile, "tls-cert-file", envOr("SORTIE_TLS_CERT_FILE", ""), "serve TLS with this PEM certificate (the chain after it), read again when it changes (SORTIE_TLS_CERT_FILE)")
	f.StringVar(&o.tlsKeyFile, "tls-key-file", envOr("SORTIE_TLS_KEY_FILE", ""), "the certificate's PEM private key: mode 0600 (0640 if owned by root) (SORTIE_TLS_KEY_FILE)")
	f.BoolVar(&o.behindTLSProxy, "behind-tls-proxy", envOr("SORTIE_BEHIND_TLS_PROXY", "") == "true", "allow plaintext on a non-loopback --addr: a proxy in front terminates TLS (SORTIE_BEHIND_TLS_PROXY=true)")
	f.StringSliceVar(&o.egressAllow, "egress-allow", splitList(os.Getenv("SORTIE_EGRESS_ALLOW")), "address ranges (CIDR) webhooks and metric queries from the server may reach although they are refused by default: loopback, link-local, cloud metadata, unspecified; such as 127.0.0.0/8 for a service on this host; the server's own address stays refused (SORTIE_EGRESS_ALLOW)")
	f.StringVar(&o.keepPrevious, "keep-previous", envOr("SORTIE_KEEP_PREVIOUS", "0s"), "keep each target's previous version warm this long after a success, out of traffic, where the deployment file's deploymentConfig.keepPrevious does not say; a rollback after success then brings traffic back to it at once; 0 (the default) keeps none (SORTIE_KEEP_PREVIOUS, such as 30m)")
	f.Int32Var(&o.keepPreviousReplicas, "keep-previous-replicas", 0, "pods of that previous version kept Ready; 0 keeps it scaled to zero")
	f.StringVar(&o.logLevel, "log-level", envOr("SORTIE_LOG_LEVEL", "info"), "debug, info, warn or error (SORTIE_LOG_LEVEL)")
	f.StringVar(&o.logFormat, "log-format", envOr("SORTIE_LOG_FORMAT", "text"), "text or json (SORTIE_LOG_FORMAT)")
	f.StringVar(&o.otlpEndpoint, "otlp-endpoint", envOr("SORTIE_OTLP_ENDPOINT", ""), tracingHelp)
	f.StringVar(&o.oidcIssuer, "oidc-issuer", envOr("SORTIE_OIDC_ISSUER", ""), "single sign-on: the OpenID Connect provider's issuer URL (SORTIE_OIDC_ISSUER); empty turns single sign-on off")
	f.StringVar(&o.oidcClientID, "oidc-client-id", envOr("SORTIE_OIDC_CLIENT_ID", ""), "single sign-on: Sortie's client id at the provider (SORTIE_OIDC_CLIENT_ID)")
	f.StringVar(&o.oidcSecretFile, "oidc-client-secret-file", envOr("SORTIE_OIDC_CLIENT_SECRET_FILE", ""), "single sign-on: a file holding the client secret (SORTIE_OIDC_CLIENT_SECRET_FILE; or the secret itself in SORTIE_OIDC_CLIENT_SECRET)")
	f.StringVar(&o.oidcRedirectURL, "oidc-redirect-url", envOr("SORTIE_OIDC_REDIRECT_URL", ""), "single sign-on: the console's callback to register at the provider (SORTIE_OIDC_REDIRECT_URL; default PUBLIC-URL/login/sso/callback)")
	f.StringVar(&o.oidcGroupsClaim, "oidc-groups-claim", envOr("SORTIE_OIDC_GROUPS_CLAIM", "groups"), "single sign-on: the ID token claim with the user's groups (SORTIE_OIDC_GROUPS_CLAIM)")
	f.StringVar(&o.oidcName, "oidc-name", envOr("SORTIE_OIDC_NAME", ""), "single sign-on: the provider's name on the console's button (SORTIE_OIDC_NAME)")
	var roles []string
	if v := os.Getenv("SORTIE_OIDC_GROUP_ROLES"); v != "" {
		roles = strings.Split(v, ";")
	}
	f.StringArrayVar(&o.oidcGroupRoles, "oidc-group-role", roles, "single sign-on: GROUP=TENANT:ROLE[,ROLE...], repeatable (SORTIE_OIDC_GROUP_ROLES, ';'-separated): members of GROUP log in to TENANT with those roles")
}

// ssoConfig is the single sign-on configuration of the flags and the
// environment, nil when --oidc-issuer is not set. The client secret's value
// never appears in an error.
func (o *serverOptions) ssoConfig() (*sso.Config, error) {
	if o.oidcIssuer == "" {
		if o.oidcClientID != "" || len(o.oidcGroupRoles) > 0 {
			return nil, usageErrorf("--oidc-client-id and --oidc-group-role need --oidc-issuer")
		}
		return nil, nil
	}
	secret := os.Getenv("SORTIE_OIDC_CLIENT_SECRET")
	if o.oidcSecretFile != "" {
		b, err := os.ReadFile(o.oidcSecretFile)
		if err != nil {
			return nil, usageErrorf("--oidc-client-secret-file: %v", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	if o.oidcClientID == "" || secret == "" {
		return nil, usageErrorf("single sign-on needs --oidc-client-id and the client secret (--oidc-client-secret-file or SORTIE_OIDC_CLIENT_SECRET)")
	}
	cfg := &sso.Config{Issuer: o.oidcIssuer, ClientID: o.oidcClientID, ClientSecret: secret, RedirectURL: o.oidcRedirectURL,
		GroupsClaim: o.oidcGroupsClaim, Name: o.oidcName}
	for _, m := range o.oidcGroupRoles {
		if strings.TrimSpace(m) == "" {
			continue
		}
		gm, err := sso.ParseMapping(strings.TrimSpace(m))
		if err != nil {
			return nil, usageErrorf("--oidc-group-role: %v", err)
		}
		cfg.Mappings = append(cfg.Mappings, gm)
	}
	if len(cfg.Mappings) == 0 {
		return nil, usageErrorf("single sign-on needs at least one --oidc-group-role GROUP=TENANT:ROLE")
	}
	return cfg, nil
}

func (o *serverOptions) config(ios IOStreams) (server.Config, error) {
	if o.leaseTTLEnv != "" {
		return server.Config{}, usageErrorf("SORTIE_LEASE_TTL %q: want a duration such as 15s", o.leaseTTLEnv)
	}
	if o.leaseTTL < 300*time.Millisecond {
		return server.Config{}, usageErrorf("--lease-ttl %v: want at least 300ms (a lease is renewed every third of it)", o.leaseTTL)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return server.Config{}, usageErrorf("--log-level %q: want debug, info, warn or error", o.logLevel)
	}
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch o.logFormat {
	case "text":
		h = slog.NewTextHandler(ios.ErrOut, hopts)
	case "json":
		h = slog.NewJSONHandler(ios.ErrOut, hopts)
	default:
		return server.Config{}, usageErrorf("--log-format %q: want text or json", o.logFormat)
	}
	master, previous, err := masterKeys()
	if err != nil {
		return server.Config{}, err
	}
	ssoCfg, err := o.ssoConfig()
	if err != nil {
		return server.Config{}, err
	}
	allow, err := egress.ParseAllow(o.egressAllow)
	if err != nil {
		return server.Config{}, usageErrorf("--egress-allow: %v", err)
	}
	var keep *pipeline.KeepPrevious
	kp, err := time.ParseDuration(o.keepPrevious)
	switch {
	case err != nil || kp < 0 || kp > deployfile.MaxKeepPrevious:
		return server.Config{}, usageErrorf("--keep-previous %q: want a duration from 0 (off) to 168h, such as 30m", o.keepPrevious)
	case o.keepPreviousReplicas < 0:
		return server.Config{}, usageErrorf("--keep-previous-replicas %d: want 0 or more", o.keepPreviousReplicas)
	case kp > 0:
		keep = &pipeline.KeepPrevious{For: pipeline.Duration(kp), Replicas: o.keepPreviousReplicas}
	}
	var given *auth.Given
	if o.bootstrapDir != "" {
		if given, err = auth.ReadGiven(o.bootstrapDir); err != nil {
			return server.Config{}, usageErrorf("--bootstrap-credentials-dir: %v", err)
		}
	}
	return server.Config{
		Addr: o.addr, DataDir: o.dataDir, DatabaseURL: o.databaseURL, PublicURL: o.publicURL, Log: slog.New(h),
		Replica: o.replicaID, LeaseTTL: o.leaseTTL,
		Bootstrap: given, KeepPrevious: keep,
		TLSCertFile: o.tlsCertFile, TLSKeyFile: o.tlsKeyFile, BehindTLSProxy: o.behindTLSProxy,
		MasterKey: master, PreviousMasterKeys: previous, SSO: ssoCfg, EgressAllow: allow,
		Ready: func(addr, creds string) {
			if creds != "" {
				fmt.Fprintf(ios.ErrOut, "\nAn admin client credential was written to %s (readable by you only).\nLog the CLI in with:\n\n  sortie login --credentials-file %s\n\n", creds, creds)
			}
		},
	}, nil
}

// masterKeys reads SORTIE_MASTER_KEY (base64, 32 bytes) and
// SORTIE_PREVIOUS_MASTER_KEYS (comma-separated, the keys it replaced). Unset
// means <data-dir>/master.key. Their values never appear in an error.
func masterKeys() ([]byte, [][]byte, error) {
	v := os.Getenv("SORTIE_MASTER_KEY")
	if v == "" {
		if os.Getenv("SORTIE_PREVIOUS_MASTER_KEYS") != "" {
			return nil, nil, usageErrorf("SORTIE_PREVIOUS_MASTER_KEYS is set without SORTIE_MASTER_KEY")
		}
		return nil, nil, nil
	}
	master, err := secrets.ParseKey(v)
	if err != nil {
		return nil, nil, usageErrorf("SORTIE_MASTER_KEY: %v", err)
	}
	var previous [][]byte
	for i, p := range strings.Split(os.Getenv("SORTIE_PREVIOUS_MASTER_KEYS"), ",") {
		if strings.TrimSpace(p) == "" {
			continue
		}
		k, err := secrets.ParseKey(p)
		if err != nil {
			return nil, nil, usageErrorf("SORTIE_PREVIOUS_MASTER_KEYS, key %d: %v", i+1, err)
		}
		previous = append(previous, k)
	}
	return master, previous, nil
}

func newServerCmd(ios IOStreams) *cobra.Command {
	o := &serverOptions{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Sortie control plane: API, engine, store and console",
		Long: strings.TrimSpace(`
Run the control plane. Agents in each cluster dial in to it; the CLI and the
console talk to its API. State lives in a SQLite database under --data-dir;
a deployment in flight when the server stops resumes when it starts again.

It listens on --addr (default 127.0.0.1:8080). With --tls-cert-file and
--tls-key-file it serves TLS (HTTP/2 and HTTP/1.1; the agents' gRPC on the
same port) and sends HSTS; the files are read again when they change, so a
renewed certificate needs no restart. Plaintext on a non-loopback address is
refused unless --behind-tls-proxy says a proxy in front terminates TLS (it
must speak HTTP/2 to the server for the agents); give it --public-url
https://... so the console's cookies are Secure.

On first start the server writes an admin client credential to
<data-dir>/admin-credentials.json and says so.

Webhooks and metric queries (URLs a deployment file or a provider names)
may not connect to loopback, link-local or cloud metadata addresses, nor
to the server itself; --egress-allow CIDR,... allows ranges of the first
ones. Private ranges (10/8, 172.16/12, 192.168/16) are allowed. A secret
set with 'sortie secrets set --allowed-host' goes only to those hosts.

Secrets are encrypted under a master key: SORTIE_MASTER_KEY (base64 of 32
random bytes: openssl rand -base64 32) if set, else <data-dir>/master.key,
created on first start. To replace a key given by SORTIE_MASTER_KEY,
restart with the new one there and the old one in
SORTIE_PREVIOUS_MASTER_KEYS; a key file is rotated while the server runs
(POST /api/v1/master-key/rotate, organization admins).

People log in with local accounts ('sortie users') or, with --oidc-issuer,
through an OpenID Connect provider: register one client there with the
authorization code grant (redirect URL PUBLIC-URL/login/sso/callback) and the
device grant, give its id and secret (--oidc-client-secret-file or
SORTIE_OIDC_CLIENT_SECRET), and map groups with --oidc-group-role
GROUP=TENANT:ROLE[,ROLE...] (repeatable).`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.config(ios)
			if err != nil {
				return err
			}
			tp, stop, err := startTracing(cmd.Context(), o.otlpEndpoint, "sortie-server", cfg.Log)
			if err != nil {
				return err
			}
			defer stop()
			cfg.Tracer = tp
			return server.Run(cmd.Context(), cfg)
		},
	}
	o.bind(cmd)
	return cmd
}

func newDevCmd(ios IOStreams) *cobra.Command {
	o := &serverOptions{}
	var kubeconfig, account string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a server that deploys in process to one cluster, for a laptop",
		Long: strings.TrimSpace(`
Run the control plane with an in-process executor for one cluster: targets
whose account is --account deploy to the cluster of --kubeconfig, with no
agent to install. Webhooks and metric queries may reach loopback (services
on this machine); everything else is as 'sortie server'.`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.config(ios)
			if err != nil {
				return err
			}
			if kubeconfig == "" {
				return usageErrorf("--kubeconfig (or KUBECONFIG) is required")
			}
			cfg.Kubeconfig, cfg.Account = kubeconfig, account
			// On a laptop the webhook receivers and Prometheus are local.
			cfg.EgressAllow = append(slices.Clone(egress.Loopback), cfg.EgressAllow...)
			tp, stop, err := startTracing(cmd.Context(), o.otlpEndpoint, "sortie-server", cfg.Log)
			if err != nil {
				return err
			}
			defer stop()
			cfg.Tracer = tp
			return server.Run(cmd.Context(), cfg)
		},
	}
	o.bind(cmd)
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", envOr("SORTIE_KUBECONFIG", os.Getenv("KUBECONFIG")), "kubeconfig of the cluster to deploy to (SORTIE_KUBECONFIG, KUBECONFIG)")
	cmd.Flags().StringVar(&account, "account", envOr("SORTIE_ACCOUNT", "local"), "account name targets use for this cluster (SORTIE_ACCOUNT)")
	return cmd
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func defaultDataDir() string {
	if d, err := os.UserHomeDir(); err == nil {
		return filepath.Join(d, ".local", "share", "sortie")
	}
	return "sortie-data"
}
