package agent

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// agentMetrics are the agent's own metrics.
type agentMetrics struct {
	connected  prometheus.Gauge
	connects   prometheus.Counter
	reconnects prometheus.Counter
	renewals   prometheus.Counter
	running    prometheus.Gauge
	commands   *prometheus.CounterVec
	repeats    *prometheus.CounterVec
	relays     *prometheus.CounterVec
}

func newAgentMetrics(reg *prometheus.Registry) (agentMetrics, error) {
	m := agentMetrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sortie_agent_connected", Help: "1 while the server has accepted the agent's stream.",
		}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sortie_agent_connects_total", Help: "Streams the server accepted.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sortie_agent_reconnects_total", Help: "Streams that ended or were refused, each followed by a retry.",
		}),
		renewals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sortie_agent_token_renewals_total", Help: "New tokens sent on the open stream when the server asked (RenewToken).",
		}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sortie_agent_commands_running", Help: "Commands running now.",
		}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortie_agent_commands_total", Help: "Commands run, by kind and success.",
		}, []string{"kind", "success"}),
		repeats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortie_agent_command_repeats_total", Help: "Commands received again, by whether they were running or finished.",
		}, []string{"state"}),
		relays: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortie_agent_relayed_requests_total", Help: "HTTP requests relayed for the server, by outcome (answered, error).",
		}, []string{"outcome"}),
	}
	for _, c := range []prometheus.Collector{m.connected, m.connects, m.reconnects, m.renewals, m.running, m.commands, m.repeats, m.relays} {
		if err := reg.Register(c); err != nil {
			return m, err
		}
	}
	return m, nil
}

// RegisterProcessMetrics adds the Go runtime and process collectors.
func RegisterProcessMetrics(reg *prometheus.Registry) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

func promhttpHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
