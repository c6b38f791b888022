package gate

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"

	"github.com/sortie-cd/sortie/analysis"
	"github.com/sortie-cd/sortie/deployfile"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/runner"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/webhook"
)

// Event types the executor appends to a pipeline's log.
const (
	EventWebhook  = "webhook"
	EventJudgment = "judgment"
)

// Router runs gate commands (webhooks, analysis) on Gates and every other
// command on Cluster, which alone answers HasAccount.
type Router struct {
	Gates, Cluster runner.Executor
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
	return r.Cluster.Execute(ctx, job)
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
	// Log: nil discards. Requests are logged masked.
	Log *slog.Logger
}

// Executor executes gate commands.
type Executor struct {
	o Options

	mu    sync.Mutex
	files map[string]*deployfile.File // by pipeline
}

// New returns an Executor.
func New(o Options) *Executor {
	if o.Secrets == nil {
		o.Secrets = webhook.NoSecrets{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Sender == nil {
		o.Sender = &webhook.Sender{Log: o.Log, Relay: o.Relay}
	}
	if o.Analyzer == nil {
		o.Analyzer = &analysis.Analyzer{Providers: o.Providers, Secrets: o.Secrets, Log: o.Log}
		if o.Relay != nil {
			o.Analyzer.Relay = analysisRelay{o.Relay}
		}
	}
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	return &Executor{o: o, files: map[string]*deployfile.File{}}
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
	f, err := e.file(c.Pipeline, job.Source)
	if err != nil {
		res.Message = err.Error()
		return res
	}
	switch c.Kind {
	case pipeline.CmdCallWebhook:
		res.Success, res.Message = e.callWebhook(ctx, job, f)
	case pipeline.CmdRunAnalysis:
		out := e.runAnalysis(ctx, job, f)
		res.Success, res.Inconclusive, res.Message = out.Verdict == analysis.Pass, out.Verdict == analysis.Inconclusive, out.Message
	default:
		res.Message = fmt.Sprintf("the gate executor does not run %s commands", c.Kind)
	}
	return res
}

// armory are the armory.* values every gate of the command sees.
func armory(job runner.Job) map[string]string {
	c := job.Command
	return map[string]string{
		"applicationName": job.Spec.Application,
		"deploymentId":    c.Pipeline,
		"environmentName": c.Target,
		"accountName":     c.Account,
		"namespace":       c.Namespace,
	}
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

// WebhookEvent is the data of an EventWebhook event.
type WebhookEvent struct {
	Target  string `json:"target"`
	Step    string `json:"step"`
	Command string `json:"command"`
	Webhook string `json:"webhook"`
	// Request is the rendered request, secret values masked.
	Request string `json:"request"`
}

func (e *Executor) callWebhook(ctx context.Context, job runner.Job, f *deployfile.File) (bool, string) {
	c := job.Command
	var wh *deployfile.Webhook
	for _, w := range f.Webhooks {
		if w.Name == c.Webhook {
			wh = w
		}
	}
	if wh == nil {
		return false, fmt.Sprintf("webhook %s is not in the deployment file", c.Webhook)
	}
	vars := webhook.Vars{Armory: armory(job), Context: map[string]string{}}
	vars.Armory["callbackUri"] = e.o.PublicURL + CallbackPath(c.Pipeline, c.Target, c.Step)
	for k, v := range f.Context {
		vars.Context[k] = v
	}
	for k, v := range c.Context {
		vars.Context[k] = v
	}
	req, err := webhook.Render(ctx, job.Tenant, wh, vars, e.o.Secrets)
	if err != nil {
		return false, err.Error()
	}
	masked := req.Masked()
	if err := report(ctx, job, EventWebhook, WebhookEvent{Target: c.Target, Step: c.Step, Command: c.ID, Webhook: wh.Name, Request: masked}); err != nil {
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

// JudgmentEvent is the data of an EventJudgment event.
type JudgmentEvent struct {
	Target  string `json:"target"`
	Step    string `json:"step"`
	Command string `json:"command"`
	analysis.Judgment
}

func (e *Executor) runAnalysis(ctx context.Context, job runner.Job, f *deployfile.File) analysis.Outcome {
	c := job.Command
	var step deployfile.AnalysisStep
	if err := json.Unmarshal(c.Params, &step); err != nil {
		return analysis.Outcome{Verdict: analysis.Fail, Message: fmt.Sprintf("analysis parameters do not decode: %v", err)}
	}
	in := analysis.Input{Tenant: job.Tenant, Step: step, Armory: armory(job), Context: map[string]string{}}
	for k, v := range f.Context {
		in.Context[k] = v
	}
	for k, v := range step.Context {
		in.Context[k] = v
	}
	if f.Analysis != nil {
		in.DefaultProvider = f.Analysis.DefaultMetricProviderName
	}
	for _, ref := range step.Queries {
		var q *deployfile.Query
		if f.Analysis != nil {
			for _, fq := range f.Analysis.Queries {
				if fq.Name == ref.Name {
					q = fq
				}
			}
		}
		if q == nil {
			return analysis.Outcome{Verdict: analysis.Fail, Message: fmt.Sprintf("query %s is not under analysis.queries", ref.Name)}
		}
		in.Queries = append(in.Queries, q)
	}
	return e.o.Analyzer.Run(ctx, in, func(ctx context.Context, j analysis.Judgment) {
		if err := report(ctx, job, EventJudgment, JudgmentEvent{Target: c.Target, Step: c.Step, Command: c.ID, Judgment: j}); err != nil {
			e.o.Log.Warn("report judgment", "pipeline", c.Pipeline, "step", c.Step, "err", err)
		}
	})
}

const maxCachedFiles = 256

// file parses the pipeline's stored deployment, once per pipeline.
func (e *Executor) file(id string, src *store.Source) (*deployfile.File, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f, ok := e.files[id]; ok {
		return f, nil
	}
	f, _, err := runner.Load(runner.StartRequest{FileName: src.FileName, File: src.File, Manifests: src.Manifests, Context: src.Context, Application: src.Application})
	if err != nil {
		return nil, fmt.Errorf("the stored deployment no longer loads: %w", err)
	}
	if len(e.files) >= maxCachedFiles {
		clear(e.files)
	}
	e.files[id] = f
	return f, nil
}
