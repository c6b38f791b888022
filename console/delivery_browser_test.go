package console_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/sortie-cd/sortie/api"
)

// TestDeliveryFiguresAndNewSubscription deploys web to staging three
// times on a real server (a success, a rejection that rolls it back, a
// success that restores it) and reads the DORA figures in the console, for
// the last days and for a period without deployments; then adds a
// notification subscription with the form, and sees a sink the API's
// checks refuse refused in words, the form kept.
func TestDeliveryFiguresAndNewSubscription(t *testing.T) {
	s := startServer(t)
	ctx := browser(t)
	const gated = `        - setWeight: 50
        - pause: {untilApproved: true}`
	s.waitAPI(s.deploy("web", "web:v1", gated), "SUCCEEDED") // a first deployment: straight to 100 %
	id := s.deploy("web", "web:v2", gated)
	s.waitAPI(id, "AWAITING_APPROVAL")
	s.call("POST", api.Prefix+"/pipelines/"+id+"/reject", api.ActionRequest{Target: "staging", Reason: "found a bug"}, nil)
	s.waitAPI(id, "FAILED")
	s.waitAPI(s.deploy("web", "web:v3", "        - setWeight: 100"), "SUCCEEDED")
	var rep api.DoraReport
	s.call("GET", api.Prefix+"/dora?days=7", nil, &rep)
	if len(rep.Rows) != 1 || rep.Rows[0].Deployments != 2 || rep.Rows[0].Failures != 1 || rep.Rows[0].Restored != 1 {
		t.Fatalf("GET /api/v1/dora: %+v, want web/staging with 2 deployments, 1 failure, restored", rep.Rows)
	}

	login(t, ctx, s, s.adminID, s.adminSK)
	row := `#dora tr[data-application=web][data-target=staging] `
	do(t, ctx, "open the delivery page", clickLoad(`a[href="/delivery"]`), chromedp.WaitVisible(chromedp.CSS("#dora")))
	for measure, want := range map[string]string{"deployments": "2 ok, 1 failed", "change-failure-rate": "33%"} {
		if got := text(t, ctx, row+`[data-measure=`+measure+`]`); got != want {
			t.Errorf("%s shows %q, want %q", measure, got, want)
		}
	}
	for _, measure := range []string{"lead-time", "time-to-restore", "frequency"} {
		if got := text(t, ctx, row+`[data-measure=`+measure+`]`); got == "" || got == "–" || strings.Contains(got, "not restored") {
			t.Errorf("%s shows %q, want a figure", measure, got)
		}
	}
	screenshot(t, ctx, "delivery.png", "")
	do(t, ctx, "choose a past period",
		chromedp.SetValue(chromedp.CSS("#d-from"), "2020-01-01"),
		chromedp.SetValue(chromedp.CSS("#d-to"), "2020-01-31"),
		clickLoad("#delivery-show"),
		chromedp.WaitVisible(chromedp.CSS("#no-deliveries-figures")),
	)
	if got := text(t, ctx, "#delivery-period-shown"); !strings.Contains(got, "2020-01-01 00:00:00Z") || !strings.Contains(got, "2020-02-01 00:00:00Z") {
		t.Errorf("the period shown is %q, want 2020-01-01 to 2020-02-01 (the last day included)", got)
	}
	do(t, ctx, "a period that ends before it starts",
		chromedp.SetValue(chromedp.CSS("#d-from"), "2020-02-01"),
		chromedp.SetValue(chromedp.CSS("#d-to"), "2020-01-01"),
		clickLoad("#delivery-show"),
		chromedp.WaitVisible(chromedp.CSS("#delivery-error")),
	)
	if got := text(t, ctx, "#delivery-error"); !strings.Contains(got, "not before its end") {
		t.Errorf("a reversed period shows %q", got)
	}

	// A subscription through the form.
	do(t, ctx, "add a webhook subscription",
		clickLoad(`a[href="/settings/notifications"]`),
		chromedp.WaitVisible(chromedp.CSS("#subscription-form")),
		chromedp.SendKeys(chromedp.CSS("#sub-id"), "team-hook"),
		chromedp.SendKeys(chromedp.CSS("#sub-app"), "web"),
		chromedp.Click(chromedp.CSS("input[data-event=succeeded]")),
		chromedp.Click(chromedp.CSS("input[data-event=failed]")),
		chromedp.SetValue(chromedp.CSS("#sub-type"), "webhook"),
		chromedp.SendKeys(chromedp.CSS("#sub-url"), "http://127.0.0.1:9/hook"),
		clickLoad("button[data-action=add-subscription]"),
		chromedp.WaitVisible(chromedp.CSS("#flash")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-subscription=team-hook]`)),
	)
	if got := text(t, ctx, `tr[data-subscription=team-hook]`); !strings.Contains(got, "succeeded, failed") || !strings.Contains(got, "webhook") || !strings.Contains(got, "127.0.0.1:9/hook") {
		t.Errorf("the new subscription shows %q", got)
	}
	var subs api.SubscriptionList
	s.call("GET", api.Prefix+"/notifications", nil, &subs)
	if len(subs.Subscriptions) != 1 || subs.Subscriptions[0].Application != "web" || strings.Join(subs.Subscriptions[0].Events, ",") != "succeeded,failed" {
		t.Errorf("the API lists %+v, want team-hook for web on succeeded and failed", subs.Subscriptions)
	}

	do(t, ctx, "a Slack sink with its URL in the open",
		chromedp.SendKeys(chromedp.CSS("#sub-id"), "slack-open"),
		chromedp.Click(chromedp.CSS("input[data-event=failed]")),
		chromedp.SetValue(chromedp.CSS("#sub-type"), "slack"),
		chromedp.SendKeys(chromedp.CSS("#sub-url"), "https://hooks.slack.com/services/T0/B0/x"),
		clickLoad("button[data-action=add-subscription]"),
		chromedp.WaitVisible(chromedp.CSS("#subscription-error")),
	)
	if got := text(t, ctx, "#subscription-error"); !strings.Contains(got, "embeds its token") {
		t.Errorf("the refusal shows %q, want the API's reason", got)
	}
	kept, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#sub-id').value + ' ' + document.querySelector('input[data-event=failed]').checked + ' ' + document.querySelector('#sub-type').value`))
	if err != nil || kept != "slack-open true slack" {
		t.Errorf("the form after the refusal holds %q (%v), want what was sent", kept, err)
	}
	do(t, ctx, "no event chosen",
		chromedp.Click(chromedp.CSS("input[data-event=failed]")),
		chromedp.SetValue(chromedp.CSS("#sub-type"), "webhook"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#sub-url').value = 'http://127.0.0.1:9/other'`),
		clickLoad("button[data-action=add-subscription]"),
		chromedp.WaitVisible(chromedp.CSS("#subscription-error")),
	)
	if got := text(t, ctx, "#subscription-error"); !strings.Contains(got, "choose at least one") {
		t.Errorf("no event shows %q", got)
	}
	s.call("GET", api.Prefix+"/notifications", nil, &subs)
	if len(subs.Subscriptions) != 1 {
		t.Errorf("refused forms added subscriptions: %+v", subs.Subscriptions)
	}
}
