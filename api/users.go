package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/store"
)

// UserView is a user as the API shows it: never its password hash.
type UserView struct {
	Username string   `json:"username"`
	Name     string   `json:"name,omitempty"`
	Roles    []string `json:"roles"`
	// SSO is the identity provider (its issuer) of a user single sign-on
	// provisioned; empty for a local account.
	SSO string `json:"sso,omitempty"`
	// HasPassword says whether a local password is set.
	HasPassword bool      `json:"hasPassword"`
	CreatedAt   time.Time `json:"createdAt"`
}

// UserList is the body of GET /api/v1/users.
type UserList struct {
	Users []UserView `json:"users"`
}

// CreateUserRequest is the body of POST /api/v1/users. An empty Password
// makes an account that cannot log in until one is set.
type CreateUserRequest struct {
	Username string   `json:"username"`
	Name     string   `json:"name,omitempty"`
	Password string   `json:"password,omitempty"`
	Roles    []string `json:"roles"`
}

// SetPasswordRequest is the body of PUT /api/v1/users/{username}/password.
type SetPasswordRequest struct {
	Password string `json:"password"`
}

// ChangePasswordRequest is the body of PUT /api/v1/account/password: a
// user sets its own password.
type ChangePasswordRequest struct {
	CurrentPassword string `json:"currentPassword"`
	NewPassword     string `json:"newPassword"`
}

// Account is the body of GET /api/v1/account: who the caller's token says
// it is.
type Account struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
	// Subject is the token's sub: a client id, or "user:<username>".
	Subject string `json:"subject"`
	// Username is set for a user's token.
	Username string   `json:"username,omitempty"`
	Roles    []string `json:"roles"`
}

func userView(u store.User) UserView {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return UserView{Username: u.Username, Name: u.Name, Roles: roles, SSO: u.Issuer, HasPassword: len(u.PasswordHash) > 0, CreatedAt: u.CreatedAt}
}

// userError gives the auth package's user errors their HTTP meaning.
func userError(err error) error {
	var inv *auth.InvalidError
	var rl *auth.RateLimitError
	switch {
	case errors.As(err, &inv):
		return errorf(http.StatusBadRequest, CodeInvalid, inv.Message)
	case errors.As(err, &rl):
		return errorf(http.StatusTooManyRequests, CodeForbidden, rl.Error())
	case errors.Is(err, auth.ErrNoUsers):
		return errorf(http.StatusNotImplemented, CodeInternal, err.Error())
	case errors.Is(err, auth.ErrWrongPassword):
		return errorf(http.StatusForbidden, CodeForbidden, err.Error())
	case errors.Is(err, store.ErrConflict):
		return errorf(http.StatusConflict, CodeConflict, "that username is taken in this tenant")
	}
	return err
}

func (s *server) listUsers(w http.ResponseWriter, r *http.Request, p Principal) {
	us, err := s.auth.ListUsers(r.Context(), p.Tenant)
	if err != nil {
		s.writeError(w, r, userError(err))
		return
	}
	out := UserList{Users: make([]UserView, 0, len(us))}
	for _, u := range us {
		out.Users = append(out.Users, userView(u))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) createUser(w http.ResponseWriter, r *http.Request, p Principal) {
	var req CreateUserRequest
	if err := decodeJSON(w, r, maxBodyBytes, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	req.Name = strings.TrimSpace(req.Name)
	err := checkName(req.Name, "")
	var a authority
	if err == nil {
		a, err = s.authority(r.Context(), p)
	}
	if err == nil {
		err = a.assign(req.Roles)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.auth.CreateUser(r.Context(), p.Tenant, req.Username, req.Name, req.Password, req.Roles)
	if err != nil {
		s.writeError(w, r, userError(err))
		return
	}
	w.Header().Set("Location", Prefix+"/users/"+u.Username)
	writeJSON(w, http.StatusCreated, userView(u))
}

// mayTouchUser returns the caller's authority once it has checked that
// the caller may change, reset or delete user username of its tenant (404
// when there is none): a password reset is a way to become that user.
func (s *server) mayTouchUser(ctx context.Context, p Principal, username string) (authority, error) {
	a, err := s.authority(ctx, p)
	if err != nil {
		return a, err
	}
	u, err := s.auth.GetUser(ctx, p.Tenant, username)
	if err != nil {
		return a, err
	}
	return a, a.actOn(fmt.Sprintf("user %q", u.Username), u.Roles)
}

func (s *server) deleteUser(w http.ResponseWriter, r *http.Request, p Principal) {
	username := r.PathValue("username")
	if me, ok := p.Username(); ok && me == username {
		s.writeError(w, r, errorf(http.StatusConflict, CodeConflict, "this request is made by that user; delete it as another one"))
		return
	}
	if _, err := s.mayTouchUser(r.Context(), p, username); err != nil {
		s.writeError(w, r, userError(err))
		return
	}
	if err := s.auth.DeleteUser(r.Context(), p.Tenant, username); err != nil {
		s.writeError(w, r, userError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) setUserRoles(w http.ResponseWriter, r *http.Request, p Principal) {
	var req SetRolesRequest
	if err := decodeJSON(w, r, maxBodyBytes, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	a, err := s.mayTouchUser(r.Context(), p, r.PathValue("username"))
	if err == nil {
		err = a.assign(req.Roles)
	}
	if err != nil {
		s.writeError(w, r, userError(err))
		return
	}
	if err := s.auth.SetUserRoles(r.Context(), p.Tenant, r.PathValue("username"), req.Roles); err != nil {
		s.writeError(w, r, userError(err))
		return
	}
	writeJSON(w, http.StatusOK, req)
}

func (s *server) setUserPassword(w http.ResponseWriter, r *http.Request, p Principal) {
	var req SetPasswordRequest
	if err := decodeJSON(w, r, maxBodyBytes, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.mayTouchUser(r.Context(), p, r.PathValue("username")); err != nil {
		s.writeError(w, r, userError(err))
		return
	}
	if err := s.auth.SetPassword(r.Context(), p.Tenant, r.PathValue("username"), req.Password); err != nil {
		s.writeError(w, r, userError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) getAccount(w http.ResponseWriter, _ *http.Request, p Principal) {
	a := Account{Tenant: p.Tenant, Name: p.Name, Subject: p.ClientID, Roles: p.Roles}
	a.Username, _ = p.Username()
	if a.Roles == nil {
		a.Roles = []string{}
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *server) changePassword(w http.ResponseWriter, r *http.Request, p Principal) {
	var req ChangePasswordRequest
	if err := decodeJSON(w, r, maxBodyBytes, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	username, ok := p.Username()
	if !ok {
		s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "only a user has a password; this token is a client credential's"))
		return
	}
	if err := s.auth.ChangePassword(r.Context(), p.Tenant, username, req.CurrentPassword, req.NewPassword); err != nil {
		s.writeError(w, r, userError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) revoke(w http.ResponseWriter, r *http.Request, _ Principal) {
	s.auth.RevokeHandler().ServeHTTP(w, r)
}

func (s *server) deviceAuthorization(w http.ResponseWriter, r *http.Request, _ Principal) {
	s.auth.DeviceAuthorizationHandler().ServeHTTP(w, r)
}
