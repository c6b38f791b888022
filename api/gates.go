package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/sortie-cd/sortie/analysis"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// ProviderStore is what the metric-provider routes need; store.Store has
// it. Every call is scoped to the caller's tenant.
type ProviderStore interface {
	CreateMetricProvider(ctx context.Context, p store.MetricProvider) error
	ListMetricProviders(ctx context.Context, tenant string) ([]store.MetricProvider, error)
	DeleteMetricProvider(ctx context.Context, tenant, name string) error
}

// CallbackRequest is what an external system POSTs to a webhook's
// {{armory.callbackUri}}/callback.
type CallbackRequest struct {
	Success *bool `json:"success"`
	// MDMessage is markdown shown to users with the step.
	MDMessage string `json:"mdMessage,omitempty"`
}

// webhookCallback hands a webhook's verdict to the engine. The path names
// the pipeline (of the caller's tenant: another tenant's is 404), target
// and step; the engine answers 404 for a step that is not a webhook call
// and 409 for one that has ended or takes no callback.
func (s *server) webhookCallback(w http.ResponseWriter, r *http.Request, p Principal) {
	var req CallbackRequest
	if err := decodeJSON(w, r, maxBodyBytes, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Success == nil {
		s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, `success is missing: send {"success": true|false, "mdMessage": "..."}`))
		return
	}
	id := r.PathValue("id")
	cmd := id + "/" + r.PathValue("target") + "/" + r.PathValue("group") + "/" + r.PathValue("index")
	sp, err := s.d.Act(r.Context(), p, id, pipeline.WebhookCallback{CommandID: cmd, Success: *req.Success, Message: req.MDMessage, By: p.Engine()})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewOf(sp))
}

// ProviderView is a metric provider as the API shows it: its settings,
// which name secrets but never hold their values.
type ProviderView struct {
	analysis.Config
	CreatedAt time.Time `json:"createdAt"`
}

// ProviderList is the body of GET /api/v1/providers.
type ProviderList struct {
	Providers []ProviderView `json:"providers"`
}

func (s *server) providerStore(w http.ResponseWriter, r *http.Request) ProviderStore {
	if s.providers == nil {
		s.writeError(w, r, errorf(http.StatusNotImplemented, CodeInternal, "this server keeps no metric providers"))
	}
	return s.providers
}

func (s *server) listProviders(w http.ResponseWriter, r *http.Request, p Principal) {
	ps := s.providerStore(w, r)
	if ps == nil {
		return
	}
	list, err := ps.ListMetricProviders(r.Context(), p.Tenant)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := ProviderList{Providers: make([]ProviderView, 0, len(list))}
	for _, sp := range list {
		c, err := analysis.FromStored(&sp)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		out.Providers = append(out.Providers, ProviderView{Config: c, CreatedAt: sp.CreatedAt})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) createProvider(w http.ResponseWriter, r *http.Request, p Principal) {
	ps := s.providerStore(w, r)
	if ps == nil {
		return
	}
	var c analysis.Config
	if err := decodeJSON(w, r, maxBodyBytes, &c, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := c.Validate(); err != nil {
		s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "invalid metric provider: "+err.Error()))
		return
	}
	sp, err := c.Stored(p.Tenant)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sp.CreatedAt = time.Now()
	if err := ps.CreateMetricProvider(r.Context(), sp); err != nil {
		if errors.Is(err, store.ErrConflict) {
			err = errorf(http.StatusConflict, CodeConflict, "metric provider "+c.Name+" exists; delete it first to replace it")
		}
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", Prefix+"/providers/"+c.Name)
	writeJSON(w, http.StatusCreated, ProviderView{Config: c, CreatedAt: sp.CreatedAt.UTC()})
}

func (s *server) deleteProvider(w http.ResponseWriter, r *http.Request, p Principal) {
	ps := s.providerStore(w, r)
	if ps == nil {
		return
	}
	if err := ps.DeleteMetricProvider(r.Context(), p.Tenant, r.PathValue("name")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
