package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sortie-cd/sortie/agent"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/egress"
	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/kubeexec"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/tracing"
)

// agentOptions are the flags of `sortie agent`; each defaults to its
// SORTIE_* variable.
type agentOptions struct {
	server, agentID, kubeconfig, caFile, credentialsFile, healthAddr string
	logLevel, logFormat                                              string
	otlpEndpoint                                                     string
	namespaces, relayAllow                                           []string
}

func (o *agentOptions) bind(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.server, "server", envOr("SORTIE_SERVER", ""), "the server's URL: https://host[:port], or http:// to a loopback address (SORTIE_SERVER)")
	f.StringVar(&o.agentID, "agent-id", envOr("SORTIE_AGENT_ID", ""), "the agent identifier: the account targets name for this cluster (SORTIE_AGENT_ID)")
	f.StringVar(&o.kubeconfig, "kubeconfig", envOr("SORTIE_KUBECONFIG", os.Getenv("KUBECONFIG")), "kubeconfig of the cluster; empty means the in-cluster ServiceAccount (SORTIE_KUBECONFIG, KUBECONFIG)")
	f.StringVar(&o.caFile, "ca-file", envOr("SORTIE_CA_FILE", ""), "PEM file of the CA that signed the server's certificate; empty means the system's (SORTIE_CA_FILE)")
	f.StringVar(&o.credentialsFile, "credentials-file", envOr("SORTIE_CREDENTIALS_FILE", ""), "JSON file with client_id and client_secret (and server); default SORTIE_CLIENT_ID and SORTIE_CLIENT_SECRET (SORTIE_CREDENTIALS_FILE)")
	f.StringVar(&o.healthAddr, "health-addr", envOr("SORTIE_HEALTH_ADDR", ""), "address of /healthz, /readyz and /metrics, such as :8081; empty means none (SORTIE_HEALTH_ADDR)")
	f.StringVar(&o.logLevel, "log-level", envOr("SORTIE_LOG_LEVEL", "info"), "debug, info, warn or error (SORTIE_LOG_LEVEL)")
	f.StringVar(&o.logFormat, "log-format", envOr("SORTIE_LOG_FORMAT", "text"), "text or json (SORTIE_LOG_FORMAT)")
	f.StringVar(&o.otlpEndpoint, "otlp-endpoint", envOr("SORTIE_OTLP_ENDPOINT", ""), tracingHelp)
	f.StringSliceVar(&o.relayAllow, "relay-allow", splitList(os.Getenv("SORTIE_RELAY_ALLOW")), "address ranges (CIDR) relayed webhooks and metric queries may reach although they are refused by default: loopback, link-local, cloud metadata, unspecified; such as 127.0.0.0/8 for a service beside the agent (SORTIE_RELAY_ALLOW)")
	f.StringSliceVar(&o.namespaces, "namespaces", splitList(os.Getenv("SORTIE_NAMESPACES")), "the only namespaces the agent writes in; any other object (and any cluster-scoped one but these Namespaces) is refused before it is written; empty means the whole cluster (SORTIE_NAMESPACES)")
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func newAgentCmd(ios IOStreams) *cobra.Command {
	o := &agentOptions{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the agent of one cluster: it dials out to the server and deploys there",
		Long: strings.TrimSpace(`
Run the agent of one cluster. It dials out to the server (the cluster needs
no inbound port), registers under --agent-id (the account targets name),
and runs the server's commands with its own Kubernetes credentials: the
in-cluster ServiceAccount, or --kubeconfig.

It authenticates with a client credential holding the agent role, from
SORTIE_CLIENT_ID and SORTIE_CLIENT_SECRET or --credentials-file. It keeps one
gRPC stream open over HTTP/2 (TLS; plaintext only to a loopback server) and
reconnects with jittered backoff. HTTPS_PROXY and NO_PROXY are honoured.

It makes the HTTP calls the server relays (webhooks and metric queries with
networkMode remoteNetworkAgent) inside the cluster's network, never to
loopback, link-local or cloud metadata addresses unless --relay-allow allows
those ranges.

One agent per identifier and tenant: a second one is refused while the first
is connected, and retries until it goes away.

'sortie agent manifest' prints the YAML that installs an agent.`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context(), ios) },
	}
	o.bind(cmd)
	cmd.AddCommand(newAgentManifestCmd(ios))
	return cmd
}

func (o *agentOptions) run(ctx context.Context, ios IOStreams) error {
	log, err := newLogger(ios, o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	clientID, secret := os.Getenv("SORTIE_CLIENT_ID"), os.Getenv("SORTIE_CLIENT_SECRET")
	if o.credentialsFile != "" {
		b, err := os.ReadFile(o.credentialsFile)
		if err != nil {
			return fmt.Errorf("credentials file: %w", err)
		}
		var cf auth.CredentialsFile
		if err := json.Unmarshal(b, &cf); err != nil {
			return fmt.Errorf("credentials file %s: %w", o.credentialsFile, err)
		}
		clientID, secret = cf.ClientID, cf.ClientSecret
		if o.server == "" {
			o.server = cf.Server
		}
	}
	switch {
	case o.server == "":
		return usageErrorf("--server (or SORTIE_SERVER) is required")
	case o.agentID == "":
		return usageErrorf("--agent-id (or SORTIE_AGENT_ID) is required")
	case clientID == "" || secret == "":
		return usageErrorf("client credentials are required: SORTIE_CLIENT_ID and SORTIE_CLIENT_SECRET, or --credentials-file")
	}
	relayAllow, err := egress.ParseAllow(o.relayAllow)
	if err != nil {
		return usageErrorf("--relay-allow: %v", err)
	}
	var rc *rest.Config
	if o.kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return fmt.Errorf("kubernetes configuration: %w", err)
	}
	tp, stopTracing, err := startTracing(ctx, o.otlpEndpoint, "sortie-agent", log)
	if err != nil {
		return err
	}
	defer stopTracing()
	if tp != nil {
		// The Kubernetes calls of a traced command are its child spans.
		rc.Wrap(tracing.Wrap(true))
	}
	kx, err := kube.New(rc, log)
	if err != nil {
		return err
	}
	if len(o.namespaces) > 0 {
		kx.LimitNamespaces(o.namespaces)
		log.Info("writes limited to namespaces", "namespaces", strings.Join(o.namespaces, ","))
	}
	serviceProxy, err := kx.ServiceProxy()
	if err != nil {
		return err
	}
	opts := agent.Options{
		ServiceProxy: serviceProxy,
		RelayAllow:   relayAllow,
		ServerURL:    o.server, AgentID: o.agentID, ClientID: clientID, ClientSecret: secret,
		Executor: func(tenant string) runner.Executor {
			return kubeexec.New(tenant, map[string]*kube.Executor{o.agentID: kx}, log)
		},
		ClusterVersion: func(context.Context) (string, error) { return kx.ServerVersion() },
		Version:        Version,
		Log:            log,
		Metrics:        prometheus.NewRegistry(),
		Tracer:         tp,
	}
	agent.RegisterProcessMetrics(opts.Metrics)
	if o.caFile != "" {
		if opts.RootCAs, err = agent.LoadCAFile(o.caFile); err != nil {
			return err
		}
	}
	a, err := agent.New(opts)
	if err != nil {
		return err
	}
	if o.healthAddr != "" {
		ln, err := net.Listen("tcp", o.healthAddr)
		if err != nil {
			return fmt.Errorf("health listener: %w", err)
		}
		hs := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(ln)
		defer hs.Close()
		log.Info("health endpoints listening", "addr", ln.Addr().String())
	}
	log.Info("sortie agent starting", "agent", o.agentID, "server", o.server, "version", Version)
	return a.Run(ctx)
}

// newLogger builds the process's logger on ios.ErrOut.
func newLogger(ios IOStreams, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErrorf("--log-level %q: want debug, info, warn or error", level)
	}
	hopts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(ios.ErrOut, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(ios.ErrOut, hopts)), nil
	}
	return nil, usageErrorf("--log-format %q: want text or json", format)
}

var errNoServer = errors.New("--server is required: the URL the agent dials, as the cluster reaches the server")
