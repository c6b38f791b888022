package api

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
)

// Controls keeps a tenant's deploy windows and freezes and tells the
// pipelines in flight; the runner has it.
type Controls interface {
	Windows(ctx context.Context, tenant string) ([]pipeline.Window, error)
	PutWindow(ctx context.Context, tenant string, w pipeline.Window) error
	DeleteWindow(ctx context.Context, tenant, scope, name string) error
	Freezes(ctx context.Context, tenant string) ([]pipeline.Freeze, error)
	SetFreeze(ctx context.Context, by pipeline.Principal, tenant string, f pipeline.Freeze) error
	LiftFreeze(ctx context.Context, by pipeline.Principal, tenant, scope string) error
	// Controls returns the windows and freezes in force that apply to a
	// deployment of application to targets.
	Controls(ctx context.Context, tenant, application string, targets []string) ([]pipeline.Window, []pipeline.Freeze, error)
}

// WindowList answers GET /api/v1/windows.
type WindowList struct {
	Windows []pipeline.Window `json:"windows"`
}

// FreezeList answers GET /api/v1/freezes.
type FreezeList struct {
	Freezes []pipeline.Freeze `json:"freezes"`
}

// ControlsView answers GET /api/v1/controls: what applies to one
// deployment, each window's and freeze's targets naming those it holds
// (none: all).
type ControlsView struct {
	Windows []pipeline.Window `json:"windows"`
	Freezes []pipeline.Freeze `json:"freezes"`
}

// FreezeRequest is the body of PUT /api/v1/freezes/{scope}.
type FreezeRequest struct {
	Reason string    `json:"reason"`
	Until  time.Time `json:"until,omitzero"`
}

func (s *server) needControls(w http.ResponseWriter, r *http.Request) bool {
	if s.controls == nil {
		s.writeError(w, r, errorf(http.StatusNotImplemented, CodeInternal, "this server keeps no deploy windows or freezes"))
		return false
	}
	return true
}

func (s *server) listWindows(w http.ResponseWriter, r *http.Request, p Principal) {
	if !s.needControls(w, r) {
		return
	}
	list, err := s.controls.Windows(r.Context(), p.Tenant)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, WindowList{Windows: nonNil(list)})
}

func (s *server) putWindow(w http.ResponseWriter, r *http.Request, p Principal) {
	if !s.needControls(w, r) {
		return
	}
	var win pipeline.Window
	if err := decodeJSON(w, r, maxBodyBytes, &win, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	win.Scope, win.Name = pathScope(r), r.PathValue("name")
	if err := s.controls.PutWindow(r.Context(), p.Tenant, win); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, win)
}

func (s *server) deleteWindow(w http.ResponseWriter, r *http.Request, p Principal) {
	if !s.needControls(w, r) {
		return
	}
	if err := s.controls.DeleteWindow(r.Context(), p.Tenant, pathScope(r), r.PathValue("name")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) listFreezes(w http.ResponseWriter, r *http.Request, p Principal) {
	if !s.needControls(w, r) {
		return
	}
	list, err := s.controls.Freezes(r.Context(), p.Tenant)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, FreezeList{Freezes: nonNil(list)})
}

func (s *server) setFreeze(w http.ResponseWriter, r *http.Request, p Principal) {
	if !s.needControls(w, r) {
		return
	}
	var req FreezeRequest
	if err := decodeJSON(w, r, maxBodyBytes, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	f := pipeline.Freeze{Scope: pathScope(r), Reason: req.Reason, Until: req.Until}
	if err := s.controls.SetFreeze(r.Context(), p.Engine(), p.Tenant, f); err != nil {
		s.writeError(w, r, err)
		return
	}
	f.By = p.Name
	writeJSON(w, http.StatusOK, f)
}

func (s *server) liftFreeze(w http.ResponseWriter, r *http.Request, p Principal) {
	if !s.needControls(w, r) {
		return
	}
	if err := s.controls.LiftFreeze(r.Context(), p.Engine(), p.Tenant, pathScope(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) getControls(w http.ResponseWriter, r *http.Request, p Principal) {
	if !s.needControls(w, r) {
		return
	}
	q := r.URL.Query()
	app := q.Get("application")
	if app == "" {
		s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "name the application: ?application=NAME (and target=NAME for each target)"))
		return
	}
	ws, fs, err := s.controls.Controls(r.Context(), p.Tenant, app, q["target"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ControlsView{Windows: nonNil(ws), Freezes: nonNil(fs)})
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

// pathScope is the {scope} of the path: "tenant", "application NAME",
// "target NAME", its space escaped.
func pathScope(r *http.Request) string {
	v := r.PathValue("scope")
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}
