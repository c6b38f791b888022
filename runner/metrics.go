package runner

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// Metrics are the runner's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	transitions *prometheus.CounterVec
	pipelines   *prometheus.GaugeVec
	commands    *prometheus.HistogramVec
}

// NewMetrics registers the runner's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortie_engine_transitions_total",
			Help: "Status changes of pipelines, targets and steps, by level and new status.",
		}, []string{"level", "status"}),
		pipelines: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sortie_engine_pipelines",
			Help: "Pipelines in flight on this server, by status.",
		}, []string{"status"}),
		commands: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sortie_engine_command_duration_seconds",
			Help:    "Time executors took for commands, by kind and outcome.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
		}, []string{"kind", "outcome"}),
	}
	reg.MustRegister(m.transitions, m.pipelines, m.commands)
	return m
}

func (m *Metrics) observe(prev, next pipeline.State, _ []store.Event) {
	if m == nil {
		return
	}
	for _, c := range pipeline.Changes(prev, next) {
		level := "pipeline"
		switch {
		case c.Step != "":
			level = "step"
		case c.Target != "":
			level = "target"
		}
		m.transitions.WithLabelValues(level, string(c.To)).Inc()
	}
	if prev.Status != next.Status {
		if prev.Status != "" {
			m.pipelines.WithLabelValues(string(prev.Status)).Dec()
		}
		if !next.Status.Terminal() {
			m.pipelines.WithLabelValues(string(next.Status)).Inc()
		}
	}
}

func (m *Metrics) command(kind pipeline.CommandKind, ok bool, d time.Duration) {
	if m == nil {
		return
	}
	outcome := "success"
	if !ok {
		outcome = "failure"
	}
	m.commands.WithLabelValues(string(kind), outcome).Observe(d.Seconds())
}
