package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/internal/proctest"
	"github.com/sortie-cd/sortie/pipeline"
)

// userToken logs user username of tenant main in with password.
func (s *liveServer) userToken(username, password string) string {
	s.t.Helper()
	return s.grant(url.Values{"grant_type": {auth.GrantPassword}, "username": {username}, "password": {password}}, "password login of "+username)
}

// TestRevokedTokensStayRefusedAfterARestart: tokens of a deleted
// credential, of a credential whose roles changed and of a user whose
// password was reset are refused by a real `sortie server`, which is then
// stopped and started again on its data directory. The restarted server
// still refuses each of them (before revocations were stored they were
// good again until they expired), while a token of an untouched credential
// issued before the restart still works (the refusal is the revocation's,
// not the restart's) and new tokens of the changed principals work.
func TestRevokedTokensStayRefusedAfterARestart(t *testing.T) {
	dir := t.TempDir()
	// A fixed public URL: the tokens' issuer is the same after the restart.
	args := []string{"--public-url", "https://sortie.example"}
	srv := proctest.StartServerIn(t, dir, nil, args...)
	s := &liveServer{t: t, url: "http://" + srv.Addr}
	root := s.token(srv.Admin.ClientID, srv.Admin.ClientSecret, "")
	deleted := s.credential(root, "deleted", pipeline.RoleViewer)
	changed := s.credential(root, "changed", pipeline.RoleDeployer)
	kept := s.credential(root, "kept", pipeline.RoleViewer)
	const pw1, pw2 = "first-password-of-ann", "second-password-of-ann"
	s.must(201, "POST", api.Prefix+"/users", root, api.CreateUserRequest{Username: "ann", Password: pw1, Roles: []string{pipeline.RoleViewer}}, nil)
	revoked := map[string]string{
		"a deleted credential's":            s.token(deleted.ClientID, deleted.ClientSecret, ""),
		"a credential's with other roles":   s.token(changed.ClientID, changed.ClientSecret, ""),
		"a user's whose password was reset": s.userToken("ann", pw1),
	}
	keptToken := s.token(kept.ClientID, kept.ClientSecret, "")
	for _, tok := range revoked {
		s.must(200, "GET", api.Prefix+"/pipelines", tok, nil, nil)
	}
	s.must(204, "DELETE", api.Prefix+"/credentials/"+deleted.ClientID, root, nil, nil)
	s.must(200, "PUT", api.Prefix+"/credentials/"+changed.ClientID+"/roles", root, api.SetRolesRequest{Roles: []string{pipeline.RoleViewer}}, nil)
	s.must(204, "PUT", api.Prefix+"/users/ann/password", root, api.SetPasswordRequest{Password: pw2}, nil)
	refused := func(when string) {
		t.Helper()
		for what, tok := range revoked {
			code, body := s.do("GET", api.Prefix+"/pipelines", tok, nil)
			if code != http.StatusUnauthorized || !strings.Contains(string(body), "revoked") {
				t.Errorf("%s, %s token: %d %s, want 401 saying it was revoked", when, what, code, body)
			}
		}
	}
	refused("before the restart")

	srv.Stop(syscall.SIGTERM)
	srv = proctest.StartServerIn(t, dir, nil, args...)
	s.url = "http://" + srv.Addr
	refused("after the restart")
	s.must(200, "GET", api.Prefix+"/pipelines", keptToken, nil, nil)
	s.must(200, "GET", api.Prefix+"/pipelines", s.token(changed.ClientID, changed.ClientSecret, ""), nil, nil)
	s.must(200, "GET", api.Prefix+"/pipelines", s.userToken("ann", pw2), nil, nil)
}
