package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/cli"
	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/kubetest"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/server"
)

const restoreApp = `version: v1
kind: kubernetes
application: shop
targets:
  prod:
    account: local
    namespace: %s
    strategy: canary
    constraints:
      afterDeployment:
        - pause: {untilApproved: true}
strategies:
  canary:
    canary:
      steps:
        - setWeight: 50
        - pause: {untilApproved: true}
        - setWeight: 100
manifests:
  - path: app.yaml
`

// TestRollbackAfterSuccess rolls a SUCCEEDED target back on a real server
// and cluster: a new pipeline puts the version before it back without its
// canary or its gates (both wait for approvals, so running either would
// hang the test), and a rollback --to goes to any stored version.
func TestRollbackAfterSuccess(t *testing.T) {
	srv := clienttest.Start(t, server.Config{DataDir: filepath.Join(t.TempDir(), "data"), Kubeconfig: kubetest.Cluster(t).Kubeconfig, Account: "local"})
	s := &liveServer{t: t, url: srv.URL}
	root := s.token(srv.Credentials.ClientID, srv.Credentials.ClientSecret, "")
	ns := kubetest.Namespace(t)
	deploy := func(version string) string {
		var res api.StartResult
		s.must(202, "POST", api.Prefix+"/pipelines", root, api.StartRequest{
			FileName: "deploy.yml", File: fmt.Sprintf(restoreApp, ns),
			Manifests: map[string]string{"app.yaml": kubetest.SampleApp("shop", 3, "shop:{{context.version}}")},
			Context:   map[string]string{"version": version},
		}, &res)
		return res.PipelineID
	}
	approveAll := func(id string) {
		for {
			var v api.PipelineView
			s.must(200, "GET", api.Prefix+"/pipelines/"+id, root, nil, &v)
			if v.Status == pipeline.StatusSucceeded {
				return
			}
			if v.Status == pipeline.StatusAwaitingApproval {
				s.must(200, "POST", api.Prefix+"/pipelines/"+id+"/approve", root, api.ActionRequest{Target: "prod"}, nil)
				continue
			}
			clienttest.WaitPipeline(t, s.client(root), id, "it waits or succeeds", func(p *api.PipelineView) bool {
				return p.Status == pipeline.StatusAwaitingApproval || p.Status == pipeline.StatusSucceeded
			})
		}
	}
	v1 := deploy("v1")
	approveAll(v1)
	v2 := deploy("v2")
	approveAll(v2)
	if got := kubetest.ReadyByImage(t, ns); got["shop:v2"] != 3 || len(got) != 1 {
		t.Fatalf("after v2: %v", got)
	}

	if code, b := s.do("POST", api.Prefix+"/pipelines/"+v2+"/restore", root, api.RestoreRequest{Targets: []string{"prod"}, Previous: true}); code != 400 || !strings.Contains(string(b), "reason") {
		t.Errorf("a rollback after success without a reason: %d %s, want 400", code, b)
	}
	if code, b := s.do("POST", api.Prefix+"/pipelines/"+v1+"/restore", root, api.RestoreRequest{Targets: []string{"prod"}, Previous: true, Reason: "x"}); code != 409 || !strings.Contains(string(b), "no earlier version") {
		t.Errorf("rolling back the first version: %d %s, want 409", code, b)
	}

	begin := time.Now()
	var res api.StartResult
	s.must(202, "POST", api.Prefix+"/pipelines/"+v2+"/restore", root, api.RestoreRequest{Targets: []string{"prod"}, Previous: true, Reason: "checkout errors"}, &res)
	s.waitStatus(root, res.PipelineID, pipeline.StatusSucceeded)
	t.Logf("rollback of a SUCCEEDED target (no warm previous version, 3 pods): %s from the request to the pipeline SUCCEEDED", time.Since(begin).Round(time.Millisecond))
	if got := kubetest.ReadyByImage(t, ns); got["shop:v1"] != 3 || len(got) != 1 {
		t.Errorf("after the rollback of v2: %v, want shop:v1 ×3", got)
	}
	var v api.PipelineView
	s.must(200, "GET", api.Prefix+"/pipelines/"+res.PipelineID, root, nil, &v)
	if v.Spec.Restores != v1 || v.Spec.Reason != "checkout errors" {
		t.Errorf("the rollback pipeline restores %q because %q, want %s and the reason", v.Spec.Restores, v.Spec.Reason, v1)
	}

	// Through the CLI: a SUCCEEDED target without --reason is refused;
	// --to goes back to any stored version, here v2 again.
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CI", "true")
	t.Setenv("SORTIE_SERVER", s.url)
	t.Setenv("SORTIE_TOKEN", root)
	for _, k := range []string{"SORTIE_CONFIG", "SORTIE_CLIENT_ID", "SORTIE_CLIENT_SECRET", "ARMORY_CLIENT_ID", "ARMORY_CLIENT_SECRET"} {
		t.Setenv(k, "")
	}
	sortie := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := cli.Main(t.Context(), args, cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		return code, out.String(), errOut.String()
	}
	if code, out, errOut := sortie("deploy", "rollback", v2, "--target", "prod"); code == 0 || !strings.Contains(errOut, "--reason") {
		t.Errorf("sortie deploy rollback of a SUCCEEDED target without --reason: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := sortie("deploy", "rollback", "--to", v2, "--target", "prod", "--reason", "the fix was elsewhere", "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.PipelineID == "" {
		t.Fatalf("sortie deploy rollback --to: exit %d\n%s%s", code, out, errOut)
	}
	s.waitStatus(root, res.PipelineID, pipeline.StatusSucceeded)
	if got := kubetest.ReadyByImage(t, ns); got["shop:v2"] != 3 || len(got) != 1 {
		t.Errorf("after rollback --to v2: %v, want shop:v2 ×3", got)
	}
	var audit api.AuditList
	s.must(200, "GET", api.Prefix+"/audit?action=pipeline.restore", root, nil, &audit)
	if len(audit.Entries) < 2 {
		t.Errorf("restores in the audit log: %+v", audit.Entries)
	}
}
