package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/notify"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// NotificationStore keeps subscriptions, the deliveries' records and the
// uses of action links: store.Store has it.
type NotificationStore interface {
	CreateSubscription(ctx context.Context, s store.Subscription) error
	ListSubscriptions(ctx context.Context, tenant string) ([]store.Subscription, error)
	DeleteSubscription(ctx context.Context, tenant, id string) error
	ListDeliveries(ctx context.Context, tenant, subscription string, limit int) ([]store.OutboxMessage, error)
	UseActionLink(ctx context.Context, tenant, nonce string, at time.Time) error
	ActionLinkUsed(ctx context.Context, tenant, nonce string) (bool, error)
}

// Notifier sends a subscription's sample message (notify.Notifier).
type Notifier interface {
	Test(ctx context.Context, tenant, id string) (store.OutboxMessage, error)
}

// Subscription is a notification subscription as the API shows and takes
// it. Sink names secrets, never holds their values.
type Subscription struct {
	ID          string          `json:"id"`
	Application string          `json:"application,omitempty"`
	Target      string          `json:"target,omitempty"`
	Events      []string        `json:"events"`
	SinkType    string          `json:"sinkType"`
	Sink        json.RawMessage `json:"sink"`
	CreatedBy   string          `json:"createdBy,omitempty"`
	CreatedAt   time.Time       `json:"createdAt,omitzero"`
}

// SubscriptionList is the body of GET /api/v1/notifications.
type SubscriptionList struct {
	Subscriptions []Subscription `json:"subscriptions"`
}

// DeliveryList is the body of GET /api/v1/notifications/deliveries.
type DeliveryList struct {
	Deliveries []store.OutboxMessage `json:"deliveries"`
}

var subscriptionID = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func (s *server) notificationStore(w http.ResponseWriter, r *http.Request) NotificationStore {
	if s.notes == nil {
		s.writeError(w, r, errorf(http.StatusNotImplemented, CodeInternal, "this server sends no notifications"))
	}
	return s.notes
}

func (s *server) listSubscriptions(w http.ResponseWriter, r *http.Request, p Principal) {
	ns := s.notificationStore(w, r)
	if ns == nil {
		return
	}
	list, err := ns.ListSubscriptions(r.Context(), p.Tenant)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := SubscriptionList{Subscriptions: make([]Subscription, 0, len(list))}
	for _, sub := range list {
		out.Subscriptions = append(out.Subscriptions, subscriptionView(sub))
	}
	writeJSON(w, http.StatusOK, out)
}

func subscriptionView(sub store.Subscription) Subscription {
	return Subscription{ID: sub.ID, Application: sub.Application, Target: sub.Target, Events: sub.Events,
		SinkType: sub.SinkType, Sink: sub.Sink, CreatedBy: sub.CreatedBy, CreatedAt: sub.CreatedAt}
}

func (s *server) createSubscription(w http.ResponseWriter, r *http.Request, p Principal) {
	ns := s.notificationStore(w, r)
	if ns == nil {
		return
	}
	var req Subscription
	if err := decodeJSON(w, r, maxBodyBytes, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	invalid := func(msg string) { s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, msg)) }
	if !subscriptionID.MatchString(req.ID) {
		invalid("id " + strconv.Quote(req.ID) + ": use lower-case letters, digits and dashes, at most 63")
		return
	}
	if len(req.Events) == 0 {
		invalid("events: choose at least one of " + strings.Join(notify.Events, ", "))
		return
	}
	for _, e := range req.Events {
		if !notify.ValidEvent(e) {
			invalid("event " + strconv.Quote(e) + ": use " + strings.Join(notify.Events, ", "))
			return
		}
	}
	if _, err := notify.ParseSink(req.SinkType, req.Sink); err != nil {
		invalid("sink: " + err.Error())
		return
	}
	sub := store.Subscription{Tenant: p.Tenant, ID: req.ID, Application: req.Application, Target: req.Target, Events: req.Events,
		SinkType: req.SinkType, Sink: req.Sink, CreatedBy: p.Name, CreatedAt: time.Now().UTC()}
	if err := ns.CreateSubscription(r.Context(), sub); err != nil {
		if errors.Is(err, store.ErrConflict) {
			err = errorf(http.StatusConflict, CodeConflict, "subscription "+req.ID+" exists; delete it first to replace it")
		}
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", Prefix+"/notifications/"+req.ID)
	writeJSON(w, http.StatusCreated, subscriptionView(sub))
}

func (s *server) deleteSubscription(w http.ResponseWriter, r *http.Request, p Principal) {
	ns := s.notificationStore(w, r)
	if ns == nil {
		return
	}
	if err := ns.DeleteSubscription(r.Context(), p.Tenant, r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) testSubscription(w http.ResponseWriter, r *http.Request, p Principal) {
	if s.notifier == nil {
		s.writeError(w, r, errorf(http.StatusNotImplemented, CodeInternal, "this server sends no notifications"))
		return
	}
	rec, err := s.notifier.Test(r.Context(), p.Tenant, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (s *server) listDeliveries(w http.ResponseWriter, r *http.Request, p Principal) {
	ns := s.notificationStore(w, r)
	if ns == nil {
		return
	}
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "limit "+strconv.Quote(v)+": give a number from 1 to 1000"))
			return
		}
		limit = n
	}
	list, err := ns.ListDeliveries(r.Context(), p.Tenant, r.URL.Query().Get("subscription"), limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, DeliveryList{Deliveries: append(make([]store.OutboxMessage, 0, len(list)), list...)})
}

// linkEvent turns an action request carrying a notification's link into
// the engine's event: the link must be Sortie's, unexpired, of this
// tenant, pipeline and action, and unused. It is spent only once the
// engine would accept the action from this principal, so a reader whose
// roles the step refuses leaves it to the person it was meant for. The
// route's grant was checked already: a link gives its reader nothing.
func (s *server) linkEvent(ctx context.Context, a action, req ActionRequest, p Principal, id string) (pipeline.Event, error) {
	if s.links == nil {
		return nil, errorf(http.StatusNotImplemented, CodeInternal, "this server signs no action links")
	}
	now := time.Now()
	link, err := s.links.Verify(req.Link, now)
	switch {
	case errors.Is(err, notify.ErrLinkExpired):
		return nil, errorf(http.StatusGone, CodeInvalid, err.Error()+"; act from the pipeline's page instead")
	case err != nil:
		return nil, errorf(http.StatusBadRequest, CodeInvalid, err.Error())
	case link.Tenant != p.Tenant || link.Pipeline != id:
		return nil, errorf(http.StatusNotFound, CodeNotFound, "this link is not for a pipeline of your tenant")
	case link.Action != string(a):
		return nil, errorf(http.StatusBadRequest, CodeInvalid, "this link is for "+link.Action+", not "+string(a))
	case req.Target != "" && req.Target != link.Target, a == actApprove && req.Step != "" && req.Step != link.Step:
		return nil, errorf(http.StatusBadRequest, CodeInvalid, "this link is for target "+link.Target+" step "+link.Step)
	}
	// Said before the engine says the step is no longer waiting.
	errUsed := errorf(http.StatusConflict, CodeConflict, "this link was used already; act from the pipeline's page instead")
	if used, err := s.notes.ActionLinkUsed(ctx, p.Tenant, link.Nonce); err != nil || used {
		if err == nil {
			err = errUsed
		}
		return nil, err
	}
	req.Target, req.Link = link.Target, ""
	if a == actApprove {
		req.Step = link.Step
	}
	ev, err := a.event(req, p)
	if err != nil {
		return nil, err
	}
	sp, err := s.d.Get(ctx, p.Tenant, id)
	if err != nil {
		return nil, err
	}
	if _, _, _, err := pipeline.Transition(sp.State, ev, now); err != nil {
		return nil, err
	}
	if err := s.notes.UseActionLink(ctx, p.Tenant, link.Nonce, now); err != nil {
		if errors.Is(err, store.ErrConflict) {
			err = errUsed
		}
		return nil, err
	}
	return ev, nil
}
