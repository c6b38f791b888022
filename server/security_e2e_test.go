package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/cli"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/server"
)

// TestApprovalRoles: on a gate that requires release-manager, a viewer is
// refused by the API (403, no grant), a deployer by the engine (403, names
// the role), an admin approves; then through the CLI the same way. The
// audit log says who did what, with ids and no value.
func TestApprovalRoles(t *testing.T) {
	s, a, _, id := newIsolationWorld(t)
	approve := func(role string) (int, string) {
		code, b := s.do("POST", api.Prefix+"/pipelines/"+id+"/approve", a.tokens[role], api.ActionRequest{Target: "staging"})
		return code, string(b)
	}
	if code, b := approve(pipeline.RoleViewer); code != 403 {
		t.Errorf("viewer approving: %d %s, want 403", code, b)
	}
	if code, b := approve(pipeline.RoleAgent); code != 403 {
		t.Errorf("agent approving: %d %s, want 403", code, b)
	}
	if code, b := approve(pipeline.RoleDeployer); code != 403 || !strings.Contains(b, "release-manager") {
		t.Errorf("deployer approving a gate that requires release-manager: %d %s, want 403 naming the role", code, b)
	}
	code, b := approve(pipeline.RoleTenantAdmin)
	if code != 200 {
		t.Fatalf("tenant admin approving: %d %s, want 200", code, b)
	}
	t.Logf("approved: %s", b)
	s.waitStatus(a.tokens[pipeline.RoleViewer], id, pipeline.StatusSucceeded)

	// The same through the CLI, on a second canary.
	id2 := s.startApproval(a.tokens[pipeline.RoleDeployer], "second-app", kubetest.Namespace(t))
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CI", "true")
	t.Setenv("SORTIE_SERVER", s.url)
	for _, k := range []string{"SORTIE_CONFIG", "SORTIE_CLIENT_ID", "SORTIE_CLIENT_SECRET", "ARMORY_CLIENT_ID", "ARMORY_CLIENT_SECRET"} {
		t.Setenv(k, "")
	}
	sortie := func(role string, args ...string) (int, string) {
		t.Setenv("SORTIE_TOKEN", a.tokens[role])
		var out, errOut bytes.Buffer
		code := cli.Main(t.Context(), args, cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		return code, out.String() + errOut.String()
	}
	if code, out := sortie(pipeline.RoleViewer, "deploy", "approve", id2, "--target", "staging"); code == 0 || !strings.Contains(out, "roles do not allow") {
		t.Errorf("sortie deploy approve as a viewer: exit %d\n%s", code, out)
	}
	if code, out := sortie(pipeline.RoleDeployer, "deploy", "approve", id2, "--target", "staging"); code == 0 || !strings.Contains(out, "release-manager") {
		t.Errorf("sortie deploy approve as a deployer: exit %d\n%s", code, out)
	}
	if code, out := sortie(pipeline.RoleOrganizationAdmin, "deploy", "approve", id2, "--target", "staging"); code != 0 || !strings.Contains(out, "Approved") {
		t.Errorf("sortie deploy approve as an organization admin: exit %d\n%s", code, out)
	}
	s.waitStatus(a.tokens[pipeline.RoleViewer], id2, pipeline.StatusSucceeded)

	var audit api.AuditList
	s.must(200, "GET", api.Prefix+"/audit?action=pipeline.approve", a.tokens[pipeline.RoleTenantAdmin], nil, &audit)
	if len(audit.Entries) != 2 || audit.Entries[1].ClientID != a.clients[pipeline.RoleTenantAdmin] ||
		audit.Entries[0].ClientID != a.clients[pipeline.RoleOrganizationAdmin] || audit.Entries[1].Objects[0] != id || audit.Entries[1].Remote != "127.0.0.1" {
		t.Errorf("approvals in the audit log: %+v", audit.Entries)
	}
	code, out := sortie(pipeline.RoleTenantAdmin, "audit", "-o", "json")
	if code != 0 {
		t.Fatalf("sortie audit: exit %d\n%s", code, out)
	}
	if err := json.Unmarshal([]byte(out), &audit); err != nil {
		t.Fatalf("sortie audit -o json: %v\n%s", err, out)
	}
	seen := map[string]bool{}
	for _, e := range audit.Entries {
		seen[e.Action] = true
	}
	for _, action := range []string{"login", "credential.create", "secret.put", "provider.create", "pipeline.start", "pipeline.approve"} {
		if !seen[action] {
			t.Errorf("sortie audit shows no %s:\n%s", action, out)
		}
	}
	if strings.Contains(out, "main-secret-value-do-not-show") {
		t.Errorf("the audit log holds a secret value:\n%s", out)
	}
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

const leakyApp = `version: v1
kind: kubernetes
application: leaky
targets:
  staging:
    account: local
    namespace: %[1]s
    strategy: canary
strategies:
  canary:
    canary:
      steps:
        - setWeight: 50
        - runWebhook: {name: notify}
        - setWeight: 100
webhooks:
  - name: notify
    method: POST
    uriTemplate: http://127.0.0.1:1/{{secrets.hook-token}}/run?key={{secrets.hook-token}}
    headers:
      - key: Authorization
        value: Bearer {{secrets.hook-token}}
    bodyTemplate:
      inline: '{"token": "{{secrets.hook-token}}"}'
    retryCount: 1
    disableCallback: true
manifests:
  - path: app.yaml
`

// TestSecretNeverLeaks sets a secret, runs a deployment whose webhook puts
// it in the URL, a header and the body and fails (nothing listens), and
// finds the value in no log line, event, pipeline view, audit entry or
// API answer.
func TestSecretNeverLeaks(t *testing.T) {
	t.Parallel()
	var log syncBuffer
	srv := clienttest.Start(t, server.Config{
		DataDir: filepath.Join(t.TempDir(), "data"), Kubeconfig: kubetest.Cluster(t).Kubeconfig, Account: "local",
		Log: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	s := &liveServer{t: t, url: srv.URL}
	admin := s.token(srv.Credentials.ClientID, srv.Credentials.ClientSecret, "")
	const value = "s3cr3t-hook-token-9f8e7d"
	s.must(200, "PUT", api.Prefix+"/secrets/hook-token", admin, api.PutSecretRequest{Value: value}, nil)
	ns := kubetest.Namespace(t)
	var answers []string
	var ids []string
	for _, version := range []string{"v1", "v2"} {
		var res api.StartResult
		code, b := s.do("POST", api.Prefix+"/pipelines", admin, api.StartRequest{
			FileName: "deploy.yml", File: fmt.Sprintf(leakyApp, ns),
			Manifests: map[string]string{"app.yaml": fmt.Sprintf(isolationManifest, "leaky")},
			Context:   map[string]string{"version": version},
		})
		answers = append(answers, string(b))
		if code != 202 || json.Unmarshal(b, &res) != nil {
			t.Fatalf("start %s: %d %s", version, code, b)
		}
		ids = append(ids, res.PipelineID)
		if version == "v1" {
			s.waitStatus(admin, res.PipelineID, pipeline.StatusSucceeded)
		}
	}
	// The failed webhook rolls the canary back; the pipeline ends.
	for i := 0; ; i++ {
		var v api.PipelineView
		s.must(200, "GET", api.Prefix+"/pipelines/"+ids[1], admin, nil, &v)
		if v.Status.Terminal() {
			break
		}
		if i > 2400 {
			t.Fatalf("pipeline %s did not end: %s", ids[1], v.Status)
		}
		s.sleep()
	}
	for _, path := range []string{
		"/pipelines/" + ids[1], "/pipelines/" + ids[1] + "/events", "/pipelines/" + ids[1] + "/source",
		"/pipelines", "/secrets", "/audit", "/providers", "/credentials",
		"/pipelines/" + ids[1] + "/approve", // an error answer
	} {
		method := "GET"
		if strings.HasSuffix(path, "/approve") {
			method = "POST"
		}
		_, b := s.do(method, api.Prefix+path, admin, nil)
		answers = append(answers, string(b))
	}
	all := strings.Join(answers, "\n")
	if !strings.Contains(all, "hook-token") {
		t.Errorf("the answers never name the secret: was the webhook rendered?\n%s", all)
	}
	if strings.Contains(all, value) {
		t.Errorf("an API answer holds the secret's value:\n%s", all)
	}
	if strings.Contains(log.String(), value) {
		t.Errorf("the server log holds the secret's value:\n%s", log.String())
	}
}
