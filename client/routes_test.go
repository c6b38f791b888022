package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sortie-cd/sortie/analysis"
	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// Every route of the API has a client call: a route added to api.Routes()
// without one fails here. Each call runs against a real server and must
// reach its handler (any answer but "no such route" or 405).
func TestEveryRouteHasAClientCall(t *testing.T) {
	url, cf := realServer(t)
	c, _ := client.New(client.Options{Server: url, ClientID: cf.ClientID, ClientSecret: cf.ClientSecret})
	ctx := context.Background()
	calls := map[string]func() error{
		"GET /healthz":      func() error { return c.Health(ctx, false) },
		"GET /readyz":       func() error { return c.Health(ctx, true) },
		"GET /metrics":      nil, // Prometheus scrapes it; no client call
		"POST /oauth/token": func() error { _, err := c.FetchToken(ctx); return err },
		"POST /api/v1/pipelines": func() error {
			_, err := c.StartPipeline(ctx, api.StartRequest{File: "version: v1\n"})
			return err
		},
		"GET /api/v1/pipelines":                func() error { _, err := c.ListPipelines(ctx, client.ListOptions{}); return err },
		"GET /api/v1/pipelines/{id}":           func() error { _, err := c.GetPipeline(ctx, "p"); return err },
		"GET /api/v1/pipelines/{id}/source":    func() error { _, err := c.GetSource(ctx, "p"); return err },
		"POST /api/v1/pipelines/{id}/approve":  func() error { _, err := c.Act(ctx, "p", client.ActionApprove, api.ActionRequest{}); return err },
		"POST /api/v1/pipelines/{id}/reject":   func() error { _, err := c.Act(ctx, "p", client.ActionReject, api.ActionRequest{}); return err },
		"POST /api/v1/pipelines/{id}/skip":     func() error { _, err := c.Act(ctx, "p", client.ActionSkip, api.ActionRequest{}); return err },
		"POST /api/v1/pipelines/{id}/rollback": func() error { _, err := c.Act(ctx, "p", client.ActionRollback, api.ActionRequest{}); return err },
		"POST /api/v1/pipelines/{id}/cancel":   func() error { _, err := c.Act(ctx, "p", client.ActionCancel, api.ActionRequest{}); return err },
		"POST /api/v1/pipelines/{id}/restore":  func() error { _, err := c.Restore(ctx, "p", api.RestoreRequest{Reason: "x"}); return err },
		"POST /api/v1/pipelines/{id}/redeploy": func() error { _, err := c.Redeploy(ctx, "p", api.RedeployRequest{}); return err },
		"GET /api/v1/pipelines/{id}/events":    func() error { _, err := c.Events(ctx, "p", 0); return err },
		"GET /api/v1/events": func() error {
			sctx, cancel := context.WithCancel(ctx)
			defer cancel()
			// The stream is open once it is reading: stop at once.
			go cancel()
			err := c.FollowTenant(sctx, "", client.FollowOptions{}, func(store.Event) error { return client.ErrStop })
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
		"POST /api/v1/pipelines/{id}/webhooks/{target}/{group}/{index}/callback": func() error {
			ok := true
			_, err := c.WebhookCallback(ctx, "p", "t", "beforeDeployment/0", api.CallbackRequest{Success: &ok})
			return err
		},
		"GET /api/v1/agents":                 func() error { _, err := c.ListAgents(ctx); return err },
		"GET /api/v1/dora":                   func() error { _, err := c.Dora(ctx, client.DoraOptions{Days: 7}); return err },
		"GET /api/v1/credentials":            func() error { _, err := c.ListCredentials(ctx); return err },
		"POST /api/v1/credentials":           func() error { _, err := c.CreateCredential(ctx, api.CreateCredentialRequest{}); return err },
		"DELETE /api/v1/credentials/{id}":    func() error { return c.DeleteCredential(ctx, "nobody") },
		"PUT /api/v1/credentials/{id}/roles": func() error { return c.SetCredentialRoles(ctx, "nobody", []string{"viewer"}) },
		"GET /api/v1/secrets":                func() error { _, err := c.ListSecrets(ctx); return err },
		"PUT /api/v1/secrets/{name}":         func() error { _, err := c.PutSecret(ctx, "route-test", api.PutSecretRequest{Value: "v"}); return err },
		"DELETE /api/v1/secrets/{name}":      func() error { return c.DeleteSecret(ctx, "route-test") },
		"GET /api/v1/audit":                  func() error { _, err := c.ListAudit(ctx, client.AuditOptions{Limit: 5}); return err },
		"GET /api/v1/tenants":                func() error { _, err := c.ListTenants(ctx); return err },
		"POST /api/v1/tenants":               func() error { return c.CreateTenant(ctx, "route-test") },
		"GET /api/v1/config":                 func() error { _, err := c.GetConfig(ctx); return err },
		"PUT /api/v1/config":                 func() error { _, err := c.ApplyConfig(ctx, api.Config{}); return err },
		"POST /api/v1/master-key/rotate":     func() error { _, err := c.RotateMasterKey(ctx); return err },
		"POST /oauth/revoke": func() error {
			rc, _ := client.New(client.Options{Server: url, Token: client.Token{AccessToken: "x", RefreshToken: "sortie_rt_x.y"}})
			return rc.Revoke(ctx)
		},
		"POST /oauth/device/code":               func() error { _, err := c.DeviceAuthorization(ctx); return err },
		"GET /api/v1/users":                     func() error { _, err := c.ListUsers(ctx); return err },
		"POST /api/v1/users":                    func() error { _, err := c.CreateUser(ctx, api.CreateUserRequest{}); return err },
		"DELETE /api/v1/users/{username}":       func() error { return c.DeleteUser(ctx, "nobody") },
		"PUT /api/v1/users/{username}/roles":    func() error { return c.SetUserRoles(ctx, "nobody", []string{"viewer"}) },
		"PUT /api/v1/users/{username}/password": func() error { return c.SetUserPassword(ctx, "nobody", "x") },
		"GET /api/v1/account":                   func() error { _, err := c.Account(ctx); return err },
		"PUT /api/v1/account/password":          func() error { return c.ChangePassword(ctx, "x", "y") },
		"GET /api/v1/providers":                 func() error { _, err := c.ListProviders(ctx); return err },
		"POST /api/v1/providers":                func() error { _, err := c.CreateProvider(ctx, analysis.Config{}); return err },
		"DELETE /api/v1/providers/{name}":       func() error { return c.DeleteProvider(ctx, "nothing") },
		"GET /api/v1/windows":                   func() error { _, err := c.ListWindows(ctx); return err },
		"PUT /api/v1/windows/{scope}/{name}": func() error {
			_, err := c.PutWindow(ctx, pipeline.Window{Scope: "target route-test", Name: "w"})
			return err
		},
		"DELETE /api/v1/windows/{scope}/{name}": func() error { return c.DeleteWindow(ctx, "target route-test", "w") },
		"GET /api/v1/freezes":                   func() error { _, err := c.ListFreezes(ctx); return err },
		"PUT /api/v1/freezes/{scope}": func() error {
			_, err := c.SetFreeze(ctx, "target route-test", api.FreezeRequest{Reason: "route test"})
			return err
		},
		"DELETE /api/v1/freezes/{scope}":       func() error { return c.LiftFreeze(ctx, "target route-test") },
		"GET /api/v1/controls":                 func() error { _, err := c.Controls(ctx, "web", []string{"prod"}); return err },
		"GET /api/v1/notifications":            func() error { _, err := c.ListSubscriptions(ctx); return err },
		"POST /api/v1/notifications":           func() error { _, err := c.CreateSubscription(ctx, api.Subscription{}); return err },
		"DELETE /api/v1/notifications/{id}":    func() error { return c.DeleteSubscription(ctx, "nothing") },
		"POST /api/v1/notifications/{id}/test": func() error { _, err := c.TestSubscription(ctx, "nothing"); return err },
		"GET /api/v1/notifications/deliveries": func() error { _, err := c.ListDeliveries(ctx, "", 5); return err },
	}
	seen := map[string]bool{}
	for _, rt := range api.Routes() {
		key := rt.Method + " " + rt.Path
		seen[key] = true
		call, ok := calls[key]
		if !ok {
			t.Errorf("no client call for %s", key)
			continue
		}
		if call == nil {
			continue
		}
		err := call()
		var ae *client.Error
		if errors.As(err, &ae) && (ae.Status == 405 || strings.HasPrefix(ae.Error(), "no such route")) {
			t.Errorf("%s: the client's call missed the route: %v", key, err)
		}
	}
	for key := range calls {
		if !seen[key] {
			t.Errorf("the client calls %s, which the API no longer has", key)
		}
	}
}
