package deployfile

import (
	"encoding/json"
	"strings"
	"testing"
)

// Keys of Armory's deployment-file schema (its pipeline request:
// armory-io/armory-cli's CUE schema) that files written for Armory carry.

const analysisStrategy = `strategies:
  s1:
    canary:
      steps:
        - analysis:
            interval: 1
            units: minutes
            numberOfJudgmentRuns: 3
            abortOnFailedJudgment: %s
            queries: [q]
analysis:
  defaultMetricProviderName: prom
  queries:
    - name: q
      queryTemplate: up
      upperLimit: 1
`

func TestAbortOnFailedJudgment(t *testing.T) {
	for _, v := range []string{"true", "false"} {
		res := Parse("deploy.yml", []byte(head+strings.Replace(analysisStrategy, "%s", v, 1)))
		if err := res.Err(); err != nil {
			t.Fatalf("abortOnFailedJudgment: %s refused: %v", v, err)
		}
		a := res.File.Strategies.Get("s1").Canary.Steps[0].Analysis
		if a.AbortOnFailedJudgment != (v == "true") {
			t.Errorf("abortOnFailedJudgment: %s read as %v", v, a.AbortOnFailedJudgment)
		}
		// The step's JSON is what the analysis executor receives.
		b, _ := json.Marshal(a)
		if strings.Contains(string(b), `"abortOnFailedJudgment":true`) != (v == "true") {
			t.Errorf("abortOnFailedJudgment: %s sent as %s", v, b)
		}
	}
	res := Parse("deploy.yml", []byte(head+strings.Replace(analysisStrategy, "%s", "yes please", 1)))
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), "deploy.yml:19:36: ") || !strings.Contains(err.Error(), `abortOnFailedJudgment must be true or false, not "yes please"`) {
		t.Errorf("a non-boolean abortOnFailedJudgment: %v", err)
	}
}
