package gate

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/analysis"
	"github.com/sortie-cd/sortie/deployfile"
	"github.com/sortie-cd/sortie/egress"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/preview"
	"github.com/sortie-cd/sortie/progress"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/webhook"
)

// Router runs gate commands (webhooks, analysis) on Gates and every other
// command on Cluster, which alone answers HasAccount.
type Router struct {
	Gates, Cluster runner.Executor
	// Previews, when set, gives each Service an exposeServices step
	// exposed its preview URL, in the step's message; nil leaves the
	// cluster executor's message.
	Previews *preview.Links
	// Now: nil means time.Now (the links' expiry in the message).
	Now func() time.Time
}

// IsGate reports whether Router sends commands of kind k to Gates.
func IsGate(k pipeline.CommandKind) bool {
	return k == pipeline.CmdCallWebhook || k == pipeline.CmdRunAnalysis
}

// Execute implements runner.Executor.
func (r Router) Execute(ctx context.Context, job runner.Job) pipeline.CommandResult {
	if IsGate(job.Command.Kind) {
		return r.Gates.Execute(ctx, job)
	}
	res := r.Cluster.Execute(ctx, job)
	if job.Command.Kind == pipeline.CmdExposeServices && res.Success && r.Previews != nil {
		res.Message = r.previewMessage(job)
	}
	return res
}

// previewMessage lists the preview URL of each Service the step exposed,
// and until when it works.
func (r Router) previewMessage(job runner.Job) string {
	c := job.Command
	var step preview.Step
	if err := json.Unmarshal(c.Params, &step); err != nil {
		return "Services exposed"
	}
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Preview URLs, valid until %s:", now.Add(step.Lifetime()).UTC().Format("2006-01-02 15:04 MST"))
	for _, svc := range step.Services {
		fmt.Fprintf(&b, "\n- %s: %s", svc, r.Previews.URL(preview.Ref{Tenant: job.Tenant, Pipeline: c.Pipeline, Target: c.Target, Service: svc}))
	}
	return b.String()
}

// HasAccount implements runner.Executor.
func (r Router) HasAccount(tenant, account string) bool { return r.Cluster.HasAccount(tenant, account) }

// Options configure an Executor.
type Options struct {
	// PublicURL is how external systems reach the server: callback URIs
	// start with it. Required.
	PublicURL string
	// Providers are the tenants' metric providers; required for analysis.
	Providers analysis.Providers
	// Secrets resolves {{secrets.NAME}} and provider credentials; nil
	// means webhook.NoSecrets (every secret is not set).
	Secrets webhook.SecretResolver
	// Sender sends webhook calls; nil means a direct-only Sender.
	Sender *webhook.Sender
	// Analyzer runs analyses; nil means one on Providers, Secrets and
	// Relay.
	Analyzer *analysis.Analyzer
	// Relay sends through an agent: webhooks with networkMode
	// remoteNetworkAgent and Prometheus providers that name an agent. It
	// is used by the default Sender and Analyzer; nil refuses those calls.
	Relay webhook.Relay
	// Egress is where the default Sender's and Analyzer's direct calls
	// may connect; nil means the zero egress.Policy (loopback, link-local
	// and metadata addresses refused).
	Egress *egress.Policy
	// Log: nil discards. Requests are logged masked.
	Log *slog.Logger
	// Previews gives {{armory.preview.SERVICE}} its value; nil leaves it
	// without one.
	Previews *preview.Links
}

// Executor executes gate commands.
type Executor struct {
	o Options
}

// New returns an Executor.
func New(o Options) *Executor {
	if o.Secrets == nil {
		o.Secrets = webhook.NoSecrets{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Egress == nil {
		o.Egress = &egress.Policy{}
	}
	if o.Sender == nil {
		o.Sender = &webhook.Sender{Log: o.Log, Relay: o.Relay, Direct: o.Egress.Client(time.Minute)}
	}
	if o.Analyzer == nil {
		o.Analyzer = &analysis.Analyzer{Providers: o.Providers, Secrets: o.Secrets, Log: o.Log, Direct: o.Egress.Client(30 * time.Second)}
		if o.Relay != nil {
			o.Analyzer.Relay = analysisRelay{o.Relay}
		}
	}
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	return &Executor{o: o}
}

// analysisRelay is a webhook.Relay seen as an analysis.Relay: the two
// packages each declare their own Doer.
type analysisRelay struct{ r webhook.Relay }

func (a analysisRelay) Doer(tenant, agent string) (analysis.Doer, error) {
	d, err := a.r.Doer(tenant, agent)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// HasAccount implements runner.Executor: gates run from the server for
// every account.
func (e *Executor) HasAccount(string, string) bool { return true }

// CallbackPath is the path of the callback URI of a webhook step:
// {{armory.callbackUri}} is the public URL followed by it, and the external
// system POSTs to it with /callback appended.
func CallbackPath(pipelineID, target, step string) string {
	group, index, _ := strings.Cut(step, "/")
	return "/api/v1/pipelines/" + url.PathEscape(pipelineID) + "/webhooks/" + url.PathEscape(target) + "/" +
		url.PathEscape(group) + "/" + url.PathEscape(index)
}

// Execute implements runner.Executor.
func (e *Executor) Execute(ctx context.Context, job runner.Job) pipeline.CommandResult {
	c := job.Command
	res := pipeline.CommandResult{CommandID: c.ID}
	if job.Target == nil {
		res.Message = fmt.Sprintf("no plan for target %q", c.Target)
		return res
	}
	switch c.Kind {
	case pipeline.CmdCallWebhook:
		res.Success, res.Message = e.callWebhook(ctx, job)
	case pipeline.CmdRunAnalysis:
		out := e.runAnalysis(ctx, job)
		res.Success, res.Inconclusive, res.Message = out.Verdict == analysis.Pass, out.Verdict == analysis.Inconclusive, out.Message
	default:
		res.Message = fmt.Sprintf("the gate executor does not run %s commands", c.Kind)
	}
	return res
}

func report(ctx context.Context, job runner.Job, typ string, v any) error {
	if job.Report == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return job.Report(ctx, store.Event{Type: typ, Data: b})
}

func (e *Executor) callWebhook(ctx context.Context, job runner.Job) (bool, string) {
	c, t := job.Command, job.Target
	wh := t.Webhooks[c.Webhook]
	if wh == nil {
		return false, fmt.Sprintf("webhook %s is not in the deployment file", c.Webhook)
	}
	vars := webhook.Vars{
		Armory:  t.Vars(e.previewVars(job, map[string]string{"callbackUri": e.o.PublicURL + CallbackPath(c.Pipeline, c.Target, c.Step)})),
		Context: withContext(t.Context, c.Context),
	}
	req, err := webhook.Render(ctx, job.Tenant, wh, vars, e.o.Secrets)
	if err != nil {
		return false, err.Error()
	}
	masked := req.Masked()
	if err := report(ctx, job, progress.EventWebhook, progress.WebhookEvent{Target: c.Target, Step: c.Step, Command: c.ID, Webhook: wh.Name, Request: masked}); err != nil {
		e.o.Log.Warn("report webhook request", "pipeline", c.Pipeline, "step", c.Step, "err", err)
	}
	e.o.Log.Info("calling webhook", "pipeline", c.Pipeline, "target", c.Target, "step", c.Step, "webhook", wh.Name, "request", masked)
	res, err := e.o.Sender.Send(ctx, wh, webhook.Target{Tenant: job.Tenant, Account: c.Account}, req)
	if err != nil {
		return false, err.Error()
	}
	msg := fmt.Sprintf("%s %s answered %d", req.Method, req.Mask(req.URL), res.Status)
	if res.Attempts > 1 {
		msg += fmt.Sprintf(" (attempt %d)", res.Attempts)
	}
	return true, msg
}

func (e *Executor) runAnalysis(ctx context.Context, job runner.Job) analysis.Outcome {
	c, t := job.Command, job.Target
	var step deployfile.AnalysisStep
	if err := json.Unmarshal(c.Params, &step); err != nil {
		return analysis.Outcome{Verdict: analysis.Fail, Message: fmt.Sprintf("analysis parameters do not decode: %v", err)}
	}
	in := analysis.Input{Tenant: job.Tenant, Step: step, Armory: t.Vars(e.previewVars(job, nil)), Context: withContext(t.Context, step.Context),
		DefaultProvider: t.DefaultProvider}
	for _, ref := range step.Queries {
		q := t.Queries[ref.Name]
		if q == nil {
			return analysis.Outcome{Verdict: analysis.Fail, Message: fmt.Sprintf("query %s is not under analysis.queries", ref.Name)}
		}
		in.Queries = append(in.Queries, q)
	}
	return e.o.Analyzer.Run(ctx, in, func(ctx context.Context, j analysis.Judgment) {
		if err := report(ctx, job, progress.EventJudgment, progress.JudgmentEvent{Target: c.Target, Step: c.Step, Command: c.ID, Judgment: j}); err != nil {
			e.o.Log.Warn("report judgment", "pipeline", c.Pipeline, "step", c.Step, "err", err)
		}
	})
}

// previewVars adds to extra the preview URLs of the target's exposed
// Services ({{armory.preview.SERVICE}}).
func (e *Executor) previewVars(job runner.Job, extra map[string]string) map[string]string {
	if e.o.Previews == nil || job.Spec == nil {
		return extra
	}
	ts := job.Spec.Target(job.Command.Target)
	if ts == nil {
		return extra
	}
	out := e.o.Previews.Vars(job.Tenant, job.Command.Pipeline, ts)
	maps.Copy(out, extra)
	return out
}

// withContext is the target's context with a step's over it.
func withContext(target, step map[string]string) map[string]string {
	out := maps.Clone(target)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, step)
	return out
}
