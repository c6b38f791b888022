package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sortie-cd/sortie/store"
)

// UserStore is what Service needs to keep users and their refresh tokens:
// store.Store has it.
type UserStore interface {
	CreateUser(ctx context.Context, u store.User) error
	GetUser(ctx context.Context, tenant, username string) (*store.User, error)
	ListUsers(ctx context.Context, tenant string) ([]store.User, error)
	DeleteUser(ctx context.Context, tenant, username string) error
	SetUserRoles(ctx context.Context, tenant, username string, roles []string) error
	SetUserPassword(ctx context.Context, tenant, username string, hash []byte) error
	CreateRefreshToken(ctx context.Context, t store.RefreshToken) error
	ConsumeRefreshToken(ctx context.Context, id string) (*store.RefreshToken, error)
	RevokeRefreshTokens(ctx context.Context, tenant, username string) error
}

// DefaultRefreshTTL is how long a refresh token lives unused unless
// Options.RefreshTTL says otherwise. Each use replaces it with a new one.
const DefaultRefreshTTL = 14 * 24 * time.Hour

// UserSubjectPrefix starts the sub claim of a user's token ("user:alice"),
// which no client id can (they are base32 without a colon).
const UserSubjectPrefix = "user:"

// Password bounds: long enough to resist guessing at the token endpoint's
// rate, short enough that hashing one costs what any other does.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 256
)

// refreshPrefix starts every refresh token, so scanners and people
// recognise one.
const refreshPrefix = "sortie_rt_"

// Errors of the user methods, fit to show the caller.
var (
	ErrNoUsers       = errors.New("this server keeps no user accounts")
	ErrWrongPassword = errors.New("the current password is wrong")
)

// InvalidError is a request the caller must fix (a bad username, a weak
// password); its text says how.
type InvalidError struct{ Message string }

func (e *InvalidError) Error() string { return e.Message }

var usernamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._@+-]{0,127}$`)

// CheckUsername refuses a username Sortie cannot keep: lower-case letters,
// digits and . _ @ + -, up to 128.
func CheckUsername(u string) error {
	if !usernamePattern.MatchString(u) {
		return &InvalidError{fmt.Sprintf("username %q is not valid: lower-case letters, digits, '.', '_', '@', '+', '-', up to 128, starting with a letter or digit", u)}
	}
	return nil
}

// CheckPassword refuses a password too short or too long to hash.
func CheckPassword(pw string) error {
	switch n := utf8.RuneCountInString(pw); {
	case n < MinPasswordLen:
		return &InvalidError{fmt.Sprintf("the password is too short: use at least %d characters", MinPasswordLen)}
	case len(pw) > MaxPasswordLen:
		return &InvalidError{fmt.Sprintf("the password is over %d bytes", MaxPasswordLen)}
	}
	return nil
}

// UserSubject is the sub claim of username's tokens.
func UserSubject(username string) string { return UserSubjectPrefix + username }

// Username returns the username of a user's principal, and false for a
// client credential's.
func (p Principal) Username() (string, bool) {
	return strings.CutPrefix(p.ClientID, UserSubjectPrefix)
}

func (s *Service) needUsers() error {
	if s.users == nil {
		return ErrNoUsers
	}
	return nil
}

// CreateUser makes a local account of tenant. An empty password makes an
// account that cannot log in until an admin sets one.
func (s *Service) CreateUser(ctx context.Context, tenant, username, name, password string, roles []string) (store.User, error) {
	if err := s.needUsers(); err != nil {
		return store.User{}, err
	}
	if err := CheckUsername(username); err != nil {
		return store.User{}, err
	}
	u := store.User{Tenant: tenant, Username: username, Name: name, Roles: roles, CreatedAt: s.now().UTC(), UpdatedAt: s.now().UTC()}
	if password != "" {
		if err := CheckPassword(password); err != nil {
			return store.User{}, err
		}
		h, err := s.hash(password)
		if err != nil {
			return store.User{}, err
		}
		u.PasswordHash = h
	}
	if err := s.users.CreateUser(ctx, u); err != nil {
		return store.User{}, fmt.Errorf("auth: store user: %w", err)
	}
	return u, nil
}

// ListUsers returns tenant's users.
func (s *Service) ListUsers(ctx context.Context, tenant string) ([]store.User, error) {
	if err := s.needUsers(); err != nil {
		return nil, err
	}
	return s.users.ListUsers(ctx, tenant)
}

// GetUser returns a user of tenant.
func (s *Service) GetUser(ctx context.Context, tenant, username string) (*store.User, error) {
	if err := s.needUsers(); err != nil {
		return nil, err
	}
	return s.users.GetUser(ctx, tenant, username)
}

// DeleteUser deletes a user of tenant and its refresh tokens, and revokes
// it (Revoke): its access tokens are refused and its streams end.
func (s *Service) DeleteUser(ctx context.Context, tenant, username string) error {
	if err := s.needUsers(); err != nil {
		return err
	}
	return s.revokeAfter(ctx, tenant, username, s.users.DeleteUser(ctx, tenant, username))
}

// SetUserRoles replaces a user's roles; they apply from its next token,
// and the tokens it holds are revoked (Revoke), streams included.
func (s *Service) SetUserRoles(ctx context.Context, tenant, username string, roles []string) error {
	if err := s.needUsers(); err != nil {
		return err
	}
	return s.revokeAfter(ctx, tenant, username, s.users.SetUserRoles(ctx, tenant, username, roles))
}

// revokeAfter revokes user username of tenant when the change that
// returned err was made.
func (s *Service) revokeAfter(ctx context.Context, tenant, username string, err error) error {
	if err != nil {
		return err
	}
	return s.Revoke(ctx, tenant, UserSubject(username))
}

// SetPassword sets a user's password (an admin's reset) and ends its
// sessions: every refresh token of the user is revoked, and so are its
// access tokens and streams (Revoke).
func (s *Service) SetPassword(ctx context.Context, tenant, username, password string) error {
	if err := s.needUsers(); err != nil {
		return err
	}
	if err := CheckPassword(password); err != nil {
		return err
	}
	h, err := s.hash(password)
	if err != nil {
		return err
	}
	return s.revokeAfter(ctx, tenant, username, s.users.SetUserPassword(ctx, tenant, username, h))
}

// ChangePassword sets a user's own password after checking its current
// one, in constant time and counted against the same failure limit as the
// password grant.
func (s *Service) ChangePassword(ctx context.Context, tenant, username, current, next string) error {
	if err := s.needUsers(); err != nil {
		return err
	}
	if err := CheckPassword(next); err != nil {
		return err
	}
	now := s.now()
	wait, giveBack := s.clients.reserve(userLimitKey(tenant, username), now)
	if wait > 0 {
		return &RateLimitError{Wait: wait}
	}
	u, err := s.users.GetUser(ctx, tenant, username)
	if err != nil {
		giveBack()
		return err
	}
	var match bool
	if err := s.hashing(func() { match = VerifySecret(u.PasswordHash, current) }); err != nil {
		giveBack()
		return err
	}
	if !match {
		return ErrWrongPassword
	}
	giveBack()
	return s.SetPassword(ctx, tenant, username, next)
}

// RateLimitError says to wait before trying again.
type RateLimitError struct{ Wait time.Duration }

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("too many failed attempts; retry after %d s", int(e.Wait.Seconds()+0.999))
}

func userLimitKey(tenant, username string) string { return "user:" + tenant + "/" + username }

// newRefreshToken makes a refresh token for u, stores its hash and returns
// the token, to be given once.
func (s *Service) newRefreshToken(ctx context.Context, u *store.User) (string, error) {
	id := strings.ToLower(rand.Text())
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", fmt.Errorf("auth: random refresh token: %w", err)
	}
	enc := base64.RawURLEncoding.EncodeToString(secret)
	sum := sha256.Sum256([]byte(enc))
	now := s.now().UTC()
	err := s.users.CreateRefreshToken(ctx, store.RefreshToken{ID: id, Hash: sum[:], Tenant: u.Tenant, Username: u.Username, CreatedAt: now, ExpiresAt: now.Add(s.refreshTTL)})
	if err != nil {
		return "", fmt.Errorf("auth: store refresh token: %w", err)
	}
	return refreshPrefix + id + "." + enc, nil
}

// errBadRefresh is every refused refresh token: unknown, used, expired,
// malformed or of a deleted user alike.
var errBadRefresh = errors.New("the refresh token is invalid, expired, revoked or already used; log in again")

// useRefreshToken consumes a refresh token (it cannot be used again) and
// returns its user as the store has it now.
func (s *Service) useRefreshToken(ctx context.Context, token string) (*store.User, error) {
	id, secret, ok := parseRefreshToken(token)
	if !ok {
		return nil, errBadRefresh
	}
	t, err := s.users.ConsumeRefreshToken(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errBadRefresh
	}
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], t.Hash) != 1 || !s.now().Before(t.ExpiresAt) {
		return nil, errBadRefresh
	}
	u, err := s.users.GetUser(ctx, t.Tenant, t.Username)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errBadRefresh
	}
	return u, err
}

// RevokeRefreshToken makes a refresh token unusable (RFC 7009: an unknown
// token is not an error).
func (s *Service) RevokeRefreshToken(ctx context.Context, token string) error {
	if s.users == nil {
		return nil
	}
	id, _, ok := parseRefreshToken(token)
	if !ok {
		return nil
	}
	_, err := s.users.ConsumeRefreshToken(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

func parseRefreshToken(token string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(token, refreshPrefix)
	if !ok {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, ".")
	return id, secret, ok && id != "" && len(secret) == 43 && len(id) <= 64
}
