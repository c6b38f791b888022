package client

import (
	"context"
	"io"
	"net/http"
)

// Health asks /healthz (and, with ready, /readyz); nil means the server
// answered that it is alive (and ready).
func (c *Client) Health(ctx context.Context, ready bool) error {
	path := "/healthz"
	if ready {
		path = "/readyz"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path, nil), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.hc.Do(req)
	if err != nil {
		return transportError(err, c.base.String())
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp, body)
	}
	return nil
}
