package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/sortie-cd/sortie/store"
	"golang.org/x/time/rate"
)

// DefaultTTL is how long a token lives unless Options.TTL says otherwise.
const DefaultTTL = 15 * time.Minute

// DefaultAudience is the aud claim of Sortie's tokens.
const DefaultAudience = "sortie"

// CredentialStore is what Service needs of the store: store.Store has it.
type CredentialStore interface {
	CreateCredential(ctx context.Context, c store.Credential) error
	GetCredential(ctx context.Context, clientID string) (*store.Credential, error)
	ListCredentials(ctx context.Context, tenant string) ([]store.Credential, error)
	DeleteCredential(ctx context.Context, tenant, clientID string) error
}

// TenantLister says which tenants exist: store.Store has it.
type TenantLister interface {
	ListTenants(ctx context.Context) ([]string, error)
}

// AuditLog records who got a token: store.Store has it.
type AuditLog interface {
	AppendAudit(ctx context.Context, e store.AuditEntry) error
}

// Options configure a Service.
type Options struct {
	// Credentials looks client ids up; required.
	Credentials CredentialStore
	// Keys sign and verify tokens; required.
	Keys *KeySet
	// Issuer is the iss claim: the server's public URL; required.
	Issuer string
	// Audience is the aud claim; empty means DefaultAudience.
	Audience string
	// TTL is a token's lifetime; zero means DefaultTTL.
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives refused logins (client id and address, never a
	// secret); nil discards.
	Logger *slog.Logger
	// AddrLimit bounds token requests per remote address (an IPv6 one by
	// its /64), and ClientLimit failed attempts per client id, or tenant
	// and username, from one address. Zero values mean DefaultAddrLimit
	// and DefaultClientLimit.
	AddrLimit, ClientLimit Limit
	// Tenants lets an organization admin's credential get a token for
	// another tenant (the token request's tenant parameter); nil means
	// every token is for its credential's own tenant.
	Tenants TenantLister
	// Audit records every token issued (action "login"); nil records
	// nothing. A token is refused when it cannot be recorded.
	Audit AuditLog
	// Users keeps user accounts and their refresh tokens; nil means the
	// password and refresh-token grants are refused and the user methods
	// return ErrNoUsers.
	Users UserStore
	// RefreshTTL is a refresh token's lifetime; zero means
	// DefaultRefreshTTL.
	RefreshTTL time.Duration
	// MaxHashes bounds the argon2id hashes and verifications (19 MiB
	// each) running at once; a request that finds every slot taken is
	// answered 429 at once. Zero means DefaultMaxHashes.
	MaxHashes int
	// SSO, when not nil, logs users in through an OpenID Connect provider:
	// the token endpoint's device-code grant and the device authorization
	// endpoint proxy to it.
	SSO SSO
	// Revocations keeps revoked principals (Revoke) for a restart and for
	// the other replicas (SyncRevocations, FollowRevocations); nil keeps
	// them in memory only, forgotten at a restart.
	Revocations RevocationStore
	// Peers, when not nil, is told of every revocation and every
	// EndStreams, so that the other servers sharing the database apply
	// them at once (package replicas); they call RevokeBefore and
	// EndStreamsHere. Nil: this server is the only one.
	Peers Peers
}

// Peers tells the other servers of a revocation (the unix second before
// which the principal's tokens are refused) and of streams ended by a
// role's redefinition.
type Peers interface {
	Revoked(tenant, subject string, before int64)
	StreamsEnded(tenant, role string)
}

// verifyLeeway is how far apart the server's clock and a token's times may
// be when Verify checks them.
const verifyLeeway = 30 * time.Second

// Limit is a token bucket: Burst requests at once, refilled at Rate per
// second.
type Limit struct {
	Rate  rate.Limit
	Burst int
}

// Default limits: an address may ask for a token once a second on average
// (a burst of 30 lets a CI runner start many jobs at once); a client id or
// user may fail ten times from one address, then once a minute.
var (
	DefaultAddrLimit   = Limit{Rate: 1, Burst: 30}
	DefaultClientLimit = Limit{Rate: rate.Every(time.Minute), Burst: 10}
)

// Service issues and verifies tokens and serves the token endpoint.
type Service struct {
	creds    CredentialStore
	keys     *KeySet
	issuer   string
	audience string
	ttl      time.Duration
	now      func() time.Time
	log      *slog.Logger
	addrs    *limiters
	clients  *limiters
	parser   *jwt.Parser
	tenants  TenantLister
	audit    AuditLog
	users    UserStore
	sso      SSO
	// slots holds one value per hash running (hashing).
	slots chan struct{}
	// inHash, when set (tests), runs inside each hash slot.
	inHash func()
	// revoked ends the tokens and streams of revoked principals;
	// revStore keeps them (nil: in memory only); peers hears of them.
	revoked  *revocations
	revStore RevocationStore
	peers    Peers

	refreshTTL time.Duration
}

// New returns a Service.
func New(o Options) (*Service, error) {
	if o.Credentials == nil || o.Keys == nil || len(o.Keys.kids) == 0 || o.Issuer == "" {
		return nil, errors.New("auth: Options need Credentials, Keys with a key, and Issuer")
	}
	s := &Service{
		creds:    o.Credentials,
		keys:     o.Keys,
		issuer:   o.Issuer,
		audience: o.Audience,
		ttl:      o.TTL,
		now:      o.Now,
		log:      o.Logger,
		tenants:  o.Tenants,
		audit:    o.Audit,
		users:    o.Users,
		sso:      o.SSO,
		revoked:  newRevocations(),
		peers:    o.Peers,
		revStore: o.Revocations,

		refreshTTL: o.RefreshTTL,
	}
	if o.MaxHashes <= 0 {
		o.MaxHashes = DefaultMaxHashes
	}
	s.slots = make(chan struct{}, o.MaxHashes)
	if s.refreshTTL <= 0 {
		s.refreshTTL = DefaultRefreshTTL
	}
	if s.audience == "" {
		s.audience = DefaultAudience
	}
	if s.ttl <= 0 {
		s.ttl = DefaultTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.AddrLimit == (Limit{}) {
		o.AddrLimit = DefaultAddrLimit
	}
	if o.ClientLimit == (Limit{}) {
		o.ClientLimit = DefaultClientLimit
	}
	s.addrs = newLimiters(o.AddrLimit)
	s.clients = newLimiters(o.ClientLimit)
	s.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(s.issuer),
		jwt.WithAudience(s.audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(s.now),
		jwt.WithLeeway(verifyLeeway),
	)
	return s, nil
}

// claims are a token's claims.
type claims struct {
	jwt.RegisteredClaims
	Tenant string   `json:"tenant"`
	Name   string   `json:"name,omitempty"`
	Roles  []string `json:"roles"`
}

// Token is an issued access token.
type Token struct {
	AccessToken string
	ExpiresAt   time.Time
}

// Issue returns a signed token for c.
func (s *Service) Issue(c *store.Credential) (Token, error) {
	return s.issue(c.Tenant, c.ClientID, c.Name, c.Roles)
}

// issueUser returns a signed token for user u.
func (s *Service) issueUser(u *store.User) (Token, error) {
	name := u.Name
	if name == "" {
		name = u.Username
	}
	return s.issue(u.Tenant, UserSubject(u.Username), name, u.Roles)
}

func (s *Service) issue(tenant, subject, name string, roles []string) (Token, error) {
	now := s.now()
	exp := now.Add(s.ttl)
	iat := s.revoked.issuedAt(tenant, subject, now)
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return Token{}, fmt.Errorf("auth: token id: %w", err)
	}
	cl := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.issuer,
			Subject:   subject,
			Audience:  jwt.ClaimStrings{s.audience},
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(iat),
			ID:        fmt.Sprintf("%x", jti),
		},
		Tenant: tenant,
		Name:   name,
		Roles:  roles,
	}
	kid, key := s.keys.signing()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, cl)
	t.Header["kid"] = kid
	signed, err := t.SignedString(key)
	if err != nil {
		return Token{}, fmt.Errorf("auth: sign token: %w", err)
	}
	return Token{AccessToken: signed, ExpiresAt: time.Unix(exp.Unix(), 0)}, nil
}

// Token verification errors. Verify wraps one of them; their text is fit to
// show the caller.
var (
	ErrNoToken      = errors.New("this request needs an access token: Authorization: Bearer <token>")
	ErrTokenExpired = errors.New("the access token expired; get a new one")
	ErrTokenInvalid = errors.New("the access token is invalid")
)

// Verify checks a token's signature (with any key of the set), issuer,
// audience and lifetime, and that it was not issued before its principal
// was revoked (Revoke), and returns its principal.
func (s *Service) Verify(token string) (Principal, error) {
	var cl claims
	_, err := s.parser.ParseWithClaims(token, &cl, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, ok := s.keys.public(kid)
		if !ok {
			return nil, fmt.Errorf("unknown key id %q", kid)
		}
		return k, nil
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Principal{}, ErrTokenExpired
	case err != nil:
		return Principal{}, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	case cl.Tenant == "" || cl.Subject == "" || cl.IssuedAt == nil:
		return Principal{}, fmt.Errorf("%w: no tenant, subject or issue time", ErrTokenInvalid)
	case s.revoked.revokedToken(cl.Tenant, cl.Subject, cl.IssuedAt.Unix()):
		return Principal{}, ErrTokenRevoked
	}
	return Principal{Tenant: cl.Tenant, Name: cl.Name, ClientID: cl.Subject, Roles: cl.Roles,
		IssuedAt: cl.IssuedAt.Time, ExpiresAt: cl.ExpiresAt.Time}, nil
}
