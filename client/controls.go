package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/pipeline"
)

// ListWindows lists the tenant's deploy windows.
func (c *Client) ListWindows(ctx context.Context) ([]pipeline.Window, error) {
	var out api.WindowList
	if err := c.call(ctx, http.MethodGet, api.Prefix+"/windows", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Windows, nil
}

// PutWindow creates or replaces the window w.Scope, w.Name.
func (c *Client) PutWindow(ctx context.Context, w pipeline.Window) (*pipeline.Window, error) {
	var out pipeline.Window
	path := api.Prefix + "/windows/" + url.PathEscape(w.Scope) + "/" + url.PathEscape(w.Name)
	body := w
	body.Scope, body.Name = "", ""
	if err := c.call(ctx, http.MethodPut, path, nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteWindow deletes a deploy window.
func (c *Client) DeleteWindow(ctx context.Context, scope, name string) error {
	return c.call(ctx, http.MethodDelete, api.Prefix+"/windows/"+url.PathEscape(scope)+"/"+url.PathEscape(name), nil, nil, nil)
}

// ListFreezes lists the tenant's freezes in force.
func (c *Client) ListFreezes(ctx context.Context) ([]pipeline.Freeze, error) {
	var out api.FreezeList
	if err := c.call(ctx, http.MethodGet, api.Prefix+"/freezes", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Freezes, nil
}

// SetFreeze freezes scope.
func (c *Client) SetFreeze(ctx context.Context, scope string, req api.FreezeRequest) (*pipeline.Freeze, error) {
	var out pipeline.Freeze
	if err := c.call(ctx, http.MethodPut, api.Prefix+"/freezes/"+url.PathEscape(scope), nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// LiftFreeze lifts the freeze of scope.
func (c *Client) LiftFreeze(ctx context.Context, scope string) error {
	return c.call(ctx, http.MethodDelete, api.Prefix+"/freezes/"+url.PathEscape(scope), nil, nil, nil)
}

// Controls returns the windows and freezes that apply to a deployment of
// application to targets.
func (c *Client) Controls(ctx context.Context, application string, targets []string) (*api.ControlsView, error) {
	var out api.ControlsView
	q := url.Values{"application": {application}, "target": targets}
	if err := c.call(ctx, http.MethodGet, api.Prefix+"/controls", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
