package notify

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Link is what an action link is bound to: one pipeline of one tenant, one
// target and step, one action, until Expires; Nonce is what the store
// records when it is used, so it is used once.
type Link struct {
	Tenant   string    `json:"t"`
	Pipeline string    `json:"p"`
	Target   string    `json:"g"`
	Step     string    `json:"s,omitempty"`
	Action   string    `json:"a"`
	Expires  time.Time `json:"e"`
	Nonce    string    `json:"n"`
}

// Errors Verify returns.
var (
	ErrLinkInvalid = errors.New("this link is not one Sortie signed, or it was changed")
	ErrLinkExpired = errors.New("this link has expired")
)

// LinkPath is where the console serves an action link: LinkPath + token.
const LinkPath = "/links/"

// DefaultLinkTTL is how long an action link is good for.
const DefaultLinkTTL = 24 * time.Hour

// Links signs and verifies action links with HMAC-SHA256 under a server
// key (the secrets service derives it from the master key).
type Links struct {
	key  []byte
	base string
	ttl  time.Duration
}

// NewLinks returns a signer: key is the server's link key, base the
// server's public URL (links are base + LinkPath + token), ttl how long a
// link is good for (0: DefaultLinkTTL).
func NewLinks(key []byte, base string, ttl time.Duration) *Links {
	if ttl <= 0 {
		ttl = DefaultLinkTTL
	}
	return &Links{key: key, base: strings.TrimSuffix(base, "/"), ttl: ttl}
}

// New returns the URL of a new link for action on target and step of a
// pipeline, expiring ttl after now.
func (l *Links) New(tenant, pipelineID, target, step, action string, now time.Time) string {
	link := Link{Tenant: tenant, Pipeline: pipelineID, Target: target, Step: step, Action: action,
		Expires: now.Add(l.ttl).UTC().Truncate(time.Second), Nonce: rand.Text()}
	return l.base + LinkPath + l.Sign(link)
}

// Sign returns link's token: its JSON and its MAC, both base64url.
func (l *Links) Sign(link Link) string {
	b, _ := json.Marshal(link)
	body := base64.RawURLEncoding.EncodeToString(b)
	return body + "." + base64.RawURLEncoding.EncodeToString(l.mac(body))
}

func (l *Links) mac(body string) []byte {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte("sortie action link\x00" + body))
	return m.Sum(nil)
}

// Verify returns the link a token stands for, if Sortie signed it and it
// has not expired at now. Whether it was used is the store's to say.
func (l *Links) Verify(token string, now time.Time) (Link, error) {
	body, sig, ok := strings.Cut(token, ".")
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if !ok || err != nil || !hmac.Equal(got, l.mac(body)) {
		return Link{}, ErrLinkInvalid
	}
	link, err := DecodeLink(token)
	if err != nil {
		return Link{}, ErrLinkInvalid
	}
	if !now.Before(link.Expires) {
		return link, ErrLinkExpired
	}
	return link, nil
}

// DecodeLink reads a token without verifying it: for showing a person what
// a link would do before they confirm. Only Verify says it may be acted on.
func DecodeLink(token string) (Link, error) {
	body, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(body)
	var link Link
	if err == nil {
		err = json.Unmarshal(b, &link)
	}
	if err != nil || link.Pipeline == "" || (link.Action != ActionApprove && link.Action != ActionRollback) {
		return Link{}, ErrLinkInvalid
	}
	return link, nil
}
