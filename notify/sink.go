package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/sortie-cd/sortie/egress"
	"github.com/sortie-cd/sortie/redact"
)

// Sink types.
const (
	SinkSlack       = "slack"
	SinkTeams       = "teams"
	SinkWebhook     = "webhook"
	SinkCloudEvents = "cloudevents"
)

// CloudEvents content modes.
const (
	ModeBinary     = "binary"
	ModeStructured = "structured"
)

// DefaultSlackAPI is Slack's Web API, where a bot token posts.
const DefaultSlackAPI = "https://slack.com/api"

// Sink is a subscription's sink settings, the JSON the store keeps. Every
// value that grants access is a secret's name (…Secret), never the value.
type Sink struct {
	// URLSecret names the secret holding the URL to post to: a Slack or
	// Teams incoming webhook (their URLs embed a token), or any sink's URL.
	URLSecret string `json:"urlSecret,omitempty"`
	// URL is a webhook or CloudEvents sink's URL when it holds no token.
	URL string `json:"url,omitempty"`
	// TokenSecret and Channel: a Slack bot token posting with
	// chat.postMessage to Channel. APIURL replaces DefaultSlackAPI.
	TokenSecret string `json:"tokenSecret,omitempty"`
	Channel     string `json:"channel,omitempty"`
	APIURL      string `json:"apiUrl,omitempty"`
	// AuthSecret names a secret sent as the Authorization header (webhook
	// and CloudEvents).
	AuthSecret string `json:"authSecret,omitempty"`
	// Mode is the CloudEvents content mode: binary (default) or structured.
	Mode string `json:"mode,omitempty"`
}

// ParseSink decodes and checks a sink's settings for its type, every
// problem in words for the person who wrote them.
func ParseSink(typ string, raw json.RawMessage) (Sink, error) {
	var s Sink
	if len(raw) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil {
			return s, fmt.Errorf("sink settings: %w", err)
		}
	}
	if s.URL != "" {
		if err := checkURL(s.URL); err != nil {
			return s, fmt.Errorf("url: %w", err)
		}
		// Settings are shown to every reader of the tenant.
		if strings.ContainsAny(s.URL, "?#") {
			return s, errors.New("url: a query may carry a token, and settings are shown to readers: store the URL as a secret and name it in urlSecret")
		}
	}
	if s.APIURL != "" {
		if err := checkURL(s.APIURL); err != nil {
			return s, fmt.Errorf("apiUrl: %w", err)
		}
	}
	switch typ {
	case SinkSlack:
		switch {
		case s.URL != "":
			return s, errors.New("a Slack webhook URL embeds its token: store it as a secret and name it in urlSecret")
		case s.URLSecret != "" && s.TokenSecret != "":
			return s, errors.New("a Slack sink takes urlSecret (incoming webhook) or tokenSecret and channel (bot token), not both")
		case s.TokenSecret != "" && s.Channel == "":
			return s, errors.New("a Slack bot token needs the channel to post to")
		case s.URLSecret == "" && s.TokenSecret == "":
			return s, errors.New("a Slack sink needs urlSecret (incoming webhook) or tokenSecret and channel (bot token)")
		}
	case SinkTeams:
		if s.URL != "" {
			return s, errors.New("a Teams webhook URL embeds its token: store it as a secret and name it in urlSecret")
		}
		if s.URLSecret == "" {
			return s, errors.New("a Teams sink needs urlSecret, the secret holding its incoming webhook URL")
		}
	case SinkWebhook, SinkCloudEvents:
		if (s.URL == "") == (s.URLSecret == "") {
			return s, fmt.Errorf("a %s sink needs url or urlSecret (one of them)", typ)
		}
		if typ == SinkCloudEvents && s.Mode != "" && s.Mode != ModeBinary && s.Mode != ModeStructured {
			return s, fmt.Errorf("mode %q: use %s or %s", s.Mode, ModeBinary, ModeStructured)
		}
	default:
		return s, fmt.Errorf("sink type %q: use %s, %s, %s or %s", typ, SinkSlack, SinkTeams, SinkWebhook, SinkCloudEvents)
	}
	if typ != SinkSlack && (s.TokenSecret != "" || s.Channel != "" || s.APIURL != "") {
		return s, fmt.Errorf("tokenSecret, channel and apiUrl are for Slack sinks, not %s", typ)
	}
	if (typ == SinkSlack || typ == SinkTeams) && s.AuthSecret != "" {
		return s, fmt.Errorf("authSecret is for webhook and CloudEvents sinks, not %s", typ)
	}
	if typ != SinkCloudEvents && s.Mode != "" {
		return s, fmt.Errorf("mode is for CloudEvents sinks, not %s", typ)
	}
	return s, nil
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http or https URL", raw)
	}
	if u.User != nil {
		return errors.New("credentials in a URL are not kept in clear: store the URL as a secret and name it in urlSecret")
	}
	return nil
}

// SecretResolver returns a tenant's secret's value and the hosts it may be
// sent to (nil: any; package secrets).
type SecretResolver interface {
	Secret(ctx context.Context, tenant, name string) (string, []string, error)
}

// Doer sends one HTTP request; *http.Client is one.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// request is one HTTP call a sink makes for a message, secrets resolved;
// masks holds their values.
type request struct {
	url     string
	headers http.Header
	body    []byte
	masks   *redact.Set
	slack   bool // Slack's Web API answers 200 with "ok": false
	// scope holds the secrets the call carries, for the egress checks
	// made at each hop (no cross-host redirect, restricted hosts).
	scope egress.Scope
}

// render builds the call sink s of type typ makes for m.
func render(ctx context.Context, typ string, s Sink, m Message, tenant string, secrets SecretResolver) (*request, error) {
	req := &request{headers: http.Header{}, masks: &redact.Set{}}
	secret := func(name string) (string, error) {
		v, hosts, err := secrets.Secret(ctx, tenant, name)
		if err != nil {
			return "", fmt.Errorf("secret %s: %w", name, err)
		}
		req.masks.Add(v)
		req.scope.Add(name, hosts)
		return v, nil
	}
	req.url = s.URL
	if s.URLSecret != "" {
		v, err := secret(s.URLSecret)
		if err != nil {
			return nil, err
		}
		if err := checkURL(v); err != nil {
			return nil, fmt.Errorf("secret %s does not hold an http or https URL", s.URLSecret)
		}
		req.url = v
	}
	if s.AuthSecret != "" {
		v, err := secret(s.AuthSecret)
		if err != nil {
			return nil, err
		}
		req.headers.Set("Authorization", v)
	}
	req.headers.Set("Content-Type", "application/json")
	var body any
	switch typ {
	case SinkSlack:
		msg := slackMessage(m)
		if s.TokenSecret != "" {
			tok, err := secret(s.TokenSecret)
			if err != nil {
				return nil, err
			}
			api := s.APIURL
			if api == "" {
				api = DefaultSlackAPI
			}
			req.url = strings.TrimSuffix(api, "/") + "/chat.postMessage"
			req.headers.Set("Authorization", "Bearer "+tok)
			req.headers.Set("Content-Type", "application/json; charset=utf-8")
			msg["channel"] = s.Channel
			req.slack = true
		}
		body = msg
	case SinkTeams:
		body = teamsMessage(m)
	case SinkWebhook:
		body = m
	case SinkCloudEvents:
		ce := cloudEvent(m)
		if s.Mode == ModeStructured {
			req.headers.Set("Content-Type", "application/cloudevents+json")
			body = ce
		} else {
			for k, v := range ce {
				if k != "data" && k != "datacontenttype" {
					req.headers.Set("ce-"+k, fmt.Sprint(v))
				}
			}
			body = m
		}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req.body = b
	return req, nil
}

// slackMessage is a message in Slack's format: text for notifications
// and blocks with the links as buttons.
func slackMessage(m Message) map[string]any {
	blocks := []any{map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": m.Text}}}
	var buttons []any
	button := func(text, url, style string) {
		b := map[string]any{"type": "button", "text": map[string]any{"type": "plain_text", "text": text}, "url": url}
		if style != "" {
			b["style"] = style
		}
		buttons = append(buttons, b)
	}
	if m.ApproveURL != "" {
		button("Approve", m.ApproveURL, "primary")
	}
	if m.RollbackURL != "" {
		button("Roll back", m.RollbackURL, "danger")
	}
	if m.URL != "" {
		button("Open", m.URL, "")
	}
	if len(buttons) > 0 {
		blocks = append(blocks, map[string]any{"type": "actions", "elements": buttons})
	}
	return map[string]any{"text": m.Text, "blocks": blocks}
}

// teamsMessage is an Adaptive Card, as Teams' incoming webhooks and
// workflows take it.
func teamsMessage(m Message) map[string]any {
	var actions []any
	open := func(title, url string) {
		actions = append(actions, map[string]any{"type": "Action.OpenUrl", "title": title, "url": url})
	}
	if m.ApproveURL != "" {
		open("Approve", m.ApproveURL)
	}
	if m.RollbackURL != "" {
		open("Roll back", m.RollbackURL)
	}
	if m.URL != "" {
		open("Open", m.URL)
	}
	card := map[string]any{
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"type":    "AdaptiveCard", "version": "1.4",
		"body": []any{map[string]any{"type": "TextBlock", "text": m.Text, "wrap": true}},
	}
	if len(actions) > 0 {
		card["actions"] = actions
	}
	return map[string]any{"type": "message", "attachments": []any{map[string]any{
		"contentType": "application/vnd.microsoft.card.adaptive", "content": card}}}
}

// cloudEvent is m as a CloudEvent (spec 1.0), data being the message.
func cloudEvent(m Message) map[string]any {
	source := "/sortie/" + m.Tenant
	if m.Application != "" {
		source += "/" + m.Application
	}
	ce := map[string]any{
		"specversion": "1.0", "id": m.ID, "source": source,
		"type": "dev.sortie.pipeline." + m.Event, "time": m.At.UTC().Format("2006-01-02T15:04:05.999999999Z07:00"),
		"datacontenttype": "application/json", "data": m,
	}
	if m.Pipeline != "" {
		ce["subject"] = m.Pipeline
	}
	return ce
}

// deliveryError is a failed attempt: why (secrets masked) and whether to
// try again.
type deliveryError struct {
	msg   string
	retry bool
}

func (e *deliveryError) Error() string { return e.msg }

// send makes the call once. Every error is masked with the request's
// secrets, its URL included.
func send(ctx context.Context, doer Doer, req *request) error {
	hr, err := http.NewRequestWithContext(egress.WithScope(ctx, req.scope), http.MethodPost, req.url, bytes.NewReader(req.body))
	if err != nil {
		return &deliveryError{msg: req.masks.Mask("bad request: " + err.Error())}
	}
	if err := req.scope.Check(hr.URL); err != nil {
		return &deliveryError{msg: req.masks.Mask(err.Error())} // the secret's owner decided: no retry
	}
	hr.Header = req.headers.Clone()
	resp, err := doer.Do(hr)
	if err != nil {
		return &deliveryError{msg: req.masks.Mask(err.Error()), retry: true}
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	where := req.masks.Mask(redactQuery(req.url))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		retry := resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout
		msg := fmt.Sprintf("POST %s answered %s", where, resp.Status)
		if t := strings.TrimSpace(string(snippet)); t != "" {
			msg += ": " + t
		}
		return &deliveryError{msg: req.masks.Mask(msg), retry: retry}
	}
	if req.slack {
		var ans struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}
		if json.Unmarshal(snippet, &ans) == nil && !ans.OK {
			return &deliveryError{msg: req.masks.Mask("Slack refused the message: " + ans.Error), retry: ans.Error == "ratelimited"}
		}
	}
	return nil
}

// redactQuery drops a URL's query, where tokens hide when they are not
// secrets of their own.
func redactQuery(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.RawQuery != "" {
		u.RawQuery = redact.Text
		return u.String()
	}
	return raw
}
