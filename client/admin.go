package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/sortie-cd/sortie/analysis"
	"github.com/sortie-cd/sortie/api"
)

// ListAgents lists the agents connected to the server now, in the caller's
// tenant.
func (c *Client) ListAgents(ctx context.Context) ([]api.AgentView, error) {
	var out api.AgentList
	if err := c.call(ctx, http.MethodGet, api.Prefix+"/agents", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Agents, nil
}

// WebhookCallback reports a webhook step's verdict, as an external system
// does at {{armory.callbackUri}}/callback: the step is the pipeline's
// target, group and index (group/index as in a step id, "beforeDeployment/0").
func (c *Client) WebhookCallback(ctx context.Context, pipelineID, target, stepID string, req api.CallbackRequest) (*api.PipelineView, error) {
	var v api.PipelineView
	path := api.Prefix + "/pipelines/" + url.PathEscape(pipelineID) + "/webhooks/" + url.PathEscape(target) + "/" + stepID + "/callback"
	if err := c.call(ctx, http.MethodPost, path, nil, req, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// ListProviders lists the tenant's metric providers (secrets by name only).
func (c *Client) ListProviders(ctx context.Context) ([]api.ProviderView, error) {
	var out api.ProviderList
	if err := c.call(ctx, http.MethodGet, api.Prefix+"/providers", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Providers, nil
}

// CreateProvider adds a metric provider.
func (c *Client) CreateProvider(ctx context.Context, cfg analysis.Config) (*api.ProviderView, error) {
	var out api.ProviderView
	if err := c.call(ctx, http.MethodPost, api.Prefix+"/providers", nil, cfg, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteProvider deletes a metric provider by name.
func (c *Client) DeleteProvider(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, api.Prefix+"/providers/"+url.PathEscape(name), nil, nil, nil)
}
