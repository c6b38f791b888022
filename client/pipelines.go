package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/store"
)

// StartPipeline submits a deployment (POST /api/v1/pipelines). A 409
// (another deployment of the application in flight) is an *Error with
// Status 409; an invalid file a 400 whose entries carry positions.
func (c *Client) StartPipeline(ctx context.Context, req api.StartRequest) (api.StartResult, error) {
	var res api.StartResult
	err := c.call(ctx, http.MethodPost, api.Prefix+"/pipelines", nil, req, &res)
	return res, err
}

// Redeploy starts a new pipeline from an earlier one's stored source.
func (c *Client) Redeploy(ctx context.Context, id string, req api.RedeployRequest) (api.StartResult, error) {
	var res api.StartResult
	err := c.call(ctx, http.MethodPost, api.Prefix+"/pipelines/"+url.PathEscape(id)+"/redeploy", nil, req, &res)
	return res, err
}

// Restore starts a pipeline that goes back to the version an earlier one
// deployed (or, with req.Previous, the version before it).
func (c *Client) Restore(ctx context.Context, id string, req api.RestoreRequest) (api.StartResult, error) {
	var res api.StartResult
	err := c.call(ctx, http.MethodPost, api.Prefix+"/pipelines/"+url.PathEscape(id)+"/restore", nil, req, &res)
	return res, err
}

// ListOptions filter ListPipelines. Zero fields select all.
type ListOptions struct {
	Application string
	Statuses    []string
	Since       time.Time
	Until       time.Time
	// Limit caps the answer; zero means the server's default (100).
	Limit int
}

// ListPipelines lists pipelines, newest first.
func (c *Client) ListPipelines(ctx context.Context, o ListOptions) ([]api.PipelineSummary, error) {
	q := url.Values{}
	if o.Application != "" {
		q.Set("application", o.Application)
	}
	for _, s := range o.Statuses {
		q.Add("status", s)
	}
	setWindow(q, o.Since, o.Until, o.Limit)
	var out api.PipelineList
	if err := c.call(ctx, http.MethodGet, api.Prefix+"/pipelines", q, nil, &out); err != nil {
		return nil, err
	}
	return out.Pipelines, nil
}

// setWindow adds the since, until and limit parameters the list routes
// share; zero values are left out.
func setWindow(q url.Values, since, until time.Time, limit int) {
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339))
	}
	if !until.IsZero() {
		q.Set("until", until.UTC().Format(time.RFC3339))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
}

// GetPipeline returns a pipeline's graph.
func (c *Client) GetPipeline(ctx context.Context, id string) (*api.PipelineView, error) {
	var v api.PipelineView
	if err := c.call(ctx, http.MethodGet, api.Prefix+"/pipelines/"+url.PathEscape(id), nil, nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// GetSource returns the deployment as it was submitted.
func (c *Client) GetSource(ctx context.Context, id string) (*api.SourceView, error) {
	var v api.SourceView
	if err := c.call(ctx, http.MethodGet, api.Prefix+"/pipelines/"+url.PathEscape(id)+"/source", nil, nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Actions a person takes on a pipeline.
const (
	ActionApprove  = "approve"
	ActionReject   = "reject"
	ActionSkip     = "skip"
	ActionRollback = "rollback"
	ActionCancel   = "cancel"
)

// Act applies an action (ActionApprove, ActionReject, ActionSkip,
// ActionRollback, ActionCancel) and returns the pipeline after it.
func (c *Client) Act(ctx context.Context, id, action string, req api.ActionRequest) (*api.PipelineView, error) {
	var v api.PipelineView
	if err := c.call(ctx, http.MethodPost, api.Prefix+"/pipelines/"+url.PathEscape(id)+"/"+url.PathEscape(action), nil, req, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Events returns a pipeline's stored events with a seq above after.
func (c *Client) Events(ctx context.Context, id string, after int64) ([]store.Event, error) {
	q := url.Values{}
	if after > 0 {
		q.Set("after", strconv.FormatInt(after, 10))
	}
	var out api.EventList
	if err := c.call(ctx, http.MethodGet, api.Prefix+"/pipelines/"+url.PathEscape(id)+"/events", q, nil, &out); err != nil {
		return nil, err
	}
	return out.Events, nil
}

// ListCredentials lists the tenant's client credentials (never a secret).
func (c *Client) ListCredentials(ctx context.Context) ([]api.CredentialView, error) {
	var out api.CredentialList
	if err := c.call(ctx, http.MethodGet, api.Prefix+"/credentials", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Credentials, nil
}

// CreateCredential creates a client credential; the answer holds its secret,
// the only time the server shows it.
func (c *Client) CreateCredential(ctx context.Context, req api.CreateCredentialRequest) (*api.NewCredential, error) {
	var out api.NewCredential
	if err := c.call(ctx, http.MethodPost, api.Prefix+"/credentials", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteCredential deletes a client credential by its client id.
func (c *Client) DeleteCredential(ctx context.Context, clientID string) error {
	return c.call(ctx, http.MethodDelete, api.Prefix+"/credentials/"+url.PathEscape(clientID), nil, nil, nil)
}
