package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/kubetest"
)

const deliveredApp = `version: v1
kind: kubernetes
application: delivered
targets:
  prod:
    account: local
    namespace: %s
    strategy: straight
strategies:
  straight:
    canary:
      steps:
        - setWeight: 100
manifests:
  - inline: |
%s`

// TestDeliveryCLI deploys an application twice on a real server and the
// local cluster and reads its DORA figures with sortie delivery, as a
// table and as the API's JSON; a bad time is a usage error.
func TestDeliveryCLI(t *testing.T) {
	e := newE2E(t)
	e.ok("login", "--credentials-file", e.credsAt)
	file := filepath.Join(e.dir, "deploy.yml")
	for _, version := range []string{"v1", "v2"} {
		if err := os.WriteFile(file, []byte(fmt.Sprintf(deliveredApp, e.ns, kubetest.Inline(kubetest.SampleApp("delivered", 1, "web:"+version)))), 0o644); err != nil {
			t.Fatal(err)
		}
		e.ok("deploy", "start", "-f", file, "--watch")
	}
	out := e.ok("delivery", "--days", "1").out
	if !regexp.MustCompile(`(?m)^delivered +prod +2 +0 +2\.00 +\S+ +0% +- +0$`).MatchString(out) || !strings.Contains(out, "lead time from: pipeline created") {
		t.Errorf("sortie delivery:\n%s", out)
	}
	rep := decode[api.DoraReport](t, e.ok("delivery", "--application", "delivered", "-o", "json"))
	if len(rep.Rows) != 1 || rep.Rows[0].Deployments != 2 || rep.Rows[0].LeadTimeSeconds <= 0 || rep.Days != 30 {
		t.Errorf("sortie delivery -o json: %+v", rep)
	}
	if r := e.exit(ExitUsage, "delivery", "--since", "yesterday"); !strings.Contains(r.errOut, "RFC 3339") {
		t.Errorf("a bad --since: %s", r.errOut)
	}
	if r := e.run("delivery", "--days", "400"); r.code == ExitOK || !strings.Contains(r.errOut, "days must be a whole number from 1 to 366") {
		t.Errorf("400 days: exit %d %s", r.code, r.errOut)
	}
}
