package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sortie-cd/sortie/api"
)

// DoraOptions choose the period and application of Dora. Zero fields are
// left to the server: the last 30 days up to now, every application.
type DoraOptions struct {
	Application string
	// Days is the period's length up to Until; Since, when set, is its
	// start instead.
	Days         int
	Since, Until time.Time
}

// Dora returns the tenant's DORA figures per application and target.
func (c *Client) Dora(ctx context.Context, o DoraOptions) (*api.DoraReport, error) {
	q := url.Values{}
	if o.Application != "" {
		q.Set("application", o.Application)
	}
	if o.Days > 0 {
		q.Set("days", strconv.Itoa(o.Days))
	}
	if !o.Since.IsZero() {
		q.Set("since", o.Since.UTC().Format(time.RFC3339))
	}
	if !o.Until.IsZero() {
		q.Set("until", o.Until.UTC().Format(time.RFC3339))
	}
	var out api.DoraReport
	if err := c.call(ctx, http.MethodGet, api.Prefix+"/dora", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
