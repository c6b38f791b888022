package client_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/server"
)

// realServer starts a real server in process (no cluster: no account is
// served, which these tests do not need).
func realServer(t *testing.T) (string, auth.CredentialsFile) {
	t.Helper()
	s := clienttest.Start(t, server.Config{})
	return s.URL, s.Credentials
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestTokenCachedAndRefreshedBeforeExpiry(t *testing.T) {
	url, cf := realServer(t)
	clk := &clock{now: time.Now()}
	var fetched []client.Token
	c, err := client.New(client.Options{Server: url + "/", ClientID: cf.ClientID, ClientSecret: cf.ClientSecret, Now: clk.Now,
		OnToken: func(tok client.Token) { fetched = append(fetched, tok) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		if _, err := c.ListPipelines(ctx, client.ListOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if len(fetched) != 1 {
		t.Fatalf("tokens fetched for 3 calls: %d, want 1", len(fetched))
	}
	if life := fetched[0].Expiry.Sub(clk.Now()); life < auth.DefaultTTL-time.Minute || life > auth.DefaultTTL+time.Minute {
		t.Errorf("token expiry in %v, want about %v", life, auth.DefaultTTL)
	}
	// Within a minute of its expiry the token is replaced.
	clk.add(auth.DefaultTTL - client.RefreshMargin + time.Second)
	if _, err := c.ListPipelines(ctx, client.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(fetched) != 2 || fetched[1].AccessToken == fetched[0].AccessToken {
		t.Fatalf("no new token near expiry: %d fetched", len(fetched))
	}
	id, err := client.IdentityOf(fetched[1])
	if err != nil || id.ClientID != cf.ClientID || id.Tenant != "main" {
		t.Errorf("identity: %+v, %v", id, err)
	}
}

func TestRejectedTokenIsReplacedOnce(t *testing.T) {
	url, cf := realServer(t)
	fetches := 0
	c, _ := client.New(client.Options{Server: url, ClientID: cf.ClientID, ClientSecret: cf.ClientSecret,
		Token:   client.Token{AccessToken: "a.stale.token", Expiry: time.Now().Add(time.Hour)},
		OnToken: func(client.Token) { fetches++ }})
	if _, err := c.ListCredentials(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fetches != 1 {
		t.Errorf("fetches: %d", fetches)
	}
	// A token alone, refused, is an error saying what to do.
	only, _ := client.New(client.Options{Server: url, Token: client.Token{AccessToken: "a.stale.token"}})
	_, err := only.ListCredentials(context.Background())
	if client.StatusOf(err) != 401 {
		t.Errorf("stale token without credentials: %v", err)
	}
}

func TestErrorsAreDecoded(t *testing.T) {
	url, cf := realServer(t)
	ctx := context.Background()
	wrong := "wrong-" + cf.ClientSecret
	bad, _ := client.New(client.Options{Server: url, ClientID: cf.ClientID, ClientSecret: wrong})
	_, err := bad.ListPipelines(ctx, client.ListOptions{})
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Status != 401 || ae.Code() != "invalid_client" || ae.ErrorID == "" {
		t.Fatalf("wrong secret: %#v", err)
	}
	if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), cf.ClientSecret) {
		t.Errorf("the error shows the secret: %v", err)
	}

	c, _ := client.New(client.Options{Server: url, ClientID: cf.ClientID, ClientSecret: cf.ClientSecret})
	_, err = c.StartPipeline(ctx, api.StartRequest{FileName: "apps/deploy.yml", File: "version: v1\nkind: kubernetes\napplication: web\ntargetz: {}\n"})
	if !errors.As(err, &ae) || ae.Status != 400 || len(ae.Errors) == 0 || ae.Method != "POST" || ae.Path != api.Prefix+"/pipelines" {
		t.Fatalf("invalid file: %#v", err)
	}
	var found bool
	for _, en := range ae.Errors {
		if en.File == "apps/deploy.yml" && en.Line == 4 && en.Column == 1 && strings.Contains(en.Message, "targetz") {
			found = true
			if client.Position(en) != "apps/deploy.yml:4:1" {
				t.Errorf("position: %q", client.Position(en))
			}
		}
	}
	if !found {
		t.Errorf("no positioned problem for targetz: %+v", ae.Errors)
	}

	_, err = c.GetPipeline(ctx, "no-such-pipeline")
	if client.StatusOf(err) != 404 {
		t.Errorf("unknown id: %v", err)
	}
	if err := c.Health(ctx, true); err != nil {
		t.Errorf("readyz: %v", err)
	}
}

func TestCredentials(t *testing.T) {
	url, cf := realServer(t)
	ctx := context.Background()
	c, _ := client.New(client.Options{Server: url, ClientID: cf.ClientID, ClientSecret: cf.ClientSecret})
	nc, err := c.CreateCredential(ctx, api.CreateCredentialRequest{Name: "ci", Roles: []string{"viewer"}})
	if err != nil || nc.ClientSecret == "" {
		t.Fatalf("create: %+v %v", nc, err)
	}
	viewer, _ := client.New(client.Options{Server: url, ClientID: nc.ClientID, ClientSecret: nc.ClientSecret})
	if _, err := viewer.ListPipelines(ctx, client.ListOptions{Application: "web", Statuses: []string{"RUNNING"}, Limit: 5, Since: time.Now().Add(-time.Hour)}); err != nil {
		t.Errorf("viewer lists: %v", err)
	}
	if _, err := viewer.ListCredentials(ctx); client.StatusOf(err) != 403 {
		t.Errorf("viewer lists credentials: %v", err)
	}
	if err := c.DeleteCredential(ctx, nc.ClientID); err != nil {
		t.Fatal(err)
	}
	cs, err := c.ListCredentials(ctx)
	if err != nil || len(cs) != 1 {
		t.Errorf("after delete: %+v %v", cs, err)
	}
	if _, err := client.New(client.Options{Server: filepath.Join("not", "a", "url")}); err == nil {
		t.Error("a server URL without scheme was accepted")
	}
}
