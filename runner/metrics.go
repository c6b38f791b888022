package runner

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// Metrics are the runner's Prometheus metrics. A nil *Metrics records nothing.
//
// The delivery metrics (sortie_delivery_*) carry only bounded labels: the
// tenant, application and target a deployment file names, and an outcome,
// verdict or reason from a fixed list. A pipeline's id, a message or a
// person's name is never a label: each pipeline would be a new series.
type Metrics struct {
	transitions *prometheus.CounterVec
	pipelines   *prometheus.GaugeVec
	commands    *prometheus.HistogramVec

	deployments *prometheus.HistogramVec
	rollbacks   *prometheus.HistogramVec
	judgments   *prometheus.CounterVec
	approvals   *prometheus.HistogramVec
	caught      *prometheus.CounterVec

	clock Clock
	mu    sync.Mutex
	// waiting are the steps awaiting a person now, by tenant/pipeline/
	// target/step, with when they began to wait: what the waiting
	// collector reports at scrape time.
	waiting map[string]wait
}

type wait struct {
	tenant, application, target string
	since                       time.Time
}

// Deployment outcomes, approval outcomes, judgment verdicts and rollback
// reasons: the only values those labels take.
const (
	verdictPassed       = "passed"
	verdictFailed       = "failed"
	verdictInconclusive = "inconclusive"

	reasonAnalysis             = "analysis"
	reasonAnalysisInconclusive = "analysis_inconclusive"
	reasonWebhook              = "webhook"
	reasonApprovalExpired      = "approval_expired"
	reasonRejected             = "rejected"
	reasonTimeout              = "timeout"
	reasonDeployFailed         = "deploy_failed"
	reasonManual               = "manual"
	reasonCancelled            = "cancelled"
)

var reasons = []string{reasonAnalysis, reasonAnalysisInconclusive, reasonWebhook, reasonApprovalExpired, reasonRejected,
	reasonTimeout, reasonDeployFailed, reasonManual, reasonCancelled}

// deliveryLabels are the labels of every delivery metric before its own.
var deliveryLabels = []string{"tenant", "application", "target"}

// NewMetrics registers the runner's metrics on reg. The runner given them
// measures the approval waits with its clock.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	with := func(l ...string) []string { return append(append([]string(nil), deliveryLabels...), l...) }
	m := &Metrics{
		clock:   realClock{},
		waiting: map[string]wait{},
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
		deployments: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sortie_delivery_deployment_duration_seconds",
			Help: "Time from a target's start to its end, by outcome (succeeded, failed, rolled_back, cancelled). " +
				"Its count is the number of deployments: the base of deployment frequency and change failure rate.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 16), // 1 s to 9 h
		}, with("outcome")),
		rollbacks: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sortie_delivery_rollback_duration_seconds",
			Help:    "Time from a rollback's request to the old version Ready (outcome succeeded) or the rollback's failure (failed).",
			Buckets: prometheus.ExponentialBuckets(0.5, 2, 14),
		}, with("outcome")),
		judgments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortie_delivery_analysis_judgments_total",
			Help: "Analyses judged, by verdict (passed, failed, inconclusive).",
		}, with("verdict")),
		approvals: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sortie_delivery_approval_wait_seconds",
			Help:    "Time steps waited for a person, by outcome (approved, rejected, expired, cancelled).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 18), // 1 s to 36 h
		}, with("outcome")),
		caught: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortie_delivery_rollbacks_total",
			Help: "Targets stopped and rolled back, by reason: analysis, analysis_inconclusive, webhook, approval_expired, " +
				"deploy_failed, timeout (automatic: bad deploys caught), rejected, manual, cancelled (by a person).",
		}, with("reason")),
	}
	reg.MustRegister(m.transitions, m.pipelines, m.commands, m.deployments, m.rollbacks, m.judgments, m.approvals, m.caught, waitingCollector{m})
	return m
}

// observe records a saved transition of a pipeline, caused by ev at now.
func (m *Metrics) observe(prev, next *store.Pipeline, ev pipeline.Event, now time.Time) {
	if m == nil {
		return
	}
	for _, c := range pipeline.Changes(prev.State, next.State) {
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
		m.pipelines.WithLabelValues(string(prev.Status)).Dec()
		m.inFlight(next)
	}
	m.judged(prev, next, ev)
	for i := range next.State.Targets {
		nt := &next.State.Targets[i]
		pt := prev.State.Target(nt.Name)
		if pt == nil {
			pt = &pipeline.TargetState{}
		}
		labels := []string{next.Tenant, next.Application, nt.Name}
		if pt.Status == pipeline.StatusQueued && nt.Status.Active() {
			m.started(labels)
		}
		if !pt.Status.Terminal() && nt.Status.Terminal() && !nt.StartedAt.IsZero() {
			m.deployments.WithLabelValues(append(labels, outcome(nt.Status))...).Observe(nt.EndedAt.Sub(nt.StartedAt).Seconds())
		}
		stopped := pt.Rollback == nil && !pt.Status.Terminal() && (nt.Rollback != nil || nt.Status == pipeline.StatusRolledBack)
		if stopped {
			m.caught.WithLabelValues(append(labels, rollbackReason(ev, nt))...).Inc()
		}
		if r := nt.Rollback; r != nil && r.Status.Terminal() && (pt.Rollback == nil || !pt.Rollback.Status.Terminal()) {
			m.rollbacks.WithLabelValues(append(labels, outcome(r.Status))...).Observe(r.EndedAt.Sub(r.StartedAt).Seconds())
		}
		for j := range nt.Steps {
			ns := &nt.Steps[j]
			ps := pt.Step(ns.ID)
			was := ps != nil && ps.Status == pipeline.StatusAwaitingApproval
			if was && ns.Status != pipeline.StatusAwaitingApproval {
				m.approvals.WithLabelValues(append(labels, approvalOutcome(ev, ns.Status))...).Observe(m.waited(next, nt.Name, ns, now).Seconds())
			} else if !was && ns.Status == pipeline.StatusAwaitingApproval {
				m.wait(next, nt.Name, ns.ID, now)
			}
		}
	}
}

// started makes the series of a target's counters exist, at zero, when it
// starts, so that the first failure or rollback of a target is an increase
// Prometheus sees (a series born at 1 shows none) and the change failure
// rate of a target that never failed is 0, not empty. Only the counters and
// the deployments' histogram: a dozen series and three histograms a target.
func (m *Metrics) started(labels []string) {
	for _, o := range []pipeline.Status{pipeline.StatusSucceeded, pipeline.StatusFailed, pipeline.StatusRolledBack} {
		m.deployments.WithLabelValues(append(labels, outcome(o))...)
	}
	for _, v := range []string{verdictPassed, verdictFailed, verdictInconclusive} {
		m.judgments.WithLabelValues(append(labels, v)...)
	}
	for _, r := range reasons {
		m.caught.WithLabelValues(append(labels, r)...)
	}
}

// judged counts the verdict of an analysis whose result ev is.
func (m *Metrics) judged(prev, next *store.Pipeline, ev pipeline.Event) {
	res, ok := ev.(pipeline.CommandResult)
	if !ok {
		return
	}
	for _, c := range prev.State.Outstanding {
		if c.ID != res.CommandID || c.Kind != pipeline.CmdRunAnalysis {
			continue
		}
		verdict := verdictFailed
		switch {
		case res.Inconclusive:
			verdict = verdictInconclusive
		case res.Success:
			verdict = verdictPassed
		}
		m.judgments.WithLabelValues(next.Tenant, next.Application, c.Target, verdict).Inc()
	}
}

// outcome is a status as a label value: succeeded, failed, rolled_back,
// cancelled.
func outcome(s pipeline.Status) string { return strings.ToLower(string(s)) }

func approvalOutcome(ev pipeline.Event, s pipeline.Status) string {
	switch s {
	case pipeline.StatusCancelled:
		return "cancelled"
	case pipeline.StatusFailed:
		if _, ok := ev.(pipeline.Reject); ok {
			return "rejected"
		}
		return "expired"
	}
	return "approved" // succeeded, or running again (an analysis approved to go on)
}

// rollbackReason is why t stopped to roll back: the person's action, or the
// kind of the step that failed.
func rollbackReason(ev pipeline.Event, t *pipeline.TargetState) string {
	switch ev.(type) {
	case pipeline.Rollback:
		return reasonManual
	case pipeline.Cancel:
		return reasonCancelled
	case pipeline.Reject:
		return reasonRejected
	}
	steps := t.Steps
	for i := range steps {
		st := &steps[i]
		if st.Status != pipeline.StatusFailed {
			continue
		}
		switch st.Kind {
		case pipeline.KindAnalysis:
			if strings.HasPrefix(st.Message, "analysis inconclusive") {
				return reasonAnalysisInconclusive
			}
			return reasonAnalysis
		case pipeline.KindRunWebhook:
			return reasonWebhook
		case pipeline.KindApproval:
			return reasonApprovalExpired
		}
		if _, ok := ev.(pipeline.Tick); ok {
			return reasonTimeout
		}
		return reasonDeployFailed
	}
	if _, ok := ev.(pipeline.Tick); ok {
		return reasonTimeout
	}
	return reasonDeployFailed
}

func waitKey(p *store.Pipeline, target, step string) string {
	return p.Tenant + "\x00" + p.ID + "\x00" + target + "\x00" + step
}

func (m *Metrics) wait(p *store.Pipeline, target, step string, since time.Time) {
	m.mu.Lock()
	m.waiting[waitKey(p, target, step)] = wait{tenant: p.Tenant, application: p.Application, target: target, since: since}
	m.mu.Unlock()
}

// waited ends a wait and returns how long it was: since the step began to
// wait on this server, or since it started when it began before a restart.
func (m *Metrics) waited(p *store.Pipeline, target string, st *pipeline.StepState, now time.Time) time.Duration {
	k := waitKey(p, target, st.ID)
	m.mu.Lock()
	w, ok := m.waiting[k]
	delete(m.waiting, k)
	m.mu.Unlock()
	if !ok {
		w.since = st.StartedAt
	}
	return max(now.Sub(w.since), 0)
}

// inFlight counts a pipeline that came into this server's memory: created,
// or loaded by Resume after a restart. observe moves it between statuses and
// lets it go when it ends. The steps it has awaiting a person wait since
// they started (the moment they began to wait is not stored).
func (m *Metrics) inFlight(p *store.Pipeline) {
	if m == nil {
		return
	}
	if p.Status.Terminal() {
		m.forget(p)
		return
	}
	m.pipelines.WithLabelValues(string(p.Status)).Inc()
	for _, t := range p.State.Targets {
		for _, st := range t.Steps {
			if st.Status != pipeline.StatusAwaitingApproval {
				continue
			}
			m.mu.Lock()
			if _, ok := m.waiting[waitKey(p, t.Name, st.ID)]; !ok {
				m.waiting[waitKey(p, t.Name, st.ID)] = wait{tenant: p.Tenant, application: p.Application, target: t.Name, since: st.StartedAt}
			}
			m.mu.Unlock()
		}
	}
}

// forget drops the waits of a pipeline that ended.
func (m *Metrics) forget(p *store.Pipeline) {
	prefix := p.Tenant + "\x00" + p.ID + "\x00"
	m.mu.Lock()
	for k := range m.waiting {
		if strings.HasPrefix(k, prefix) {
			delete(m.waiting, k)
		}
	}
	m.mu.Unlock()
}

// gone lets go of a pipeline that left this server's memory before it
// ended: its lease went to another replica.
func (m *Metrics) gone(status pipeline.Status) {
	if m == nil || status.Terminal() {
		return
	}
	m.pipelines.WithLabelValues(string(status)).Dec()
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

// waitingCollector reports, at scrape time, the steps awaiting a person
// per tenant, application and target, and how long the oldest has waited:
// what an alert on a deployment stuck waiting for approval reads.
type waitingCollector struct{ m *Metrics }

var (
	waitingDesc = prometheus.NewDesc("sortie_delivery_approvals_waiting",
		"Steps awaiting a person now (approvals, manual analysis decisions).", deliveryLabels, nil)
	oldestDesc = prometheus.NewDesc("sortie_delivery_approval_oldest_wait_seconds",
		"How long the oldest step awaiting a person now has waited.", deliveryLabels, nil)
)

func (c waitingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- waitingDesc; ch <- oldestDesc }

func (c waitingCollector) Collect(ch chan<- prometheus.Metric) {
	type group struct {
		n      int
		oldest time.Time
	}
	now := c.m.clock.Now()
	groups := map[[3]string]*group{}
	c.m.mu.Lock()
	for _, w := range c.m.waiting {
		k := [3]string{w.tenant, w.application, w.target}
		g := groups[k]
		if g == nil {
			g = &group{oldest: w.since}
			groups[k] = g
		}
		g.n++
		if w.since.Before(g.oldest) {
			g.oldest = w.since
		}
	}
	c.m.mu.Unlock()
	for k, g := range groups {
		ch <- prometheus.MustNewConstMetric(waitingDesc, prometheus.GaugeValue, float64(g.n), k[:]...)
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, max(now.Sub(g.oldest), 0).Seconds(), k[:]...)
	}
}
