package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/client"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/server"
)

// isolationRoles are the roles every route is walked with: each system
// role and a custom one.
var isolationRoles = []string{
	pipeline.RoleOrganizationAdmin, pipeline.RoleTenantAdmin, pipeline.RoleDeployer,
	pipeline.RoleViewer, pipeline.RoleAgent, "release-manager",
}

// isolationCustom are the custom roles both tenants define.
var isolationCustom = map[string][]auth.Grant{"release-manager": {auth.GrantRead, auth.GrantApprove}}

func isolationConfig(tenants ...string) api.Config {
	var c api.Config
	for _, t := range tenants {
		tc := api.TenantConfig{Name: t}
		for name, grants := range isolationCustom {
			rc := api.RoleConfig{Name: name}
			for _, g := range grants {
				rc.Grants = append(rc.Grants, string(g))
			}
			tc.Roles = append(tc.Roles, rc)
		}
		c.Tenants = append(c.Tenants, tc)
	}
	return c
}

// tenantWorld is what one tenant holds in the isolation test: a token per
// role, and the names of its objects, none of which may appear in an
// answer to another tenant.
type tenantWorld struct {
	name string
	// rootID and rootSecret are the bootstrap credential's.
	rootID, rootSecret string
	tokens             map[string]string // by role
	clients            map[string]string // client id by role
	markers            []string
}

// liveServer is a real server (server.Run, SQLite, the local cluster for
// account "local" in tenant main) and raw HTTP to it.
type liveServer struct {
	t   *testing.T
	url string
}

func (s *liveServer) do(method, path, token string, body any) (int, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, s.url+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// must sends a request and wants status.
func (s *liveServer) must(status int, method, path, token string, body, out any) {
	s.t.Helper()
	code, b := s.do(method, path, token, body)
	if code != status {
		s.t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, status)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// credential creates a credential with token and returns it with its secret.
func (s *liveServer) credential(token, name string, roles ...string) api.NewCredential {
	s.t.Helper()
	var nc api.NewCredential
	s.must(201, "POST", api.Prefix+"/credentials", token, api.CreateCredentialRequest{Name: name, Roles: roles}, &nc)
	return nc
}

func (s *liveServer) token(clientID, secret, tenant string) string {
	s.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}}
	if tenant != "" {
		form.Set("tenant", tenant)
	}
	return s.grant(form, fmt.Sprintf("token for %s in %q", clientID, tenant))
}

// grant posts form to the token endpoint and returns the access token;
// what names the request in a failure.
func (s *liveServer) grant(form url.Values, what string) string {
	s.t.Helper()
	resp, err := http.PostForm(s.url+auth.TokenPath, form)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != 200 {
		s.t.Fatalf("%s: %d %v", what, resp.StatusCode, err)
	}
	return tr.AccessToken
}

// populate creates a credential per role in tenant (with token admin, an
// organization admin's token for tenant), a metric provider and a secret.
func (s *liveServer) populate(admin, tenant string) *tenantWorld {
	w := &tenantWorld{name: tenant, tokens: map[string]string{}, clients: map[string]string{}}
	for _, role := range isolationRoles {
		var nc api.NewCredential
		name := tenant + "-credential-" + role
		s.must(201, "POST", api.Prefix+"/credentials", admin, api.CreateCredentialRequest{Name: name, Roles: []string{role}}, &nc)
		w.tokens[role] = s.token(nc.ClientID, nc.ClientSecret, "")
		w.clients[role] = nc.ClientID
		w.markers = append(w.markers, nc.ClientID, name)
	}
	provider := tenant + "-provider"
	s.must(201, "POST", api.Prefix+"/providers", admin, map[string]any{"name": provider, "type": "prometheus", "url": "http://127.0.0.1:1"}, nil)
	secret := tenant + "-secret"
	s.must(200, "PUT", api.Prefix+"/secrets/"+secret, admin, api.PutSecretRequest{Value: tenant + "-secret-value-do-not-show"}, nil)
	user := tenant + "-user"
	s.must(201, "POST", api.Prefix+"/users", admin, api.CreateUserRequest{Username: user, Password: tenant + "-password-do-not-show", Roles: []string{pipeline.RoleViewer}}, nil)
	// A window and a freeze of targets no pipeline here has.
	window, scope := tenant+"-window", url.PathEscape(pipeline.TargetScope(tenant+"-target"))
	s.must(200, "PUT", api.Prefix+"/windows/"+scope+"/"+window, admin, pipeline.Window{Days: []string{"mon"}}, nil)
	s.must(200, "PUT", api.Prefix+"/freezes/"+scope, admin, api.FreezeRequest{Reason: tenant + "-freeze-reason"}, nil)
	w.markers = append(w.markers, provider, secret, tenant+"-secret-value-do-not-show", user, window, tenant+"-freeze-reason")
	return w
}

const isolationApp = `version: v1
kind: kubernetes
application: %[1]s
targets:
  staging:
    account: local
    namespace: %[2]s
    strategy: canary
strategies:
  canary:
    canary:
      steps:
        - setWeight: 50
        - pause: {untilApproved: true, requiresRoles: [release-manager]}
        - setWeight: 100
manifests:
  - path: app.yaml
`

// startApproval deploys app once (a first deployment goes straight to
// 100 %), then again, in the tenant of token: a canary that waits for a
// release manager's approval. It returns the second pipeline's id once it
// waits.
func (s *liveServer) startApproval(token, app, ns string) string {
	s.t.Helper()
	var id string
	for _, version := range []string{"v1", "v2"} {
		var res api.StartResult
		s.must(202, "POST", api.Prefix+"/pipelines", token, api.StartRequest{
			FileName: "deploy.yml", File: fmt.Sprintf(isolationApp, app, ns),
			Manifests: map[string]string{"app.yaml": kubetest.SampleApp(app, 2, "web:{{context.version}}")},
			Context:   map[string]string{"version": version},
		}, &res)
		id = res.PipelineID
		want := pipeline.StatusSucceeded
		if version == "v2" {
			want = pipeline.StatusAwaitingApproval
		}
		s.waitStatus(token, id, want)
	}
	return id
}

// waitStatus waits, on the pipeline's event stream, until it has status want.
func (s *liveServer) waitStatus(token, id string, want pipeline.Status) {
	s.t.Helper()
	clienttest.WaitPipeline(s.t, s.client(token), id, "it is "+string(want), func(p *api.PipelineView) bool { return p.Status == want })
}

// client is an API client calling with token.
func (s *liveServer) client(token string) *client.Client {
	s.t.Helper()
	c, err := client.New(client.Options{Server: s.url, Token: client.Token{AccessToken: token}})
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// newIsolationWorld starts a server with tenants main (a) and other (b),
// each populated, and a pipeline awaiting approval in a.
func newIsolationWorld(t *testing.T) (*liveServer, *tenantWorld, *tenantWorld, string) {
	dir := t.TempDir()
	srv := clienttest.Start(t, server.Config{DataDir: filepath.Join(dir, "data"), Kubeconfig: kubetest.Cluster(t).Kubeconfig, Account: "local"})
	s := &liveServer{t: t, url: srv.URL}
	root := s.token(srv.Credentials.ClientID, srv.Credentials.ClientSecret, "")
	s.must(201, "POST", api.Prefix+"/tenants", root, api.CreateTenantRequest{Name: "other"}, nil)
	s.must(200, "PUT", api.Prefix+"/config", root, isolationConfig("main", "other"), nil)
	a := s.populate(root, "main")
	b := s.populate(s.token(srv.Credentials.ClientID, srv.Credentials.ClientSecret, "other"), "other")
	a.rootID, a.rootSecret = srv.Credentials.ClientID, srv.Credentials.ClientSecret
	id := s.startApproval(a.tokens[pipeline.RoleDeployer], "isolated-app", kubetest.Namespace(t))
	a.markers = append(a.markers, id, "isolated-app")
	return s, a, b, id
}

// TestTenantIsolation walks every route of api.Routes() with a principal
// of another tenant in each role, and with each role of the owning tenant:
// 403 for a missing grant, 404 for another tenant's ids, and never a byte
// of the other tenant's objects in any answer.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	s, a, b, pipelineID := newIsolationWorld(t)
	idFor := func(path string) string {
		switch {
		case strings.HasPrefix(path, api.Prefix+"/pipelines/"):
			return pipelineID
		case strings.HasPrefix(path, api.Prefix+"/credentials/"):
			return a.clients[pipeline.RoleDeployer]
		case strings.HasPrefix(path, api.Prefix+"/providers/"):
			return "main-provider"
		case strings.HasPrefix(path, api.Prefix+"/secrets/"):
			return "main-secret"
		case strings.HasPrefix(path, api.Prefix+"/users/"):
			return "main-user"
		case strings.HasPrefix(path, api.Prefix+"/windows/"):
			return "main-window"
		}
		return "x"
	}
	param := regexp.MustCompile(`\{[a-z]+\}`)
	concrete := func(path string) string {
		id := idFor(path)
		return param.ReplaceAllStringFunc(path, func(p string) string {
			switch p {
			case "{id}", "{name}", "{username}":
				return id
			case "{target}":
				return "staging"
			case "{scope}":
				return url.PathEscape(pipeline.TargetScope("main-target"))
			}
			return "0"
		}) + map[string]string{api.Prefix + "/controls": "?application=x&target=main-target"}[path]
	}
	// A PUT of a window or a freeze writes the caller's own tenant, under
	// a name of its own (not tenant main's, which the DELETE then looks
	// up).
	ownWrite := func(rt api.Route) bool {
		return rt.Method == "PUT" && (rt.Path == api.Prefix+"/windows/{scope}/{name}" || rt.Path == api.Prefix+"/freezes/{scope}")
	}
	// body is valid enough that a handler gets past its checks of the
	// request to the lookup of the id.
	body := func(rt api.Route) any {
		switch {
		case strings.HasSuffix(rt.Path, "/callback"):
			return api.CallbackRequest{Success: new(true)}
		case strings.HasSuffix(rt.Path, "/restore"):
			return api.RestoreRequest{Reason: "isolation walk"}
		case strings.HasSuffix(rt.Path, "/roles"):
			return api.SetRolesRequest{Roles: []string{pipeline.RoleViewer}}
		case rt.Path == api.Prefix+"/config":
			return api.Config{}
		case rt.Path == api.Prefix+"/users/{username}/password":
			return api.SetPasswordRequest{Password: "a long enough new password"}
		case rt.Path == api.Prefix+"/account/password":
			return api.ChangePasswordRequest{}
		case rt.Path == api.Prefix+"/freezes/{scope}":
			return api.FreezeRequest{Reason: "walk"}
		}
		return map[string]any{}
	}

	routes := api.Routes()
	if len(routes) < 30 {
		t.Fatalf("api.Routes() lists %d routes", len(routes))
	}
	for _, rt := range routes {
		if !rt.Authenticated {
			continue
		}
		path := concrete(rt.Path)
		hasID := param.MatchString(rt.Path)
		if ownWrite(rt) {
			path = strings.NewReplacer(url.PathEscape(pipeline.TargetScope("main-target")), "target%20walk", "main-window", "walk-window").Replace(path)
		}
		var reqBody any
		if rt.Method != "GET" && rt.Method != "DELETE" {
			reqBody = body(rt)
		}
		// A principal of tenant b, in every role, on a's ids.
		for _, role := range isolationRoles {
			t.Run(fmt.Sprintf("other/%s/%s %s", role, rt.Method, rt.Path), func(t *testing.T) {
				code, got := s.request(rt, path, b.tokens[role], reqBody)
				granted := rt.Grant == "" || auth.Has([]string{role}, isolationCustom, rt.Grant)
				switch {
				case !granted && code != 403:
					t.Errorf("%d %s, want 403: %s lacks grant %s", code, got, role, rt.Grant)
				case granted && hasID && !ownWrite(rt) && rt.Path != api.Prefix+"/secrets/{name}" && code != 404:
					t.Errorf("%d %s, want 404 for tenant main's id", code, got)
				case granted && rt.Path == api.Prefix+"/secrets/{name}" && rt.Method == "DELETE" && code != 404:
					t.Errorf("%d %s, want 404 for tenant main's secret", code, got)
				}
				for _, m := range a.markers {
					if strings.Contains(string(got), m) {
						t.Errorf("the answer holds %q of tenant main: %s", m, got)
					}
				}
			})
		}
		// A principal of tenant a without the route's grant.
		for _, role := range isolationRoles {
			if rt.Grant == "" || auth.Has([]string{role}, isolationCustom, rt.Grant) {
				continue
			}
			t.Run(fmt.Sprintf("own/%s/%s %s", role, rt.Method, rt.Path), func(t *testing.T) {
				if code, got := s.request(rt, path, a.tokens[role], reqBody); code != 403 {
					t.Errorf("%d %s, want 403: %s lacks grant %s", code, got, role, rt.Grant)
				}
			})
		}
		// Reads by tenant a's viewer (admin where needed) show nothing of b.
		if rt.Method == "GET" {
			role := pipeline.RoleViewer
			if rt.Grant != "" && !auth.Has([]string{role}, isolationCustom, rt.Grant) {
				role = pipeline.RoleTenantAdmin
				if !auth.Has([]string{role}, isolationCustom, rt.Grant) {
					role = pipeline.RoleOrganizationAdmin
				}
			}
			t.Run(fmt.Sprintf("own-read/%s %s", role, rt.Path), func(t *testing.T) {
				code, got := s.request(rt, path, a.tokens[role], nil)
				if code != 200 {
					t.Errorf("%d %s, want 200", code, got)
				}
				for _, m := range b.markers {
					if strings.Contains(string(got), m) {
						t.Errorf("tenant main's answer holds %q of tenant other: %s", m, got)
					}
				}
			})
		}
	}
	// Nothing above changed tenant main's pipeline or objects.
	var v api.PipelineView
	s.must(200, "GET", api.Prefix+"/pipelines/"+pipelineID, a.tokens[pipeline.RoleViewer], nil, &v)
	if v.Status != pipeline.StatusAwaitingApproval {
		t.Errorf("tenant main's pipeline is %s after the walk, want it still awaiting approval", v.Status)
	}
	var secretsList api.SecretList
	s.must(200, "GET", api.Prefix+"/secrets", a.tokens[pipeline.RoleTenantAdmin], nil, &secretsList)
	if len(secretsList.Secrets) != 1 || secretsList.Secrets[0].Name != "main-secret" {
		t.Errorf("tenant main's secrets after the walk: %+v", secretsList)
	}
}

// request sends one request of the walk; an event stream is read for a
// moment, then cut.
func (s *liveServer) request(rt api.Route, path, token string, body any) (int, []byte) {
	if !rt.Stream {
		return s.do(rt.Method, path, token, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, rt.Method, s.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", rt.Method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body) // ends with the context
	return resp.StatusCode, b
}
