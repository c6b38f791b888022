package cli

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/sortie-cd/sortie/tracing"
)

// tracingHelp is the help of --otlp-endpoint.
const tracingHelp = "export traces over OTLP to this collector URL, such as http://collector:4318 (http/protobuf) or http://collector:4317 with OTEL_EXPORTER_OTLP_PROTOCOL=grpc; without it, tracing is on when OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) is set, and the other OTEL_* settings apply (SORTIE_OTLP_ENDPOINT)"

// tracingConfig decides from --otlp-endpoint and the standard OTEL_*
// variables whether the process traces: on with an endpoint (the flag or
// OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT) or OTEL_TRACES_EXPORTER=otlp, off
// with OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true, off by
// default. The exporter and the SDK read the other OTEL_* settings
// themselves (headers, TLS, sampler, service name, batching).
func tracingConfig(endpoint, service string) (tracing.Config, bool, error) {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") {
		return tracing.Config{}, false, nil
	}
	on := endpoint != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	switch exp := strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER"))); exp {
	case "":
	case "none":
		return tracing.Config{}, false, nil
	case "otlp":
		on = true
	default:
		return tracing.Config{}, false, usageErrorf("OTEL_TRACES_EXPORTER=%s: Sortie exports traces with otlp only (or none)", exp)
	}
	if !on {
		return tracing.Config{}, false, nil
	}
	protocol := envOr("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL"))
	switch protocol {
	case "", tracing.ProtocolHTTP, tracing.ProtocolGRPC:
	default:
		return tracing.Config{}, false, usageErrorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s: want %s or %s", protocol, tracing.ProtocolHTTP, tracing.ProtocolGRPC)
	}
	return tracing.Config{Endpoint: endpoint, Protocol: protocol, ServiceName: service, ServiceVersion: Version}, true, nil
}

// startTracing returns the process's tracer provider (nil when tracing is
// off) and what flushes it at exit.
func startTracing(ctx context.Context, endpoint, service string, log *slog.Logger) (trace.TracerProvider, func(), error) {
	cfg, on, err := tracingConfig(endpoint, service)
	if err != nil || !on {
		return nil, func() {}, err
	}
	tp, err := tracing.New(ctx, cfg)
	if err != nil {
		return nil, nil, usageErrorf("%v", err)
	}
	protocol := cfg.Protocol
	if protocol == "" {
		protocol = tracing.ProtocolHTTP
	}
	log.Info("exporting traces over OTLP", "protocol", protocol)
	return tp, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			log.Warn("flush traces at exit", "err", err)
		}
	}, nil
}
