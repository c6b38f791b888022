package server_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/server"
)

const policyApp = `version: v1
kind: kubernetes
application: guarded
targets:
  prod:
    account: local
    namespace: %s
    strategy: canary
strategies:
  canary:
    canary:
      steps:
        - setWeight: 50
        - pause:
            untilApproved: true
            approvals: 2
            notByStarter: true
        - setWeight: 100
manifests:
  - path: app.yaml
`

// TestApprovalPolicyOnARealServer tries to get around a two-person,
// four-eyes gate through the API of a real server on the local cluster:
// the starter's approval is refused, one person cannot approve twice, two
// others pass it and are both shown; then a rejection needs a reason and
// the approve grant, and rolls the target back.
func TestApprovalPolicyOnARealServer(t *testing.T) {
	srv := clienttest.Start(t, server.Config{DataDir: filepath.Join(t.TempDir(), "data"), Kubeconfig: kubetest.Cluster(t).Kubeconfig, Account: "local"})
	s := &liveServer{t: t, url: srv.URL}
	root := s.token(srv.Credentials.ClientID, srv.Credentials.ClientSecret, "")
	tokens := map[string]string{}
	for name, role := range map[string]string{"starter": pipeline.RoleDeployer, "ann": pipeline.RoleDeployer, "ben": pipeline.RoleDeployer, "vic": pipeline.RoleViewer} {
		var nc api.NewCredential
		s.must(201, "POST", api.Prefix+"/credentials", root, api.CreateCredentialRequest{Name: name, Roles: []string{role}}, &nc)
		tokens[name] = s.token(nc.ClientID, nc.ClientSecret, "")
	}
	ns := kubetest.Namespace(t)
	start := func(version string) string {
		var res api.StartResult
		s.must(202, "POST", api.Prefix+"/pipelines", tokens["starter"], api.StartRequest{
			FileName: "deploy.yml", File: fmt.Sprintf(policyApp, ns),
			Manifests: map[string]string{"app.yaml": kubetest.SampleApp("guarded", 2, "web:{{context.version}}")},
			Context:   map[string]string{"version": version},
		}, &res)
		return res.PipelineID
	}
	s.waitStatus(tokens["vic"], start("v1"), pipeline.StatusSucceeded)

	id := start("v2")
	s.waitStatus(tokens["vic"], id, pipeline.StatusAwaitingApproval)
	act := func(who, action, reason string) (int, string) {
		code, b := s.do("POST", api.Prefix+"/pipelines/"+id+"/"+action, tokens[who], api.ActionRequest{Target: "prod", Reason: reason})
		return code, string(b)
	}
	if code, b := act("starter", "approve", ""); code != 403 || !strings.Contains(b, "who started the pipeline") {
		t.Errorf("the starter approving its own deployment: %d %s, want 403", code, b)
	}
	if code, b := act("ann", "approve", ""); code != 200 || !strings.Contains(b, "1 more approval needed") {
		t.Errorf("a first approval: %d %s, want 200 and one more needed", code, b)
	}
	if code, b := act("ann", "approve", ""); code != 409 || !strings.Contains(b, "already approved") {
		t.Errorf("the same person approving twice: %d %s, want 409", code, b)
	}
	if code, b := act("vic", "approve", ""); code != 403 {
		t.Errorf("a viewer approving: %d %s, want 403", code, b)
	}
	if code, b := act("ben", "approve", ""); code != 200 {
		t.Fatalf("a second approver: %d %s, want 200", code, b)
	}
	s.waitStatus(tokens["vic"], id, pipeline.StatusSucceeded)
	var v api.PipelineView
	s.must(200, "GET", api.Prefix+"/pipelines/"+id, tokens["vic"], nil, &v)
	if got := fmt.Sprint(v); !strings.Contains(got, "approved by ann, ben") {
		t.Errorf("the pipeline does not say who approved:\n%s", got)
	}

	id = start("v3")
	s.waitStatus(tokens["vic"], id, pipeline.StatusAwaitingApproval)
	if code, b := act("ann", "reject", ""); code != 400 || !strings.Contains(b, "reason") {
		t.Errorf("a rejection without a reason: %d %s, want 400", code, b)
	}
	if code, b := act("vic", "reject", "no"); code != 403 {
		t.Errorf("a viewer rejecting: %d %s, want 403", code, b)
	}
	if code, b := act("starter", "reject", "found a bug"); code != 200 {
		t.Fatalf("the starter rejecting: %d %s, want 200", code, b)
	}
	s.waitStatus(tokens["vic"], id, pipeline.StatusFailed)
	s.must(200, "GET", api.Prefix+"/pipelines/"+id, tokens["vic"], nil, &v)
	if got := fmt.Sprint(v); !strings.Contains(got, "rejected by") || !strings.Contains(got, "found a bug") {
		t.Errorf("the rolled-back pipeline does not say who rejected it and why:\n%s", got)
	}
	var audit api.AuditList
	s.must(200, "GET", api.Prefix+"/audit?action=pipeline.reject", root, nil, &audit)
	if len(audit.Entries) != 1 {
		t.Errorf("rejections in the audit log: %+v, want the one accepted", audit.Entries)
	}
}
