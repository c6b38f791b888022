package server_test

import (
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/server"
)

// fromAddress is an HTTP client whose connections come from local address
// ip (any 127.0.0.0/8 address is this machine's loopback on Linux), as
// another machine's would.
func fromAddress(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

func tokenStatus(t *testing.T, c *http.Client, base, id, secret string) int {
	t.Helper()
	resp, err := c.PostForm(base+auth.TokenPath, url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestNobodyLocksTheOwnerOut attacks a real server's token endpoint as
// issue 16 items 6 and 15 describe: another machine (127.0.0.2) sends
// wrong secrets for the admin's public client id until it is refused; the
// owner, from its own address, still gets a token; the failures are in the
// audit log with the attacker's address and no secret.
func TestNobodyLocksTheOwnerOut(t *testing.T) {
	srv := clienttest.Start(t, server.Config{})
	attacker := fromAddress("127.0.0.2")
	limited := false
	for range 30 {
		code := tokenStatus(t, attacker, srv.URL, srv.Credentials.ClientID, "not-the-secret-at-all")
		if code == http.StatusTooManyRequests {
			limited = true
			break
		}
		if code != http.StatusUnauthorized {
			t.Fatalf("a wrong secret: %d, want 401", code)
		}
	}
	if !limited {
		t.Error("30 wrong secrets from one address were never limited")
	}
	if code := tokenStatus(t, fromAddress("127.0.0.1"), srv.URL, srv.Credentials.ClientID, srv.Credentials.ClientSecret); code != http.StatusOK {
		t.Errorf("the owner, after another address's failures: %d, want 200", code)
	}
	s := &liveServer{t: t, url: srv.URL}
	root := s.token(srv.Credentials.ClientID, srv.Credentials.ClientSecret, "")
	var audit api.AuditList
	s.must(200, "GET", api.Prefix+"/audit?action="+auth.ActionLoginFailed, root, nil, &audit)
	if len(audit.Entries) == 0 || audit.Entries[0].Remote != "127.0.0.2" {
		t.Errorf("failed logins in the audit log: %+v, want the attacker's address", audit.Entries)
	}
	for _, e := range audit.Entries {
		if strings.Contains(strings.Join(e.Objects, " ")+e.Actor, "not-the-secret") {
			t.Errorf("an audit entry holds the tried secret: %+v", e)
		}
	}
}

// TestBogusTokenFloodIsBounded sends many concurrent token requests with
// wrong secrets to a real server (issue 16 item 7: each costs an argon2id
// hash): beyond the hashing slots they are answered 429 at once instead of
// queuing more hashes, and the server still serves its owner afterwards.
func TestBogusTokenFloodIsBounded(t *testing.T) {
	srv := clienttest.Start(t, server.Config{})
	// Distinct client ids and addresses, so the per-(id, address) limit of
	// item 6 is not what refuses them.
	const n = 48
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			c := fromAddress("127.0.1." + strconv.Itoa(i+1))
			<-start
			codes[i] = tokenStatus(t, c, srv.URL, "sortie-bogus-"+strconv.Itoa(i), "wrong")
		})
	}
	close(start)
	wg.Wait()
	busy := 0
	for _, c := range codes {
		switch c {
		case http.StatusTooManyRequests:
			busy++
		case http.StatusUnauthorized:
		default:
			t.Errorf("a bogus token request: %d, want 401 or 429", c)
		}
	}
	if busy == 0 {
		t.Errorf("%d concurrent bogus token requests were all hashed (none answered 429): %v", n, codes)
	}
	if code := tokenStatus(t, http.DefaultClient, srv.URL, srv.Credentials.ClientID, srv.Credentials.ClientSecret); code != http.StatusOK {
		t.Errorf("the owner after the flood: %d, want 200", code)
	}
}

// TestCustomAdminGrantsNoMoreThanItHolds attacks a real server as a
// custom role defined with read and admin (issue 16 item 3): it cannot
// mint a tenant-admin credential, raise its own roles, or reset an
// organization admin, and it still manages what is below it.
func TestCustomAdminGrantsNoMoreThanItHolds(t *testing.T) {
	srv := clienttest.Start(t, server.Config{})
	s := &liveServer{t: t, url: srv.URL}
	root := s.token(srv.Credentials.ClientID, srv.Credentials.ClientSecret, "")
	cfg := isolationConfig("main")
	cfg.Tenants[0].Roles = append(cfg.Tenants[0].Roles, api.RoleConfig{Name: "ops-admin", Grants: []string{"read", "admin"}})
	s.must(200, "PUT", api.Prefix+"/config", root, cfg, nil)
	ops := s.credential(root, "ops", "ops-admin")
	tok := s.token(ops.ClientID, ops.ClientSecret, "")
	for _, try := range []struct {
		what, method, path string
		body               any
	}{
		{"mint a tenant-admin credential", "POST", api.Prefix + "/credentials", api.CreateCredentialRequest{Name: "mine", Roles: []string{"tenant-admin"}}},
		{"mint a deployer credential (a grant it lacks)", "POST", api.Prefix + "/credentials", api.CreateCredentialRequest{Name: "mine2", Roles: []string{"deployer"}}},
		{"raise its own roles", "PUT", api.Prefix + "/credentials/" + ops.ClientID + "/roles", api.SetRolesRequest{Roles: []string{"tenant-admin"}}},
		{"change the organization admin's roles", "PUT", api.Prefix + "/credentials/" + srv.Credentials.ClientID + "/roles", api.SetRolesRequest{Roles: []string{"viewer"}}},
		{"delete the organization admin", "DELETE", api.Prefix + "/credentials/" + srv.Credentials.ClientID, nil},
	} {
		if code, b := s.do(try.method, try.path, tok, try.body); code != http.StatusForbidden {
			t.Errorf("a custom read+admin role tried to %s: %d %s, want 403", try.what, code, b)
		}
	}
	s.must(201, "POST", api.Prefix+"/credentials", tok, api.CreateCredentialRequest{Name: "dash", Roles: []string{"viewer"}}, nil)
	if code := tokenStatus(t, http.DefaultClient, srv.URL, srv.Credentials.ClientID, srv.Credentials.ClientSecret); code != http.StatusOK {
		t.Errorf("the organization admin after the attempts: %d, want 200", code)
	}
}

// TestUnboundedRetryCountRefused sends a real server a file whose webhook
// asks for a million retries (issue 16 item 14): refused before anything
// runs, at the value's line and column.
func TestUnboundedRetryCountRefused(t *testing.T) {
	srv := clienttest.Start(t, server.Config{})
	s := &liveServer{t: t, url: srv.URL}
	root := s.token(srv.Credentials.ClientID, srv.Credentials.ClientSecret, "")
	file := `version: v1
kind: kubernetes
application: hammer
targets:
  prod:
    account: local
    namespace: default
    strategy: s1
    constraints:
      afterDeployment:
        - runWebhook: {name: many}
strategies:
  s1:
    canary:
      steps:
        - setWeight: 100
webhooks:
  - name: many
    method: POST
    uriTemplate: https://hooks.example.com/x
    retryCount: 1000000
manifests:
  - inline: "{}"
`
	code, b := s.do("POST", api.Prefix+"/pipelines", root, api.StartRequest{FileName: "deploy.yml", File: file})
	if code != http.StatusBadRequest || !strings.Contains(string(b), "retryCount is 1000000; it must be from 0 to 10") || !strings.Contains(string(b), `"line":21`) {
		t.Errorf("a file asking for a million webhook retries: %d %s, want 400 at line 21", code, b)
	}
}
