package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/sortie-cd/sortie/store"
)

// DeviceAuthorizationPath is where the server serves
// DeviceAuthorizationHandler.
const DeviceAuthorizationPath = "/oauth/device/code"

// SSO is single sign-on through an OpenID Connect provider, as the token
// endpoint needs it (package sso has it). Sortie proxies the device flow:
// the CLI speaks RFC 8628 to Sortie only, and Sortie, holding the client
// secret, asks the provider.
type SSO interface {
	// DeviceAuthorization starts a device login at the provider.
	DeviceAuthorization(ctx context.Context) (DeviceAuthorization, error)
	// PollDevice asks the provider once about deviceCode. It returns the
	// verified identity once the user approved; ErrAuthorizationPending,
	// ErrSlowDown, ErrAccessDenied or ErrExpiredToken while it is not.
	PollDevice(ctx context.Context, deviceCode string) (Identity, error)
}

// DeviceAuthorization is RFC 8628 §3.2's answer.
type DeviceAuthorization struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete,omitempty"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval,omitempty"`
}

// The device flow's answers while a login is not done (RFC 8628 §3.5).
var (
	ErrAuthorizationPending = errors.New("authorization_pending")
	ErrSlowDown             = errors.New("slow_down")
	ErrAccessDenied         = errors.New("access_denied")
	ErrExpiredToken         = errors.New("expired_token")
)

// Identity is a user as a verified ID token and the group mapping make it:
// who, in which tenant, with which roles.
type Identity struct {
	Issuer, Subject string
	// Username is the Sortie username (the provider's preferred_username
	// or email, lower-cased).
	Username string
	Name     string
	Tenant   string
	Roles    []string
}

// ErrSSOConflict: a local account, or another provider user, has the
// username already. Sortie never merges accounts.
var ErrSSOConflict = errors.New("a user with this username exists in the tenant and is not this single sign-on user")

// ProvisionUser finds or creates (just in time) the user of id in its
// tenant and sets its roles to the mapping's, so a change of groups at the
// provider applies at the next login.
func (s *Service) ProvisionUser(ctx context.Context, id Identity) (*store.User, error) {
	if err := s.needUsers(); err != nil {
		return nil, err
	}
	if err := CheckUsername(id.Username); err != nil {
		return nil, err
	}
	u, err := s.users.GetUser(ctx, id.Tenant, id.Username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		nu := store.User{Tenant: id.Tenant, Username: id.Username, Name: id.Name, Roles: id.Roles, Issuer: id.Issuer, Subject: id.Subject,
			CreatedAt: s.now().UTC(), UpdatedAt: s.now().UTC()}
		if err := s.users.CreateUser(ctx, nu); err != nil {
			return nil, fmt.Errorf("auth: provision user %s: %w", id.Username, err)
		}
		return &nu, nil
	case err != nil:
		return nil, err
	case u.Issuer != id.Issuer || u.Subject != id.Subject:
		return nil, ErrSSOConflict
	}
	if !slices.Equal(u.Roles, id.Roles) {
		// The tokens issued with the old roles end with them.
		if err := s.SetUserRoles(ctx, id.Tenant, id.Username, id.Roles); err != nil {
			return nil, err
		}
		u.Roles = id.Roles
	}
	return u, nil
}

// LoginIdentity provisions id's user and returns its access and refresh
// tokens, recording the login: for the console's authorization-code flow,
// which package sso completes.
func (s *Service) LoginIdentity(ctx context.Context, r *http.Request, id Identity) (Token, string, error) {
	u, err := s.ProvisionUser(ctx, id)
	if err != nil {
		return Token{}, "", err
	}
	tok, refresh, err := s.userTokens(ctx, u)
	if err != nil {
		return Token{}, "", err
	}
	if s.audit != nil {
		e := store.AuditEntry{Tenant: u.Tenant, At: s.now(), Actor: u.Username, ClientID: UserSubject(u.Username), Remote: remoteHost(r), Action: "login", Objects: []string{UserSubject(u.Username)}}
		if err := s.audit.AppendAudit(ctx, e); err != nil {
			return Token{}, "", fmt.Errorf("auth: record the login: %w", err)
		}
	}
	return tok, refresh, nil
}

// DeviceAuthorizationHandler serves RFC 8628's device authorization
// endpoint by asking the provider; without single sign-on it answers 400.
func (s *Service) DeviceAuthorizationHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if wait, _ := s.addrs.reserve(addrKey(remoteHost(r)), s.now()); wait > 0 {
			tooMany(w, wait)
			return
		}
		if _, ok := readForm(w, r); !ok {
			return
		}
		if s.sso == nil {
			oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "single sign-on is not configured on this server")
			return
		}
		da, err := s.sso.DeviceAuthorization(r.Context())
		if err != nil {
			s.serverError(w, "device authorization at the identity provider", err)
			return
		}
		writeJSON(w, http.StatusOK, da)
	})
}

func (s *Service) deviceGrant(w http.ResponseWriter, r *http.Request, form url.Values) {
	if s.sso == nil || s.users == nil {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "single sign-on is not configured on this server")
		return
	}
	code := strings.TrimSpace(form.Get("device_code"))
	if code == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "device_code is missing")
		return
	}
	id, err := s.sso.PollDevice(r.Context(), code)
	switch {
	case errors.Is(err, ErrAuthorizationPending):
		oauthError(w, http.StatusBadRequest, "authorization_pending", "the user has not approved the login yet")
		return
	case errors.Is(err, ErrSlowDown):
		oauthError(w, http.StatusBadRequest, "slow_down", "poll less often")
		return
	case errors.Is(err, ErrAccessDenied):
		oauthError(w, http.StatusBadRequest, "access_denied", "the login was denied at the identity provider")
		return
	case errors.Is(err, ErrExpiredToken):
		oauthError(w, http.StatusBadRequest, "expired_token", "the device code expired; start again")
		return
	case err != nil:
		var inv *InvalidError
		if errors.As(err, &inv) {
			oauthError(w, http.StatusBadRequest, "access_denied", inv.Message)
			return
		}
		s.serverError(w, "device login at the identity provider", err)
		return
	}
	u, err := s.ProvisionUser(r.Context(), id)
	if err != nil {
		var inv *InvalidError
		if errors.Is(err, ErrSSOConflict) || errors.As(err, &inv) {
			s.log.Warn("single sign-on refused", "user", id.Username, "tenant", id.Tenant, "err", err)
			oauthError(w, http.StatusBadRequest, "access_denied", err.Error())
			return
		}
		s.serverError(w, "provision user", err)
		return
	}
	s.loginUser(w, r, u)
}
