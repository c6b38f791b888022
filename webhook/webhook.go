package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sortie-cd/sortie/deployfile"
	"github.com/sortie-cd/sortie/egress"
	"github.com/sortie-cd/sortie/redact"
	"github.com/sortie-cd/sortie/tracing"
)

// SecretResolver returns the value of a tenant's secret and the hosts it
// may be sent to (nil: any). A secret that is not set is an error
// (SecretNotSetError), never an empty value.
type SecretResolver interface {
	Secret(ctx context.Context, tenant, name string) (value string, allowedHosts []string, err error)
}

// SecretNotSetError is a {{secrets.NAME}} whose secret does not exist.
type SecretNotSetError struct{ Name string }

func (e *SecretNotSetError) Error() string { return "secret " + e.Name + " is not set" }

// NoSecrets resolves no secret: until the server stores secrets, every
// {{secrets.NAME}} fails with a SecretNotSetError.
type NoSecrets struct{}

// Secret implements SecretResolver.
func (NoSecrets) Secret(_ context.Context, _, name string) (string, []string, error) {
	return "", nil, &SecretNotSetError{Name: name}
}

// Doer sends one HTTP request; *http.Client is one.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Relay returns the Doer that sends through the agent of tenant named agent
// (networkMode remoteNetworkAgent).
type Relay interface {
	Doer(tenant, agent string) (Doer, error)
}

// Vars are the non-secret values a webhook is rendered with.
type Vars struct {
	// Armory holds the armory.* (and sortie.*) values by bare name.
	Armory map[string]string
	// Context holds the context.* values: the file's, then the step's.
	Context map[string]string
}

// Header is one rendered request header.
type Header struct{ Key, Value string }

// Request is a rendered webhook call.
type Request struct {
	Method  string
	URL     string
	Headers []Header
	Body    string

	secrets redact.Set   // values to mask, and their encoded forms
	scope   egress.Scope // the secrets it holds, for where it may go
}

// Mask replaces every secret value the request was rendered with in s, and
// the forms an echo of it may take (JSON- or URL-escaped, base64).
func (r *Request) Mask(s string) string { return r.secrets.Mask(s) }

// CarriesSecret says whether a secret value was rendered into the request.
func (r *Request) CarriesSecret() bool { return !r.secrets.Empty() }

// Masked is the request as text, secret values masked: what logs and events
// show.
func (r *Request) Masked() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", r.Method, r.URL)
	for _, h := range r.Headers {
		fmt.Fprintf(&b, "%s: %s\n", h.Key, h.Value)
	}
	if r.Body != "" {
		b.WriteString("\n" + r.Body)
	}
	return r.Mask(b.String())
}

// Render renders wh for tenant. It fails on a variable without a value and
// on a secret that is not set, naming which.
func Render(ctx context.Context, tenant string, wh *deployfile.Webhook, v Vars, secrets SecretResolver) (*Request, error) {
	if secrets == nil {
		secrets = NoSecrets{}
	}
	req := &Request{Method: strings.ToUpper(wh.Method)}
	resolved := map[string]string{}
	render := func(what, text string) (string, error) {
		tags, errs := deployfile.ParseTemplate(text)
		if len(errs) > 0 {
			return "", fmt.Errorf("webhook %s: %s: %w", wh.Name, what, errs[0])
		}
		for _, t := range tags {
			if t.Namespace != deployfile.NSSecrets {
				continue
			}
			if _, ok := resolved[t.Name]; ok {
				continue
			}
			val, hosts, err := secrets.Secret(ctx, tenant, t.Name)
			if err != nil {
				return "", fmt.Errorf("webhook %s: %s: %w", wh.Name, what, err)
			}
			resolved[t.Name] = val
			req.secrets.Add(val)
			req.scope.Add(t.Name, hosts)
		}
		out, err := deployfile.Render(text, deployfile.Variables{
			Armory:  v.Armory,
			Context: v.Context,
			Secret:  func(name string) (string, bool) { s, ok := resolved[name]; return s, ok },
		})
		if err != nil {
			return "", fmt.Errorf("webhook %s: %s: %w", wh.Name, what, err)
		}
		return out, nil
	}
	var err error
	if req.URL, err = render("uriTemplate", wh.URITemplate.Text); err != nil {
		return nil, err
	}
	for _, h := range wh.Headers {
		val, err := render("header "+h.Key, h.Value.Text)
		if err != nil {
			return nil, err
		}
		req.Headers = append(req.Headers, Header{Key: h.Key, Value: val})
	}
	if wh.BodyTemplate != nil {
		if req.Body, err = render("bodyTemplate", wh.BodyTemplate.Inline.Text); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// Network modes.
const (
	ModeDirect = "direct"
	ModeAgent  = "remoteNetworkAgent"
)

// Default backoff bounds.
const (
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = time.Minute
)

// Sender sends rendered webhook calls.
type Sender struct {
	// Direct sends networkMode direct calls; nil means a client of the
	// zero egress.Policy (loopback, link-local and metadata addresses
	// refused) with a one-minute timeout per attempt. Give one of the
	// server's egress.Policy: its Client also enforces where a request's
	// secrets may go.
	Direct Doer
	// Relay sends networkMode remoteNetworkAgent calls through an agent;
	// nil refuses them.
	Relay Relay
	// Backoff is the wait before the first retry, doubled for each next one
	// up to MaxBackoff; zero means DefaultBackoff (DefaultMaxBackoff).
	Backoff, MaxBackoff time.Duration
	// Log: nil discards. Only masked requests are logged.
	Log *slog.Logger
}

// Result is what a call came to.
type Result struct {
	Status   int
	Attempts int
}

// Target says where the call comes from: the tenant and the target's
// account (the default relay agent).
type Target struct {
	Tenant, Account string
}

var defaultClient = (&egress.Policy{}).Client(time.Minute)

// Send sends req as wh says (network mode, retryCount). A 2xx answer is
// success; a 4xx fails at once; connection errors and 5xx are retried
// retryCount times (at most deployfile.MaxRetryCount, whatever the file
// came through) with exponential backoff. Errors are masked.
func (s *Sender) Send(ctx context.Context, wh *deployfile.Webhook, t Target, req *Request) (Result, error) {
	doer, err := s.doer(wh, t)
	if err != nil {
		return Result{}, err
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wait := s.Backoff
	if wait <= 0 {
		wait = DefaultBackoff
	}
	maxWait := s.MaxBackoff
	if maxWait <= 0 {
		maxWait = DefaultMaxBackoff
	}
	retries := min(max(wh.RetryCount, 0), deployfile.MaxRetryCount)
	var res Result
	for {
		res.Attempts++
		status, retry, err := s.traced(ctx, doer, wh.Name, res.Attempts, req)
		res.Status = status
		if err == nil {
			return res, nil
		}
		if !retry || res.Attempts > retries || ctx.Err() != nil {
			if res.Attempts > 1 {
				err = fmt.Errorf("%w (after %d attempts)", err, res.Attempts)
			}
			return res, err
		}
		log.Info("webhook call failed, retrying", "webhook", wh.Name, "attempt", res.Attempts, "retry_in", wait, "err", err)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return res, fmt.Errorf("webhook %s: gave up waiting to retry: %w (last error: %v)", wh.Name, ctx.Err(), err)
		case <-timer.C:
		}
		wait = min(2*wait, maxWait)
	}
}

func (s *Sender) doer(wh *deployfile.Webhook, t Target) (Doer, error) {
	switch wh.NetworkMode {
	case "", ModeDirect:
		if s.Direct != nil {
			return s.Direct, nil
		}
		return defaultClient, nil
	case ModeAgent:
		agent := wh.AgentIdentifier
		if agent == "" {
			agent = t.Account
		}
		if s.Relay == nil {
			return nil, fmt.Errorf("webhook %s: networkMode %s: this server cannot relay calls through agent %s yet", wh.Name, ModeAgent, agent)
		}
		d, err := s.Relay.Doer(t.Tenant, agent)
		if err != nil {
			return nil, fmt.Errorf("webhook %s: relay through agent %s: %w", wh.Name, agent, err)
		}
		return d, nil
	}
	return nil, fmt.Errorf("webhook %s: unknown networkMode %q", wh.Name, wh.NetworkMode)
}

// traced is attempt as a client span of the span in ctx (none when ctx
// holds no recording span), whose traceparent the call carries so that
// its receiver can join the pipeline's trace. The span shows the method,
// the host (masked) and the status: never the path, the query, a header
// or the body, any of which may hold a secret.
func (s *Sender) traced(ctx context.Context, doer Doer, name string, attempt int, req *Request) (int, bool, error) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return s.attempt(ctx, doer, req)
	}
	attrs := []attribute.KeyValue{attribute.String("sortie.webhook", name), attribute.Int("sortie.attempt", attempt),
		attribute.String("http.request.method", req.Method)}
	if u, err := url.Parse(req.URL); err == nil {
		attrs = append(attrs, attribute.String("server.address", req.Mask(u.Hostname())))
	}
	ctx, span := parent.TracerProvider().Tracer(tracing.Instrumentation).Start(ctx, "webhook",
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()
	status, retry, err := s.attempt(ctx, doer, req)
	if status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error()) // masked
	}
	return status, retry, err
}

// attempt makes one call: the status, whether a failure is worth a retry,
// and the failure (masked).
func (s *Sender) attempt(ctx context.Context, doer Doer, req *Request) (int, bool, error) {
	var body io.Reader
	if req.Body != "" {
		body = strings.NewReader(req.Body)
	}
	// The Doer (the egress client, or the relay) checks each hop against
	// what the request holds.
	hr, err := http.NewRequestWithContext(egress.WithScope(ctx, req.scope), req.Method, req.URL, body)
	if err != nil {
		return 0, false, errors.New(req.Mask("bad request: " + err.Error()))
	}
	for _, h := range req.Headers {
		hr.Header.Add(h.Key, h.Value)
	}
	tracing.Inject(ctx, hr.Header)
	resp, err := doer.Do(hr)
	var denied *egress.DeniedError
	if errors.As(err, &denied) {
		// Not worth a retry. Say what was refused without the transport's
		// wrapping; a relay's error says which agent refused.
		what := err.Error()
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			what = denied.Error()
		}
		return 0, false, errors.New(req.Mask(fmt.Sprintf("%s %s: %s", req.Method, req.URL, what)))
	}
	if err != nil {
		return 0, true, errors.New(req.Mask(err.Error()))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, false, nil
	}
	msg := fmt.Sprintf("%s %s answered %s", req.Method, req.URL, resp.Status)
	// The start of the answer says what went wrong, but an endpoint may
	// quote the request back in a form no mask knows: when the request
	// carried a secret, viewers do not get to read it.
	if t := strings.TrimSpace(string(snippet)); t != "" && !req.CarriesSecret() {
		msg += ": " + t
	} else if t != "" {
		msg += " (response body not shown: the request carried a secret)"
	}
	return resp.StatusCode, resp.StatusCode >= 500, errors.New(req.Mask(msg))
}
