package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
)

// ListUsers lists the tenant's users.
func (c *Client) ListUsers(ctx context.Context) ([]api.UserView, error) {
	var out api.UserList
	if err := c.call(ctx, http.MethodGet, api.Prefix+"/users", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Users, nil
}

// CreateUser creates a local user account.
func (c *Client) CreateUser(ctx context.Context, req api.CreateUserRequest) (*api.UserView, error) {
	var out api.UserView
	if err := c.call(ctx, http.MethodPost, api.Prefix+"/users", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteUser deletes a user and revokes its refresh tokens.
func (c *Client) DeleteUser(ctx context.Context, username string) error {
	return c.call(ctx, http.MethodDelete, api.Prefix+"/users/"+url.PathEscape(username), nil, nil, nil)
}

// SetUserRoles replaces a user's roles.
func (c *Client) SetUserRoles(ctx context.Context, username string, roles []string) error {
	return c.call(ctx, http.MethodPut, api.Prefix+"/users/"+url.PathEscape(username)+"/roles", nil, api.SetRolesRequest{Roles: roles}, nil)
}

// SetUserPassword sets a user's password (an admin's reset).
func (c *Client) SetUserPassword(ctx context.Context, username, password string) error {
	return c.call(ctx, http.MethodPut, api.Prefix+"/users/"+url.PathEscape(username)+"/password", nil, api.SetPasswordRequest{Password: password}, nil)
}

// Account says who the held token is.
func (c *Client) Account(ctx context.Context) (*api.Account, error) {
	var out api.Account
	if err := c.call(ctx, http.MethodGet, api.Prefix+"/account", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ChangePassword changes the logged-in user's own password.
func (c *Client) ChangePassword(ctx context.Context, current, next string) error {
	return c.call(ctx, http.MethodPut, api.Prefix+"/account/password", nil, api.ChangePasswordRequest{CurrentPassword: current, NewPassword: next}, nil)
}

// DeviceAuthorization starts a single sign-on device login at the server
// (RFC 8628), which asks the identity provider.
func (c *Client) DeviceAuthorization(ctx context.Context) (auth.DeviceAuthorization, error) {
	var da auth.DeviceAuthorization
	body, err := c.postForm(ctx, auth.DeviceAuthorizationPath, url.Values{})
	if err != nil {
		return da, err
	}
	if err := json.Unmarshal(body, &da); err != nil || da.DeviceCode == "" {
		return da, fmt.Errorf("the device authorization endpoint of %s answered something that is not a device code", c.base)
	}
	return da, nil
}

// DeviceLogin polls the token endpoint with da's device code until the
// user approved (and holds the session's tokens), denied, or the code
// expired, waiting da.Interval between polls (longer after slow_down).
func (c *Client) DeviceLogin(ctx context.Context, da auth.DeviceAuthorization) (Token, error) {
	interval := time.Duration(da.Interval) * time.Second
	if interval <= 0 {
		interval = 5 * time.Second
	}
	deadline := c.now().Add(time.Duration(da.ExpiresIn) * time.Second)
	for {
		tok, err := c.requestToken(ctx, url.Values{"grant_type": {auth.GrantDeviceCode}, "device_code": {da.DeviceCode}})
		var e *Error
		switch {
		case err == nil:
			return tok, nil
		case !errors.As(err, &e):
			return Token{}, err
		case e.Code() == "authorization_pending":
		case e.Code() == "slow_down":
			interval += 5 * time.Second
		case e.Code() == "access_denied":
			return Token{}, fmt.Errorf("the login was denied: %s", e.Error())
		case e.Code() == "expired_token":
			return Token{}, errors.New("the code expired before it was approved; run 'sortie login --sso' again")
		default:
			return Token{}, err
		}
		if da.ExpiresIn > 0 && c.now().After(deadline) {
			return Token{}, errors.New("the code expired before it was approved; run 'sortie login --sso' again")
		}
		select {
		case <-ctx.Done():
			return Token{}, ctx.Err()
		case <-time.After(interval):
		}
	}
}
