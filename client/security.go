package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/store"
)

// SetCredentialRoles replaces a credential's roles.
func (c *Client) SetCredentialRoles(ctx context.Context, clientID string, roles []string) error {
	return c.call(ctx, http.MethodPut, api.Prefix+"/credentials/"+url.PathEscape(clientID)+"/roles", nil, api.SetRolesRequest{Roles: roles}, nil)
}

// ListSecrets lists the tenant's secrets: names and times, never values.
func (c *Client) ListSecrets(ctx context.Context) ([]api.SecretView, error) {
	var out api.SecretList
	if err := c.call(ctx, http.MethodGet, api.Prefix+"/secrets", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Secrets, nil
}

// PutSecret creates or replaces a secret (req.Value) and sets, lifts or
// keeps its allowed hosts (see api.PutSecretRequest). The value travels in
// the body only, and is never part of an error this returns.
func (c *Client) PutSecret(ctx context.Context, name string, req api.PutSecretRequest) (*api.SecretView, error) {
	var out api.SecretView
	if err := c.call(ctx, http.MethodPut, api.Prefix+"/secrets/"+url.PathEscape(name), nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteSecret deletes a secret.
func (c *Client) DeleteSecret(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, api.Prefix+"/secrets/"+url.PathEscape(name), nil, nil, nil)
}

// AuditOptions filter ListAudit. Zero fields select all.
type AuditOptions struct {
	// Actor matches the actor's name or client id.
	Actor, Action string
	Since, Until  time.Time
	Limit         int
}

// ListAudit lists the tenant's audit log.
func (c *Client) ListAudit(ctx context.Context, o AuditOptions) ([]store.AuditEntry, error) {
	q := url.Values{}
	if o.Actor != "" {
		q.Set("actor", o.Actor)
	}
	if o.Action != "" {
		q.Set("action", o.Action)
	}
	setWindow(q, o.Since, o.Until, o.Limit)
	var out api.AuditList
	if err := c.call(ctx, http.MethodGet, api.Prefix+"/audit", q, nil, &out); err != nil {
		return nil, err
	}
	return out.Entries, nil
}

// ListTenants lists the organization's tenants (organization admins).
func (c *Client) ListTenants(ctx context.Context) ([]string, error) {
	var out api.TenantList
	if err := c.call(ctx, http.MethodGet, api.Prefix+"/tenants", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Tenants, nil
}

// CreateTenant creates a tenant (organization admins).
func (c *Client) CreateTenant(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodPost, api.Prefix+"/tenants", nil, api.CreateTenantRequest{Name: name}, nil)
}

// GetConfig returns the organization's configuration: tenants and roles.
func (c *Client) GetConfig(ctx context.Context) (*api.Config, error) {
	var out api.Config
	if err := c.call(ctx, http.MethodGet, api.Prefix+"/config", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ApplyConfig applies a configuration and returns what changed.
func (c *Client) ApplyConfig(ctx context.Context, cfg api.Config) ([]string, error) {
	var out api.ConfigChanges
	if err := c.call(ctx, http.MethodPut, api.Prefix+"/config", nil, cfg, &out); err != nil {
		return nil, err
	}
	return out.Changes, nil
}

// RotateMasterKey makes the server encrypt tenant keys with a new master
// key and returns its id.
func (c *Client) RotateMasterKey(ctx context.Context) (string, error) {
	var out api.MasterKeyRotation
	if err := c.call(ctx, http.MethodPost, api.Prefix+"/master-key/rotate", nil, nil, &out); err != nil {
		return "", err
	}
	return out.MasterKeyID, nil
}
