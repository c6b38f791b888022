package cli

import (
	"strings"
	"testing"

	"github.com/sortie-cd/sortie/tracing"
)

// TestTracingConfig: tracing is off unless an endpoint or
// OTEL_TRACES_EXPORTER=otlp asks for it, the standard switches turn it
// off, and a protocol or exporter Sortie lacks is refused, saying why.
func TestTracingConfig(t *testing.T) {
	vars := []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"}
	for _, tc := range []struct {
		name, flag string
		env        map[string]string
		on         bool
		protocol   string
		err        string
	}{
		{name: "nothing set"},
		{name: "the flag", flag: "http://c:4318", on: true},
		{name: "the standard endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, on: true, protocol: tracing.ProtocolGRPC},
		{name: "the traces endpoint, its own protocol first", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, on: true, protocol: tracing.ProtocolHTTP},
		{name: "exporter otlp", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true},
		{name: "exporter none", flag: "http://c:4318", env: map[string]string{"OTEL_TRACES_EXPORTER": "none"}},
		{name: "SDK disabled", flag: "http://c:4318", env: map[string]string{"OTEL_SDK_DISABLED": "true"}},
		{name: "exporter zipkin", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, err: "otlp only"},
		{name: "http/json", flag: "http://c:4318", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, err: "want http/protobuf or grpc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range vars {
				t.Setenv(k, tc.env[k])
			}
			cfg, on, err := tracingConfig(tc.flag, "sortie-server")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || on != tc.on || cfg.Protocol != tc.protocol || (on && (cfg.Endpoint != tc.flag || cfg.ServiceName != "sortie-server")) {
				t.Errorf("got %+v on=%v err=%v; want on=%v protocol %q", cfg, on, err, tc.on, tc.protocol)
			}
		})
	}
}
