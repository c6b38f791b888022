package console_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/sortie-cd/sortie/kubetest"
)

// TestRollbackAfterSuccessFromThePipelinePage rolls a SUCCEEDED target
// back from its pipeline's page (to the version before, with a reason),
// then goes back to that pipeline's version with "roll back to this
// version" (rollback --to): each is a new pipeline the page leads to,
// and the cluster runs the version it restored.
func TestRollbackAfterSuccessFromThePipelinePage(t *testing.T) {
	s := startServer(t)
	ctx := browser(t)
	const straight = "        - setWeight: 100\n"
	v1 := s.deploy("shop", "shop:v1", straight)
	s.waitAPI(v1, "SUCCEEDED")
	v2 := s.deploy("shop", "shop:v2", straight)
	s.waitAPI(v2, "SUCCEEDED")

	login(t, ctx, s, s.adminID, s.adminSK)
	do(t, ctx, "open the SUCCEEDED pipeline", chromedp.Navigate(s.url+"/pipelines/"+v2+"?target=staging"), chromedp.WaitVisible(chromedp.CSS("#detail")))
	do(t, ctx, "open the rollback form",
		chromedp.Click(chromedp.CSS("summary[data-action=restore-open]")),
		chromedp.WaitVisible(chromedp.CSS("details.ask input#reason-restore-staging-")),
		chromedp.SendKeys(chromedp.CSS("details.ask input#reason-restore-staging-"), "checkout errors"),
	)
	do(t, ctx, "roll back", clickLoad("button[data-action=restore]"), chromedp.WaitVisible(chromedp.CSS("#flash")))
	if got := text(t, ctx, "#flash"); !strings.HasPrefix(got, "Rolling back as pipeline") {
		t.Errorf("after the rollback the page says %q", got)
	}
	waitFor(t, ctx, "the rollback pipeline succeeded", `!!document.querySelector('.live-meta[data-status=SUCCEEDED]')`)
	if got := kubetest.ReadyByImage(t, s.ns); got["shop:v1"] != 4 || len(got) != 1 {
		t.Errorf("pods after the rollback from the console: %v, want 4 of shop:v1", got)
	}

	do(t, ctx, "open the rolled-back pipeline", chromedp.Navigate(s.url+"/pipelines/"+v2), chromedp.WaitVisible(chromedp.CSS("summary[data-action=restore-to-open]")))
	do(t, ctx, "open the roll back --to form",
		chromedp.Click(chromedp.CSS("summary[data-action=restore-to-open]")),
		chromedp.WaitVisible(chromedp.CSS("details.ask input#reason-restore-to--")),
		chromedp.SendKeys(chromedp.CSS("details.ask input#reason-restore-to--"), "the fix was elsewhere"),
	)
	do(t, ctx, "roll back to it", clickLoad("button[data-action=restore-to]"), chromedp.WaitVisible(chromedp.CSS("#flash")))
	waitFor(t, ctx, "the rollback --to pipeline succeeded", `!!document.querySelector('.live-meta[data-status=SUCCEEDED]')`)
	if got := kubetest.ReadyByImage(t, s.ns); got["shop:v2"] != 4 || len(got) != 1 {
		t.Errorf("pods after roll back --to from the console: %v, want 4 of shop:v2", got)
	}
	logout(t, ctx)

	// A viewer sees both, disabled, with why.
	var cred struct {
		ClientID     string `json:"clientId"`
		ClientSecret string `json:"clientSecret"`
	}
	s.call("POST", "/api/v1/credentials", map[string]any{"name": "dashboard", "roles": []string{"viewer"}}, &cred)
	login(t, ctx, s, cred.ClientID, cred.ClientSecret)
	do(t, ctx, "open the pipeline as a viewer", chromedp.Navigate(s.url+"/pipelines/"+v2+"?target=staging"), chromedp.WaitVisible(chromedp.CSS("#detail")))
	for _, a := range []string{"restore", "restore-to"} {
		waitFor(t, ctx, a+" disabled", `document.querySelector('button[data-action="`+a+`"]').disabled`)
		if got := text(t, ctx, `[data-reason="`+a+`"]`); !strings.Contains(got, "may not act") {
			t.Errorf("%s's reason for a viewer is %q", a, got)
		}
	}
}
