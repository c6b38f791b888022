package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/store"
)

// ListSubscriptions lists the tenant's notification subscriptions.
func (c *Client) ListSubscriptions(ctx context.Context) ([]api.Subscription, error) {
	var out api.SubscriptionList
	if err := c.call(ctx, http.MethodGet, api.Prefix+"/notifications", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Subscriptions, nil
}

// CreateSubscription adds a notification subscription.
func (c *Client) CreateSubscription(ctx context.Context, s api.Subscription) (*api.Subscription, error) {
	var out api.Subscription
	if err := c.call(ctx, http.MethodPost, api.Prefix+"/notifications", nil, s, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteSubscription deletes a notification subscription by id.
func (c *Client) DeleteSubscription(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, api.Prefix+"/notifications/"+url.PathEscape(id), nil, nil, nil)
}

// TestSubscription sends a sample message to a subscription's sink now
// and returns the delivery's record.
func (c *Client) TestSubscription(ctx context.Context, id string) (*store.OutboxMessage, error) {
	var out store.OutboxMessage
	if err := c.call(ctx, http.MethodPost, api.Prefix+"/notifications/"+url.PathEscape(id)+"/test", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListDeliveries lists recent deliveries, newest first, of one
// subscription when it is not empty; limit 0 is the server's default.
func (c *Client) ListDeliveries(ctx context.Context, subscription string, limit int) ([]store.OutboxMessage, error) {
	q := url.Values{}
	if subscription != "" {
		q.Set("subscription", subscription)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out api.DeliveryList
	if err := c.call(ctx, http.MethodGet, api.Prefix+"/notifications/deliveries", q, nil, &out); err != nil {
		return nil, err
	}
	return out.Deliveries, nil
}
