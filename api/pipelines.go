package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// maxListLimit bounds GET /api/v1/pipelines?limit=.
const maxListLimit = 1000

func (s *server) startPipeline(w http.ResponseWriter, r *http.Request, p Principal) {
	var req StartRequest
	if err := decodeJSON(w, r, MaxStartBytes, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if strings.TrimSpace(req.File) == "" {
		s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "file is empty: send the deployment file's text in \"file\""))
		return
	}
	if err := checkTargets(req.Targets); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.d.Start(r.Context(), p, req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.BreakGlass {
		// Besides pipeline.start: a break glass is looked for on its own.
		// The reason is in the pipeline's history.
		s.appendAudit(r, p, "pipeline.break-glass", []string{res.PipelineID})
	}
	w.Header().Set("Location", Prefix+"/pipelines/"+res.PipelineID)
	writeJSON(w, http.StatusAccepted, res)
}

func (s *server) redeploy(w http.ResponseWriter, r *http.Request, p Principal) {
	var req RedeployRequest
	if err := decodeJSON(w, r, maxBodyBytes, &req, true); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := checkTargets(req.Targets); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.d.Redeploy(r.Context(), p, r.PathValue("id"), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", Prefix+"/pipelines/"+res.PipelineID)
	writeJSON(w, http.StatusAccepted, res)
}

func (s *server) restore(w http.ResponseWriter, r *http.Request, p Principal) {
	var req RestoreRequest
	if err := decodeJSON(w, r, maxBodyBytes, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := checkTargets(req.Targets); err != nil {
		s.writeError(w, r, err)
		return
	}
	if strings.TrimSpace(req.Reason) == "" {
		s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "reason is required: say why the target goes back"))
		return
	}
	if req.Previous && len(req.Targets) != 1 {
		s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalid, "previous needs exactly one target in targets"))
		return
	}
	res, err := s.d.Restore(r.Context(), p, r.PathValue("id"), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", Prefix+"/pipelines/"+res.PipelineID)
	writeJSON(w, http.StatusAccepted, res)
}

func checkTargets(targets []string) error {
	for _, t := range targets {
		if strings.TrimSpace(t) == "" {
			return errorf(http.StatusBadRequest, CodeInvalid, "targets lists an empty name")
		}
	}
	return nil
}

// PipelineList is the body of GET /api/v1/pipelines.
type PipelineList struct {
	Pipelines []PipelineSummary `json:"pipelines"`
}

func (s *server) listPipelines(w http.ResponseWriter, r *http.Request, p Principal) {
	f, err := parseFilter(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ps, err := s.d.List(r.Context(), p.Tenant, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := PipelineList{Pipelines: make([]PipelineSummary, 0, len(ps))}
	for _, sp := range ps {
		out.Pipelines = append(out.Pipelines, summaryOf(sp))
	}
	writeJSON(w, http.StatusOK, out)
}

var knownStatuses = []pipeline.Status{
	pipeline.StatusQueued, pipeline.StatusRunning, pipeline.StatusPaused, pipeline.StatusAwaitingApproval,
	pipeline.StatusSucceeded, pipeline.StatusFailed, pipeline.StatusCancelled,
}

// parseFilter reads application, status (repeatable, or a comma list),
// since, until (RFC 3339) and limit.
func parseFilter(r *http.Request) (store.Filter, error) {
	q := r.URL.Query()
	var f store.Filter
	bad := func(format string, args ...any) (store.Filter, error) {
		return store.Filter{}, errorf(http.StatusBadRequest, CodeInvalid, fmt.Sprintf(format, args...))
	}
	for key := range q {
		switch key {
		case "application", "status", "since", "until", "limit":
		default:
			return bad("unknown query parameter %q; use application, status, since, until or limit", key)
		}
	}
	f.Application = q.Get("application")
	for _, v := range q["status"] {
		for st := range strings.SplitSeq(v, ",") {
			st = strings.ToUpper(strings.TrimSpace(st))
			if st == "" {
				continue
			}
			if !containsStatus(knownStatuses, pipeline.Status(st)) {
				return bad("unknown status %q; use one of %s", st, statusList())
			}
			f.Statuses = append(f.Statuses, pipeline.Status(st))
		}
	}
	for key, dst := range map[string]*time.Time{"since": &f.CreatedAfter, "until": &f.CreatedBefore} {
		if v := q.Get(key); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return bad("%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z, not %q", key, v)
			}
			*dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return bad("limit must be a whole number from 1 to %d, not %q", maxListLimit, v)
		}
		f.Limit = n
	}
	return f, nil
}

func containsStatus(list []pipeline.Status, s pipeline.Status) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func statusList() string {
	names := make([]string, len(knownStatuses))
	for i, s := range knownStatuses {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

func (s *server) getPipeline(w http.ResponseWriter, r *http.Request, p Principal) {
	sp, err := s.d.Get(r.Context(), p.Tenant, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewOf(sp))
}

func (s *server) getSource(w http.ResponseWriter, r *http.Request, p Principal) {
	sp, err := s.d.Get(r.Context(), p.Tenant, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, SourceView{
		Pipeline:  sp.ID,
		FileName:  sp.Source.FileName,
		File:      sp.Source.File,
		Manifests: sp.Source.Manifests,
		Context:   sp.Source.Context,
	})
}

// ActionRequest is the optional body of the action routes. Which fields an
// action takes: approve and skip target and step, reject target, step and
// reason (required), rollback target and reason, cancel reason.
type ActionRequest struct {
	Target string `json:"target,omitempty"`
	Step   string `json:"step,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Link is a notification's approve or roll back link (its token),
	// taken by approve and rollback: it names the target and step and is
	// spent by the action.
	Link string `json:"link,omitempty"`
}

type action string

const (
	actApprove  action = "approve"
	actReject   action = "reject"
	actSkip     action = "skip"
	actRollback action = "rollback"
	actCancel   action = "cancel"
)

// event turns the request into the engine's event.
func (a action) event(req ActionRequest, p Principal) (pipeline.Event, error) {
	refuse := func(field string) error {
		return errorf(http.StatusBadRequest, CodeInvalid, fmt.Sprintf("%s takes no %s", a, field))
	}
	by := p.Engine()
	switch a {
	case actApprove, actSkip:
		if req.Reason != "" {
			return nil, refuse("reason")
		}
		if a == actApprove {
			return pipeline.Approve{Target: req.Target, Step: req.Step, By: by}, nil
		}
		return pipeline.Skip{Target: req.Target, Step: req.Step, By: by}, nil
	case actReject:
		return pipeline.Reject{Target: req.Target, Step: req.Step, Reason: req.Reason, By: by}, nil
	case actRollback:
		if req.Step != "" {
			return nil, refuse("step")
		}
		return pipeline.Rollback{Target: req.Target, Reason: req.Reason, By: by}, nil
	case actCancel:
		if req.Target != "" {
			return nil, refuse("target: a cancel stops the whole pipeline (roll back one target with rollback)")
		}
		if req.Step != "" {
			return nil, refuse("step")
		}
		return pipeline.Cancel{Reason: req.Reason, By: by}, nil
	}
	panic("api: unknown action " + string(a))
}

func actOn(a action) func(*server, http.ResponseWriter, *http.Request, Principal) {
	return func(s *server, w http.ResponseWriter, r *http.Request, p Principal) {
		var req ActionRequest
		if err := decodeJSON(w, r, maxBodyBytes, &req, true); err != nil {
			s.writeError(w, r, err)
			return
		}
		var (
			ev  pipeline.Event
			err error
		)
		switch {
		case req.Link != "" && (a == actApprove || a == actRollback):
			ev, err = s.linkEvent(r.Context(), a, req, p, r.PathValue("id"))
		case req.Link != "":
			err = errorf(http.StatusBadRequest, CodeInvalid, string(a)+" takes no link")
		default:
			ev, err = a.event(req, p)
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		sp, err := s.d.Act(r.Context(), p, r.PathValue("id"), ev)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, viewOf(sp))
	}
}
