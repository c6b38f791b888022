package preview

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/plan"
	"github.com/sortie-cd/sortie/store"
)

// Path is where preview URLs live under the server's public URL.
const Path = "/preview/"

// Limits of a proxied preview request.
const (
	MaxRequestBody = 1 << 20
	Timeout        = time.Minute
)

// DefaultTTL is how long a preview URL lives when its step sets no ttl.
const DefaultTTL = 5 * time.Minute

// Links mints and checks preview URLs.
type Links struct {
	key  []byte
	base string
}

// NewLinks returns the Links of a server whose public URL is publicURL,
// signing with key (at least 32 bytes, kept by the server).
func NewLinks(key []byte, publicURL string) (*Links, error) {
	if len(key) < 32 {
		return nil, errors.New("preview: the key must be at least 32 bytes")
	}
	return &Links{key: slices.Clone(key), base: strings.TrimRight(publicURL, "/")}, nil
}

// Ref is what a preview URL names.
type Ref struct {
	Tenant, Pipeline, Target, Service string
}

// URL is the preview URL of ref.
func (l *Links) URL(ref Ref) string {
	return l.base + Path + l.token(ref) + "/"
}

func (l *Links) token(ref Ref) string {
	payload := strings.Join([]string{ref.Tenant, ref.Pipeline, ref.Target, ref.Service}, "\x00")
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(l.mac(payload))
}

func (l *Links) mac(payload string) []byte {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte("sortie preview v1\x00" + payload))
	return m.Sum(nil)[:20]
}

// parse checks a token and returns what it names.
func (l *Links) parse(token string) (Ref, bool) {
	p, sig, ok := strings.Cut(token, ".")
	if !ok {
		return Ref{}, false
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p)
	got, err2 := enc.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(got, l.mac(string(payload))) {
		return Ref{}, false
	}
	f := strings.Split(string(payload), "\x00")
	if len(f) != 4 {
		return Ref{}, false
	}
	return Ref{Tenant: f[0], Pipeline: f[1], Target: f[2], Service: f[3]}, true
}

// Vars are the {{armory.preview.SERVICE}} values of a target: the URL of
// every Service its exposeServices steps name.
func (l *Links) Vars(tenant, pipelineID string, ts *pipeline.TargetSpec) map[string]string {
	out := map[string]string{}
	for _, s := range exposeSteps(ts) {
		for _, svc := range s.Services {
			out["preview."+svc] = l.URL(Ref{Tenant: tenant, Pipeline: pipelineID, Target: ts.Name, Service: svc})
		}
	}
	return out
}

// Step is an exposeServices step's parameters.
type Step struct {
	Services []string `json:"services"`
	TTL      *struct {
		Value time.Duration `json:"value"`
	} `json:"ttl,omitempty"`
}

// Lifetime is how long the step's URLs live.
func (s Step) Lifetime() time.Duration {
	if s.TTL == nil || s.TTL.Value <= 0 {
		return DefaultTTL
	}
	return s.TTL.Value
}

func decodeStep(params json.RawMessage) (Step, bool) {
	var s Step
	return s, json.Unmarshal(params, &s) == nil
}

func exposeSteps(ts *pipeline.TargetSpec) []Step {
	var out []Step
	for _, list := range [][]pipeline.Step{ts.BeforeDeployment, ts.AfterDeployment, canarySteps(ts), blueGreenSteps(ts)} {
		for _, st := range list {
			if st.ExposeServices != nil {
				if s, ok := decodeStep(st.ExposeServices.Params); ok {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

func canarySteps(ts *pipeline.TargetSpec) []pipeline.Step {
	if ts.Strategy.Canary == nil {
		return nil
	}
	return ts.Strategy.Canary.Steps
}

func blueGreenSteps(ts *pipeline.TargetSpec) []pipeline.Step {
	if bg := ts.Strategy.BlueGreen; bg != nil {
		return append(slices.Clone(bg.RedirectTrafficAfter), bg.ShutDownOldVersionAfter...)
	}
	return nil
}

// Doer sends a request into a cluster: an agent's relay, or the
// in-process executor's service proxy.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Handler serves Path.
type Handler struct {
	Links *Links
	// Pipeline reads a pipeline of a tenant.
	Pipeline func(ctx context.Context, tenant, id string) (*store.Pipeline, error)
	// Doer returns what reaches account's cluster.
	Doer func(tenant, account string) (Doer, error)
	// ServiceURL is the URL a Doer takes for a Service and a path.
	ServiceURL func(namespace, service, path string) string
	// Now: nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// hopHeaders are not forwarded either way; credentials of the caller
// (Sortie's or anyone's) never reach the previewed Service.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer",
	"Transfer-Encoding", "Upgrade", "Cookie", "Authorization"}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, Path)
	token, path, _ := strings.Cut(rest, "/")
	ref, ok := h.Links.parse(token)
	if !ok {
		http.Error(w, "no such preview", http.StatusNotFound)
		return
	}
	p, err := h.Pipeline(r.Context(), ref.Tenant, ref.Pipeline)
	if err != nil {
		http.Error(w, "no such preview", http.StatusNotFound)
		return
	}
	now := time.Now()
	if h.Now != nil {
		now = h.Now()
	}
	expiry, exposed := exposedUntil(p, ref)
	switch {
	case !exposed:
		http.Error(w, "this Service is not exposed (yet): its exposeServices step has not succeeded", http.StatusNotFound)
		return
	case !now.Before(expiry):
		http.Error(w, fmt.Sprintf("this preview expired at %s", expiry.UTC().Format(time.RFC3339)), http.StatusGone)
		return
	}
	pt, err := targetPlan(p, ref.Target)
	if err != nil {
		h.log().Warn("preview: no plan", "pipeline", ref.Pipeline, "target", ref.Target, "err", err)
		http.Error(w, "the preview's target cannot be reached", http.StatusBadGateway)
		return
	}
	doer, err := h.Doer(ref.Tenant, pt.Account)
	if err != nil {
		http.Error(w, "the preview's cluster cannot be reached: "+err.Error(), http.StatusBadGateway)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBody+1))
	if err != nil || len(body) > MaxRequestBody {
		http.Error(w, "the request body is over 1 MiB", http.StatusRequestEntityTooLarge)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), Timeout)
	defer cancel()
	u := h.ServiceURL(pt.Namespace, ref.Service, "/"+path)
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, u, bytes.NewReader(body))
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	for k, vs := range r.Header {
		if !slices.ContainsFunc(hopHeaders, func(h string) bool { return strings.EqualFold(h, k) }) {
			out.Header[k] = vs
		}
	}
	resp, err := doer.Do(out)
	if err != nil {
		h.log().Info("preview: request failed", "pipeline", ref.Pipeline, "target", ref.Target, "service", ref.Service, "err", err)
		http.Error(w, "the Service did not answer: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		if !slices.ContainsFunc(hopHeaders, func(h string) bool { return strings.EqualFold(h, k) }) {
			w.Header()[k] = vs
		}
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

// exposedUntil is when ref's URL stops working: the end of the latest
// succeeded exposeServices step of the target that names the Service, plus
// its ttl; false when no such step has succeeded.
func exposedUntil(p *store.Pipeline, ref Ref) (time.Time, bool) {
	ts := p.State.Spec.Target(ref.Target)
	var state *pipeline.TargetState
	for i := range p.State.Targets {
		if p.State.Targets[i].Name == ref.Target {
			state = &p.State.Targets[i]
		}
	}
	if ts == nil || state == nil {
		return time.Time{}, false
	}
	var until time.Time
	found := false
	for _, st := range state.Steps {
		if st.Kind != pipeline.KindExposeServices || st.Status != pipeline.StatusSucceeded {
			continue
		}
		spec := p.State.Spec.StepOf(ref.Target, st)
		if spec == nil || spec.ExposeServices == nil {
			continue
		}
		s, ok := decodeStep(spec.ExposeServices.Params)
		if !ok || !slices.Contains(s.Services, ref.Service) {
			continue
		}
		if end := st.EndedAt.Add(s.Lifetime()); !found || end.After(until) {
			until, found = end, true
		}
	}
	return until, found
}

func targetPlan(p *store.Pipeline, target string) (*plan.Target, error) {
	var pl plan.Plan
	if err := json.Unmarshal(p.Source.Plan, &pl); err != nil {
		return nil, err
	}
	t := pl.Target(target)
	if t == nil {
		return nil, fmt.Errorf("target %q is not in the plan", target)
	}
	return t, nil
}
