package analysis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/egress"
	"github.com/sortie-cd/sortie/redact"
)

// SecretResolver returns the value of a tenant's secret and the hosts it
// may be sent to (nil: any); a secret that is not set is an error, never an
// empty value.
type SecretResolver interface {
	Secret(ctx context.Context, tenant, name string) (value string, allowedHosts []string, err error)
}

// Doer sends one HTTP request; *http.Client is one.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Relay returns the Doer that sends through an agent of the tenant.
type Relay interface {
	Doer(tenant, agent string) (Doer, error)
}

// Query is one query to send: the rendered text and the window it judges.
type Query struct {
	Text       string
	Start, End time.Time
}

// Provider answers one query with one number.
type Provider interface {
	Query(ctx context.Context, q Query) (float64, error)
}

// ErrNoData: the query matched nothing (or only nulls).
var ErrNoData = errors.New("the query returned no data")

// UnreachableError is a provider that could not be reached or failed on
// its side (connection error, 5xx): worth trying again.
type UnreachableError struct{ Err error }

func (e *UnreachableError) Error() string { return "provider unreachable: " + e.Err.Error() }
func (e *UnreachableError) Unwrap() error { return e.Err }

// Env is what Open needs besides the Config.
type Env struct {
	Tenant  string
	Secrets SecretResolver
	// Direct sends from the server; nil means a client of the zero
	// egress.Policy (loopback, link-local and metadata addresses refused)
	// with a 30 s timeout. Give one of the server's egress.Policy: its
	// Client also enforces where the credentials may go.
	Direct Doer
	// Relay sends through an agent; nil refuses providers that name one.
	Relay Relay
}

var defaultClient = (&egress.Policy{}).Client(30 * time.Second)

// Open returns the Provider c describes. Secrets are resolved now, so a
// secret that is not set fails here with its name.
func Open(ctx context.Context, c Config, env Env) (Provider, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("metric provider %s: %w", c.Name, err)
	}
	doer := env.Direct
	if doer == nil {
		doer = defaultClient
	}
	secrets := masker{&redact.Set{}, &egress.Scope{}} // every value resolved, and the forms it is sent in
	secret := func(name string) (string, error) {
		if env.Secrets == nil {
			return "", fmt.Errorf("secret %s is not set", name)
		}
		v, hosts, err := env.Secrets.Secret(ctx, env.Tenant, name)
		if err != nil {
			return "", fmt.Errorf("metric provider %s: %w", c.Name, err)
		}
		secrets.add(v)
		secrets.scope.Add(name, hosts)
		return v, nil
	}
	h := http.Header{}
	switch c.Type {
	case TypePrometheus:
		if c.AgentIdentifier != "" {
			if env.Relay == nil {
				return nil, fmt.Errorf("metric provider %s: this server cannot relay queries through agent %s yet", c.Name, c.AgentIdentifier)
			}
			d, err := env.Relay.Doer(env.Tenant, c.AgentIdentifier)
			if err != nil {
				return nil, fmt.Errorf("metric provider %s: relay through agent %s: %w", c.Name, c.AgentIdentifier, err)
			}
			doer = d
		}
		if a := c.Auth; a != nil {
			switch a.Type {
			case AuthBasic:
				user := a.Username
				if a.UsernameSecret != "" {
					v, err := secret(a.UsernameSecret)
					if err != nil {
						return nil, err
					}
					user = v
				}
				pw, err := secret(a.PasswordSecret)
				if err != nil {
					return nil, err
				}
				r := &http.Request{Header: http.Header{}}
				r.SetBasicAuth(user, pw)
				h.Set("Authorization", r.Header.Get("Authorization"))
				// What the header carries: a provider quoting it back
				// must not get the pair into a message.
				secrets.add(strings.TrimPrefix(r.Header.Get("Authorization"), "Basic "))
			case AuthBearer:
				tok, err := secret(a.TokenSecret)
				if err != nil {
					return nil, err
				}
				h.Set("Authorization", "Bearer "+tok)
			}
		}
		return maskedProvider{&prometheus{base: strings.TrimRight(c.URL, "/"), doer: doer, header: h, secrets: secrets}, secrets}, nil
	case TypeDatadog:
		api, err := secret(c.APIKeySecret)
		if err != nil {
			return nil, err
		}
		app, err := secret(c.ApplicationKeySecret)
		if err != nil {
			return nil, err
		}
		h.Set("DD-API-KEY", api)
		h.Set("DD-APPLICATION-KEY", app)
		base := c.URL
		if base == "" {
			base = DefaultDatadogURL
		}
		return maskedProvider{&datadog{base: strings.TrimRight(base, "/"), doer: doer, header: h, secrets: secrets}, secrets}, nil
	case TypeNewRelic:
		key, err := secret(c.APIKeySecret)
		if err != nil {
			return nil, err
		}
		h.Set("API-Key", key)
		endpoint := c.URL
		if endpoint == "" {
			endpoint = DefaultNewRelicURL
		}
		return maskedProvider{&newRelic{endpoint: endpoint, account: c.AccountID, doer: doer, header: h, secrets: secrets}, secrets}, nil
	}
	return nil, fmt.Errorf("metric provider %s: unknown type %q", c.Name, c.Type)
}

// masker holds the secret values a provider sends (and their encoded
// forms): whatever the provider answers may quote the request (a proxy's
// error page, an echoing endpoint), and what it answers ends up in
// judgments, events and logs. scope names those secrets, for where the
// requests may go (egress.Scope).
type masker struct {
	set   *redact.Set
	scope *egress.Scope
}

// add records v and its encoded forms.
func (m masker) add(v string) { m.set.Add(v) }

// mask replaces every secret value in s, and its encoded forms.
func (m masker) mask(s string) string { return m.set.Mask(s) }

// err is e with the secret values masked; e itself when it holds none.
func (m masker) err(e error) error {
	if e == nil || m.mask(e.Error()) == e.Error() {
		return e
	}
	return errors.New(m.mask(e.Error()))
}

// maskedProvider masks the secret values in p's errors, whatever put them
// there. UnreachableError is left as it is (send masks it) so that callers
// still tell it apart.
type maskedProvider struct {
	p       Provider
	secrets masker
}

func (m maskedProvider) Query(ctx context.Context, q Query) (float64, error) {
	v, err := m.p.Query(ctx, q)
	if _, ok := err.(*UnreachableError); ok {
		return v, err
	}
	return v, m.secrets.err(err)
}

// send makes one request and decodes a JSON answer into v. Transport
// errors and 5xx are UnreachableError; other non-2xx answers are errors
// carrying what the provider said (decoded into v first, when it is JSON),
// secret values masked.
func send(ctx context.Context, doer Doer, method, u string, header http.Header, body []byte, v any, secrets masker) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(egress.WithScope(ctx, *secrets.scope), method, u, rd)
	if err != nil {
		return err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := doer.Do(req)
	var denied *egress.DeniedError
	if errors.As(err, &denied) {
		return fmt.Errorf("%s: %w", req.URL.Host, denied) // no retry makes it pass
	}
	if err != nil {
		return &UnreachableError{Err: secrets.err(err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return &UnreachableError{Err: secrets.err(err)}
	}
	if resp.StatusCode >= 500 {
		return &UnreachableError{Err: fmt.Errorf("%s answered %s", req.URL.Host, resp.Status)}
	}
	jsonErr := json.Unmarshal(b, v)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s answered %s: %s", req.URL.Host, resp.Status, snippet(secrets.mask(string(b))))
	}
	if jsonErr != nil {
		return fmt.Errorf("%s answered something that is not the expected JSON: %w", req.URL.Host, jsonErr)
	}
	return nil
}

func snippet(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// prometheus runs instant queries at the window's end.
type prometheus struct {
	base    string
	doer    Doer
	header  http.Header
	secrets masker
}

type promAnswer struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

func (p *prometheus) Query(ctx context.Context, q Query) (float64, error) {
	v := url.Values{"query": {q.Text}, "time": {strconv.FormatFloat(float64(q.End.UnixMilli())/1000, 'f', 3, 64)}}
	var a promAnswer
	if err := send(ctx, p.doer, http.MethodGet, p.base+"/api/v1/query?"+v.Encode(), p.header, nil, &a, p.secrets); err != nil {
		if a.Error != "" {
			return 0, fmt.Errorf("prometheus: %s: %s", a.ErrorType, a.Error)
		}
		return 0, err
	}
	if a.Status != "success" {
		return 0, fmt.Errorf("prometheus: %s: %s", a.ErrorType, a.Error)
	}
	switch a.Data.ResultType {
	case "scalar":
		var s [2]any
		if err := json.Unmarshal(a.Data.Result, &s); err != nil {
			return 0, fmt.Errorf("prometheus: scalar result: %w", err)
		}
		return promNumber(s[1])
	case "vector":
		var vec []struct {
			Value [2]any `json:"value"`
		}
		if err := json.Unmarshal(a.Data.Result, &vec); err != nil {
			return 0, fmt.Errorf("prometheus: vector result: %w", err)
		}
		switch len(vec) {
		case 0:
			return 0, ErrNoData
		case 1:
			return promNumber(vec[0].Value[1])
		}
		return 0, fmt.Errorf("prometheus: the query returned %d series; aggregate it to one (sum, avg, max)", len(vec))
	}
	return 0, fmt.Errorf("prometheus: a %s result is not one number; write an instant query", a.Data.ResultType)
}

// promNumber parses a sample value: a string such as "0.5", "NaN", "+Inf".
func promNumber(v any) (float64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("prometheus: sample value %v is not a string", v)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("prometheus: sample value %q: %w", s, err)
	}
	return f, nil
}

// datadog queries timeseries points (API v1 /api/v1/query) over the window
// and answers the mean of the one series' non-null points.
type datadog struct {
	base    string
	doer    Doer
	header  http.Header
	secrets masker
}

type ddAnswer struct {
	Status string   `json:"status"`
	Error  string   `json:"error"`
	Errors []string `json:"errors"`
	Series []struct {
		Metric    string        `json:"metric"`
		Pointlist [][2]*float64 `json:"pointlist"`
	} `json:"series"`
}

func (d *datadog) Query(ctx context.Context, q Query) (float64, error) {
	v := url.Values{"from": {strconv.FormatInt(q.Start.Unix(), 10)}, "to": {strconv.FormatInt(q.End.Unix(), 10)}, "query": {q.Text}}
	var a ddAnswer
	if err := send(ctx, d.doer, http.MethodGet, d.base+"/api/v1/query?"+v.Encode(), d.header, nil, &a, d.secrets); err != nil {
		if msg := ddError(a); msg != "" {
			return 0, fmt.Errorf("datadog: %s", msg)
		}
		return 0, err
	}
	if a.Status == "error" {
		return 0, fmt.Errorf("datadog: %s", ddError(a))
	}
	switch len(a.Series) {
	case 0:
		return 0, ErrNoData
	case 1:
	default:
		return 0, fmt.Errorf("datadog: the query returned %d series; aggregate it to one", len(a.Series))
	}
	sum, n := 0.0, 0
	for _, p := range a.Series[0].Pointlist {
		if p[1] != nil {
			sum += *p[1]
			n++
		}
	}
	if n == 0 {
		return 0, ErrNoData
	}
	return sum / float64(n), nil
}

func ddError(a ddAnswer) string {
	if a.Error != "" {
		return a.Error
	}
	return strings.Join(a.Errors, "; ")
}

// newRelic runs NRQL through NerdGraph and answers the one number of the
// one result row.
type newRelic struct {
	endpoint string
	account  int64
	doer     Doer
	header   http.Header
	secrets  masker
}

const nerdGraphQuery = `query($accountId: Int!, $nrql: Nrql!) { actor { account(id: $accountId) { nrql(query: $nrql) { results } } } }`

type nrAnswer struct {
	Data struct {
		Actor struct {
			Account struct {
				NRQL *struct {
					Results []map[string]any `json:"results"`
				} `json:"nrql"`
			} `json:"account"`
		} `json:"actor"`
	} `json:"data"`
	Errors []struct {
		Message string `json:"message"`
	} `json:"errors"`
}

// nrMetadata are result keys that are not the measured value.
var nrMetadata = map[string]bool{"beginTimeSeconds": true, "endTimeSeconds": true, "facet": true, "timestamp": true}

func (n *newRelic) Query(ctx context.Context, q Query) (float64, error) {
	body, err := json.Marshal(map[string]any{"query": nerdGraphQuery, "variables": map[string]any{"accountId": n.account, "nrql": q.Text}})
	if err != nil {
		return 0, err
	}
	var a nrAnswer
	err = send(ctx, n.doer, http.MethodPost, n.endpoint, n.header, body, &a, n.secrets)
	if len(a.Errors) > 0 {
		var msgs []string
		for _, e := range a.Errors {
			msgs = append(msgs, e.Message)
		}
		return 0, fmt.Errorf("new relic: %s", strings.Join(msgs, "; "))
	}
	if err != nil {
		return 0, err
	}
	if a.Data.Actor.Account.NRQL == nil || len(a.Data.Actor.Account.NRQL.Results) == 0 {
		return 0, ErrNoData
	}
	rows := a.Data.Actor.Account.NRQL.Results
	if len(rows) > 1 {
		return 0, fmt.Errorf("new relic: the query returned %d rows; make it return one (no FACET or TIMESERIES)", len(rows))
	}
	var found []string
	value := math.NaN()
	for k, v := range rows[0] {
		if nrMetadata[k] {
			continue
		}
		found = append(found, k)
		switch x := v.(type) {
		case float64:
			value = x
		case nil:
			value = math.NaN()
		default:
			return 0, fmt.Errorf("new relic: result %s is %v, not a number", k, v)
		}
	}
	switch len(found) {
	case 0:
		return 0, ErrNoData
	case 1:
		return value, nil
	}
	return 0, fmt.Errorf("new relic: the result row has %d values (%s); select one", len(found), strings.Join(found, ", "))
}
