package api

import (
	"context"
	"net/http"
	"time"

	"github.com/sortie-cd/sortie/dora"
	"github.com/sortie-cd/sortie/store"
)

// DoraReport is the body of GET /api/v1/dora: the four DORA measures per
// application and target of the caller's tenant.
type DoraReport = dora.Report

// getDora answers the delivery figures of the caller's tenant over the
// period of since/until or days (default the last 30 days), of one
// application when application is given.
func (s *server) getDora(w http.ResponseWriter, r *http.Request, p Principal) {
	q := r.URL.Query()
	for key := range q {
		switch key {
		case "application", "since", "until", "days":
		default:
			s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "unknown query parameter "+key+"; use application, since, until or days"))
			return
		}
	}
	now := time.Now()
	from, to, err := dora.Period(q.Get("since"), q.Get("until"), q.Get("days"), now)
	if err != nil {
		s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, err.Error()))
		return
	}
	rep, err := dora.Load(r.Context(), listOf(s.d, p.Tenant), q.Get("application"), from, to, now)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// listOf is a tenant's pipelines, as dora lists them.
func listOf(d Deployments, tenant string) dora.Lister {
	return func(ctx context.Context, f store.Filter) ([]*store.Pipeline, error) { return d.List(ctx, tenant, f) }
}
