package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"

	"github.com/sortie-cd/sortie/agent/agentpb"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/progress"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
)

// MaxReportData is the largest event data one Report may carry: a larger
// report is refused, by the agent before it is sent and by the hub when it
// arrives.
const MaxReportData = 256 << 10

// maxQueuedReports bounds the bytes of reports the hub holds for one
// command before it has appended them to the log (the store is slow, the
// agent floods): beyond it, further reports are dropped, never the
// stream's reading held up.
const maxQueuedReports = 4 << 20

// eventType is what a reported event's type may look like.
var eventType = regexp.MustCompile(`^[a-z][a-z0-9._-]{0,62}$`)

// serverEventTypes are the event types the server writes itself: the
// runner's transitions (action, command, status) and retries
// (progress.EventRetry), and the gates' calls and judgments
// (progress.EventWebhook, progress.EventJudgment). An agent may not report
// them.
var serverEventTypes = []string{"action", "command", "status", progress.EventRetry, progress.EventWebhook, progress.EventJudgment}

// checkReport says why an event may not travel as a Report, or nil.
func checkReport(typ string, data []byte) error {
	switch {
	case !eventType.MatchString(typ):
		return fmt.Errorf("event type %q is not valid: lower-case letters, digits, '.', '_' or '-', at most 63", typ)
	case slices.Contains(serverEventTypes, typ):
		return fmt.Errorf("event type %q is written by the server only", typ)
	case len(data) > MaxReportData:
		return fmt.Errorf("event data of %d bytes is over the %d KiB limit", len(data), MaxReportData>>10)
	case len(data) > 0 && !json.Valid(data):
		return errors.New("event data is not JSON")
	}
	return nil
}

// call is one Execute waiting for its command. What the agent sends for
// the command queues in it, under Hub.mu, in the order of the stream:
// Execute appends the reports to the log, then returns the result.
type call struct {
	account string        // only this agent's messages are for the call
	ready   chan struct{} // holds a token when something was queued
	reports []store.Event
	queued  int // bytes of data in reports
	result  *pipeline.CommandResult
}

func newCall(account string) *call {
	return &call{account: account, ready: make(chan struct{}, 1)}
}

// signal wakes the call's Execute. Runs under Hub.mu.
func (cl *call) signal() {
	select {
	case cl.ready <- struct{}{}:
	default:
	}
}

// reported queues an agent's report for the calls waiting for its command
// (none: the command is unknown or finished, and the report is ignored).
// It does not wait for the store: Execute appends the report, so a slow
// append never holds up the stream's heartbeats or other commands.
func (h *Hub) reported(c *conn, r *agentpb.Report) {
	log := h.log.With("agent", c.info.ID, "tenant", c.tenant, "command", r.GetCommandId(), "event", r.GetEventType())
	if err := checkReport(r.GetEventType(), r.GetData()); err != nil {
		log.Warn("report from the agent refused", "err", err)
		return
	}
	ev := store.Event{Type: r.GetEventType()}
	if len(r.GetData()) > 0 {
		ev.Data = json.RawMessage(r.GetData())
	}
	var waiting, dropped int
	h.mu.Lock()
	for cl := range h.calls[connKey{c.tenant, r.GetCommandId()}] {
		if cl.account != c.info.ID || cl.result != nil {
			continue
		}
		waiting++
		if cl.queued+len(ev.Data) > maxQueuedReports {
			dropped++
			continue
		}
		cl.reports = append(cl.reports, ev)
		cl.queued += len(ev.Data)
		cl.signal()
	}
	h.mu.Unlock()
	switch {
	case waiting == 0:
		log.Debug("report for a command the server does not wait for; ignored")
	case dropped > 0:
		log.Warn("report from the agent dropped: too many wait to be appended to the log", "queued_limit_bytes", maxQueuedReports)
	}
}

// settle appends the reports queued in cl to the pipeline's log (through
// job.Report, in order, before anything else is done with the command)
// and returns the command's result once it has come.
func (h *Hub) settle(ctx context.Context, cl *call, job runner.Job, log *slog.Logger) (pipeline.CommandResult, bool) {
	h.mu.Lock()
	evs, r := cl.reports, cl.result
	cl.reports, cl.queued = nil, 0
	h.mu.Unlock()
	for _, ev := range evs {
		if job.Report == nil {
			break
		}
		if err := job.Report(ctx, ev); err != nil {
			log.Warn("append the agent's report to the pipeline's log", "event", ev.Type, "err", err)
		}
	}
	if r == nil {
		return pipeline.CommandResult{}, false
	}
	return *r, true
}

// reporter is the Job.Report the agent gives the executor for execution
// ex of command id: it sends the event as a Report on the current stream.
// The executor reports before it returns, and the result is sent after
// that on the same stream, so the server appends the reports first. A
// report with no stream to go on is lost (an error for the executor).
func (a *Agent) reporter(id string, ex *execution) func(context.Context, store.Event) error {
	return func(_ context.Context, ev store.Event) error {
		if err := checkReport(ev.Type, ev.Data); err != nil {
			return fmt.Errorf("agent: report %s: %w", ev.Type, err)
		}
		a.mu.Lock()
		s, cancelled := a.sess, ex.cancelled
		a.mu.Unlock()
		switch {
		case cancelled:
			return fmt.Errorf("agent: report %s: the server no longer waits for command %s", ev.Type, id)
		case s == nil:
			return fmt.Errorf("agent: report %s: not connected to the server", ev.Type)
		}
		m := &agentpb.AgentMessage{Msg: &agentpb.AgentMessage_Report{Report: &agentpb.Report{CommandId: id, EventType: ev.Type, Data: ev.Data}}}
		if err := s.send(m); err != nil {
			return fmt.Errorf("agent: report %s: %w", ev.Type, err)
		}
		return nil
	}
}
