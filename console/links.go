package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/notify"
	"github.com/sortie-cd/sortie/store"
)

// linkPage shows what a notification's approve or roll back link would do
// and asks the signed-in person to confirm: opening a link changes
// nothing (chat clients and mail scanners open links on their own), the
// confirmation posts it to the API's own action route, as this person.
func (c *Console) linkPage(w http.ResponseWriter, r *http.Request, s *session) {
	token := r.PathValue("token")
	data := struct {
		Page
		Token, What, Button, Problem string
		Link                         notify.Link
	}{Page: c.page(r, s, "Notification link"), Token: token}
	link, err := notify.DecodeLink(token)
	if err != nil {
		data.Problem = err.Error() + "."
		c.render(w, r, http.StatusBadRequest, "link", data)
		return
	}
	data.Link = link
	if link.Action == notify.ActionApprove {
		data.Title, data.Button, data.What = "Approve", "Approve", "approve step "+link.Step+" of target "+link.Target
	} else {
		data.Title, data.Button, data.What = "Roll back", "Roll back", "roll back target "+link.Target
	}
	data.Page.Title = data.Title
	c.render(w, r, http.StatusOK, "link", data)
}

// useLink acts on a confirmed link through the API, whose route checks the
// reader's roles, the link (signature, expiry, use) and records the audit.
func (c *Console) useLink(w http.ResponseWriter, r *http.Request, s *session) {
	token := r.PathValue("token")
	link, err := notify.DecodeLink(token)
	if err != nil {
		c.linkPage(w, r, s)
		return
	}
	back := "/pipelines/" + url.PathEscape(link.Pipeline)
	if err := c.callAPI(r, s, http.MethodPost, api.Prefix+back+"/"+link.Action, api.ActionRequest{Link: token}, nil); err != nil {
		if msg := userMessage(err); msg != "" {
			setFlash(w, r, "error", "Refused: "+msg)
			http.Redirect(w, r, back, http.StatusSeeOther)
			return
		}
		c.fail(w, r, s, err)
		return
	}
	step := link.Step
	if link.Action == notify.ActionRollback {
		step = ""
	}
	setFlash(w, r, "ok", actionDone(link.Action, link.Target, step))
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// notificationsData is the notifications page: the tenant's subscriptions
// (any reader), for admins the recent deliveries (sent, waiting for a
// retry, or failed and why, secrets masked by the notifier) and the form
// that adds a subscription.
type notificationsData struct {
	Page
	Subscriptions []api.Subscription
	Deliveries    []store.OutboxMessage
	Reason, Error string
	// Form is what the add form shows: empty, or what was sent when the
	// API refused it.
	Form      subscriptionForm
	FormError string
	Events    []string
	SinkTypes []string
}

// subscriptionForm is the add form's fields.
type subscriptionForm struct {
	ID, Application, Target, SinkType string
	Events                            []string
	Sink                              notify.Sink
}

func (c *Console) notificationsData(r *http.Request, s *session) notificationsData {
	d := notificationsData{Page: c.page(r, s, "Notifications"), Reason: refusal(s.Principal, auth.GrantAdmin, "reads the deliveries and adds subscriptions"),
		Events: notify.Events, SinkTypes: []string{notify.SinkSlack, notify.SinkTeams, notify.SinkWebhook, notify.SinkCloudEvents},
		Form: subscriptionForm{SinkType: notify.SinkWebhook}}
	var subs api.SubscriptionList
	if err := c.callAPI(r, s, http.MethodGet, api.Prefix+"/notifications", nil, &subs); err != nil {
		d.Error = errorText(err)
	}
	d.Subscriptions = subs.Subscriptions
	if d.Reason == "" && d.Error == "" {
		var list api.DeliveryList
		if err := c.callAPI(r, s, http.MethodGet, api.Prefix+"/notifications/deliveries?limit=50", nil, &list); err != nil {
			d.Error = errorText(err)
		}
		d.Deliveries = list.Deliveries
	}
	return d
}

func (c *Console) notificationsPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := c.notificationsData(r, s)
	d.Flash = takeFlash(w, r)
	c.render(w, r, http.StatusOK, "notifications", d)
}

// createSubscription adds a subscription through the API, which checks it
// as it checks one from the CLI (its words shown, the form kept); the sink
// settings are only the named fields, so a secret's value is never typed
// here, only its name.
func (c *Console) createSubscription(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	form := subscriptionForm{
		ID: strings.TrimSpace(f.Get("id")), Application: strings.TrimSpace(f.Get("application")), Target: strings.TrimSpace(f.Get("target")),
		SinkType: f.Get("sink_type"), Events: f["events"],
		Sink: notify.Sink{URLSecret: strings.TrimSpace(f.Get("url_secret")), URL: strings.TrimSpace(f.Get("url")),
			TokenSecret: strings.TrimSpace(f.Get("token_secret")), Channel: strings.TrimSpace(f.Get("channel")),
			AuthSecret: strings.TrimSpace(f.Get("auth_secret")), Mode: f.Get("mode")},
	}
	sink, err := json.Marshal(form.Sink)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	req := api.Subscription{ID: form.ID, Application: form.Application, Target: form.Target, Events: form.Events, SinkType: form.SinkType, Sink: sink}
	if err := c.callAPI(r, s, http.MethodPost, api.Prefix+"/notifications", req, nil); err != nil {
		msg := userMessage(err)
		if msg == "" {
			c.fail(w, r, s, err)
			return
		}
		d := c.notificationsData(r, s)
		d.Form, d.FormError = form, msg
		c.render(w, r, http.StatusBadRequest, "notifications", d)
		return
	}
	backTo(w, r, "/settings/notifications", "ok", "Added subscription "+form.ID+". Try it with sortie notifications test "+form.ID+".")
}

func (c *Console) deleteSubscription(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if err := c.callAPI(r, s, http.MethodDelete, api.Prefix+"/notifications/"+url.PathEscape(id), nil, nil); err != nil {
		backTo(w, r, "/settings/notifications", "error", "Subscription "+id+" not deleted: "+errorText(err))
		return
	}
	backTo(w, r, "/settings/notifications", "ok", "Deleted subscription "+id+".")
}
