package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/server"
	"github.com/sortie-cd/sortie/store"
)

// TestLoginsAndRefusalsAuditedOnARealServer (issue 16 item 15) on a real
// server: a wrong password, a refused (403) request and a refresh-token
// login each leave an audit entry saying who, from where and what, and
// none holds the password tried or a token.
func TestLoginsAndRefusalsAuditedOnARealServer(t *testing.T) {
	srv := clienttest.Start(t, server.Config{})
	s := &liveServer{t: t, url: srv.URL}
	root := s.token(srv.Credentials.ClientID, srv.Credentials.ClientSecret, "")
	const password = "the-right-password-of-bob"
	s.must(201, "POST", api.Prefix+"/users", root, api.CreateUserRequest{Username: "bob", Password: password, Roles: []string{pipeline.RoleViewer}}, nil)

	post := func(form url.Values) (int, map[string]string) {
		t.Helper()
		resp, err := http.PostForm(srv.URL+auth.TokenPath, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out := map[string]string{}
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, _ := post(url.Values{"grant_type": {auth.GrantPassword}, "username": {"bob"}, "password": {"a-wrong-password-tried"}}); code != http.StatusBadRequest {
		t.Fatalf("a wrong password: %d, want 400 (invalid_grant)", code)
	}
	code, tr := post(url.Values{"grant_type": {auth.GrantPassword}, "username": {"bob"}, "password": {password}})
	if code != 200 || tr["refresh_token"] == "" {
		t.Fatalf("bob's login: %d, no refresh token", code)
	}
	code, rtr := post(url.Values{"grant_type": {auth.GrantRefreshToken}, "refresh_token": {tr["refresh_token"]}})
	if code != 200 {
		t.Fatalf("bob's refresh: %d", code)
	}
	if code, _ := s.do("GET", api.Prefix+"/credentials", rtr["access_token"], nil); code != http.StatusForbidden {
		t.Fatalf("a viewer lists credentials: %d, want 403", code)
	}

	var audit api.AuditList
	s.must(200, "GET", api.Prefix+"/audit?limit=100", root, nil, &audit)
	has := func(action string, objects ...string) {
		t.Helper()
		if !slices.ContainsFunc(audit.Entries, func(e store.AuditEntry) bool {
			return e.Action == action && e.Remote == "127.0.0.1" && slices.Equal(e.Objects, objects)
		}) {
			t.Errorf("no %s entry from 127.0.0.1 with %q in:\n%+v", action, objects, audit.Entries)
		}
	}
	has(auth.ActionLoginFailed, "user:bob", "wrong password")
	has("login", "user:bob", "refresh_token")
	has(api.ActionDenied, "GET /api/v1/credentials")
	b, _ := json.Marshal(audit)
	for _, leak := range []string{"a-wrong-password-tried", password, tr["refresh_token"], rtr["access_token"]} {
		if strings.Contains(string(b), leak) {
			t.Errorf("the audit log holds %q", leak)
		}
	}
}
