package server_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/server"
)

// walkGrants is what each role of the walk holds, written out here rather
// than read from package auth, so the walk checks the rule and not the
// code's own table.
var walkGrants = map[string][]string{
	pipeline.RoleOrganizationAdmin: {"read", "deploy", "approve", "admin", "organization"},
	pipeline.RoleTenantAdmin:       {"read", "deploy", "approve", "admin"},
	"ops-admin":                    {"read", "admin"}, // a custom admin role
	pipeline.RoleDeployer:          {"read", "deploy", "approve"},
	pipeline.RoleViewer:            {"read"},
	pipeline.RoleAgent:             {"agent"},
}

// walkCovers is the subset rule: every grant of want is held, agent
// counting as held by an admin.
func walkCovers(have, want string) bool {
	for _, g := range walkGrants[want] {
		if !slices.Contains(walkGrants[have], g) && (g != "agent" || !slices.Contains(walkGrants[have], "admin")) {
			return false
		}
	}
	return true
}

// TestPrincipalRoutesFollowTheSubsetRule walks every credential and user
// route of api.Routes() on a real server with a caller in each role
// (organization admin, tenant admin, a custom admin, deployer, viewer) on
// a fresh target in each role (and the agent role): a caller without the
// admin grant gets 403 everywhere; an admin may create, change, reset or
// delete a principal, and give a role, only when the target's grants are
// a subset of its own (403 otherwise); the bootstrap credential is beyond
// every caller but an organization admin. Afterwards every refused target
// is as it was.
func TestPrincipalRoutesFollowTheSubsetRule(t *testing.T) {
	t.Parallel()
	srv := clienttest.Start(t, server.Config{DataDir: filepath.Join(t.TempDir(), "data")})
	s := &liveServer{t: t, url: srv.URL}
	root := s.token(srv.Credentials.ClientID, srv.Credentials.ClientSecret, "")
	s.must(200, "PUT", api.Prefix+"/config", root, api.Config{Tenants: []api.TenantConfig{{Name: "main",
		Roles: []api.RoleConfig{{Name: "ops-admin", Grants: walkGrants["ops-admin"]}}}}}, nil)

	callers := []string{pipeline.RoleOrganizationAdmin, pipeline.RoleTenantAdmin, "ops-admin", pipeline.RoleDeployer, pipeline.RoleViewer}
	targets := append(slices.Clone(callers), pipeline.RoleAgent)
	tokens := map[string]string{}
	for _, role := range callers {
		var nc api.NewCredential
		s.must(201, "POST", api.Prefix+"/credentials", root, api.CreateCredentialRequest{Name: "caller " + role, Roles: []string{role}}, &nc)
		tokens[role] = s.token(nc.ClientID, nc.ClientSecret, "")
	}
	// want is what each target made for the walk must hold at the end:
	// its roles, or nil once deleted. Keyed by kind, then id.
	want := map[string]map[string][]string{"credentials": {}, "users": {}}
	n := 0
	fresh := func(kind, role string) string {
		n++
		var id string
		if kind == "users" {
			id = fmt.Sprintf("target-%d", n)
			s.must(201, "POST", api.Prefix+"/users", root, api.CreateUserRequest{Username: id, Roles: []string{role}}, nil)
		} else {
			var nc api.NewCredential
			s.must(201, "POST", api.Prefix+"/credentials", root, api.CreateCredentialRequest{Name: fmt.Sprintf("target %d", n), Roles: []string{role}}, &nc)
			id = nc.ClientID
		}
		want[kind][id] = []string{role}
		return id
	}
	type request struct {
		path string
		body any
		// allowed: the caller may; then, done records the change.
		allowed bool
		done    func()
	}
	walked := 0
	for _, rt := range api.Routes() {
		var kind string
		switch {
		case strings.HasPrefix(rt.Path, api.Prefix+"/credentials"):
			kind = "credentials"
		case strings.HasPrefix(rt.Path, api.Prefix+"/users"):
			kind = "users"
		default:
			continue
		}
		base := api.Prefix + "/" + kind
		walked++
		for _, caller := range callers {
			admin := slices.Contains(walkGrants[caller], "admin")
			for _, target := range targets {
				var reqs []request
				switch {
				case rt.Method == "GET" && rt.Path == base:
					if target != targets[0] {
						continue
					}
					reqs = []request{{path: base, allowed: admin}}
				case rt.Method == "POST" && rt.Path == base:
					n++
					var body any = api.CreateCredentialRequest{Name: fmt.Sprintf("made %d", n), Roles: []string{target}}
					if kind == "users" {
						body = api.CreateUserRequest{Username: fmt.Sprintf("made-%d", n), Roles: []string{target}}
					}
					reqs = []request{{path: base, body: body, allowed: admin && walkCovers(caller, target)}}
				case rt.Method == "DELETE" && strings.HasPrefix(rt.Path, base+"/{"):
					id := fresh(kind, target)
					reqs = []request{{path: base + "/" + id, allowed: admin && walkCovers(caller, target), done: func() { want[kind][id] = nil }}}
				case rt.Method == "PUT" && strings.HasSuffix(rt.Path, "}/roles"):
					// Acting on the target (demoting it to viewer), and
					// giving the target's role (to a viewer).
					demote, raise := fresh(kind, target), fresh(kind, pipeline.RoleViewer)
					reqs = []request{
						{path: base + "/" + demote + "/roles", body: api.SetRolesRequest{Roles: []string{pipeline.RoleViewer}},
							allowed: admin && walkCovers(caller, target), done: func() { want[kind][demote] = []string{pipeline.RoleViewer} }},
						{path: base + "/" + raise + "/roles", body: api.SetRolesRequest{Roles: []string{target}},
							allowed: admin && walkCovers(caller, target), done: func() { want[kind][raise] = []string{target} }},
					}
				case rt.Method == "PUT" && strings.HasSuffix(rt.Path, "}/password"):
					id := fresh(kind, target)
					reqs = []request{{path: base + "/" + id + "/password", body: api.SetPasswordRequest{Password: "the caller's chosen password"}, allowed: admin && walkCovers(caller, target)}}
				default:
					t.Fatalf("%s %s is not walked: say what the subset rule means for it here", rt.Method, rt.Path)
				}
				for _, req := range reqs {
					t.Run(fmt.Sprintf("%s on %s/%s %s", caller, target, rt.Method, req.path), func(t *testing.T) {
						code, b := s.do(rt.Method, req.path, tokens[caller], req.body)
						switch {
						case req.allowed && code >= 300:
							t.Errorf("%d %s, want 2xx: %s holds every grant of %s", code, b, caller, target)
						case !req.allowed && code != 403:
							t.Errorf("%d %s, want 403", code, b)
						case req.allowed && req.done != nil:
							req.done()
						}
					})
				}
			}
		}
		// The bootstrap credential: only an organization admin touches it.
		if kind == "credentials" && rt.Method != "GET" && rt.Method != "POST" {
			path := base + "/" + srv.Credentials.ClientID
			var body any
			if strings.HasSuffix(rt.Path, "/roles") {
				path, body = path+"/roles", api.SetRolesRequest{Roles: []string{pipeline.RoleViewer}}
			}
			for _, caller := range callers[1:] {
				if code, b := s.do(rt.Method, path, tokens[caller], body); code != 403 {
					t.Errorf("%s: %s %s on the bootstrap credential: %d %s, want 403", caller, rt.Method, rt.Path, code, b)
				}
			}
		}
	}
	if walked != 9 {
		t.Errorf("walked %d credential and user routes, want the 9 of today's table (update this when a route is added)", walked)
	}

	// Every target is as the allowed requests left it.
	for kind, ids := range want {
		code, b := s.do("GET", api.Prefix+"/"+kind, root, nil)
		var list map[string][]struct {
			Username, ClientID string
			Roles              []string
		}
		if err := json.Unmarshal(b, &list); err != nil || code != 200 {
			t.Fatalf("list %s: %d %v", kind, code, err)
		}
		got := map[string][]string{}
		for _, p := range list[kind] {
			got[p.Username+p.ClientID] = p.Roles
		}
		for id, roles := range ids {
			if r, ok := got[id]; !slices.Equal(r, roles) || ok != (roles != nil) {
				t.Errorf("%s %s after the walk: roles %v (present %v), want %v", kind, id, r, ok, roles)
			}
		}
		if r := got[srv.Credentials.ClientID]; kind == "credentials" && !slices.Equal(r, []string{pipeline.RoleOrganizationAdmin}) {
			t.Errorf("the bootstrap credential after the walk: %v", r)
		}
	}
}
