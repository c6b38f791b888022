package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/deployfile"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// Error codes the API uses besides the engine's (pipeline.Code) and the
// deployment file's problem codes.
const (
	CodeInvalid          = string(pipeline.CodeInvalid)
	CodeNotFound         = string(pipeline.CodeNotFound)
	CodeForbidden        = string(pipeline.CodeForbidden)
	CodeConflict         = string(pipeline.CodeConflict)
	CodeUnauthorized     = "unauthorized"
	CodeUnprocessable    = string(pipeline.CodeUnprocessable)
	CodeTooLarge         = "too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeNotReady         = "not_ready"
	CodeInternal         = "internal"
	CodeBusy             = "busy"
	// CodeHeld: a start refused (409) by a deploy window or a freeze, not
	// by another deployment in flight.
	CodeHeld = "held"
)

// Error is an error with its HTTP status, for the runner to return what the
// engine's codes do not cover (422 for an unknown account) and for the API's
// own refusals. Message is written for the user.
type Error struct {
	Status  int
	Code    string
	Message string
	// Pipeline names the pipeline a conflict is about, when there is one.
	Pipeline string
}

func (e *Error) Error() string { return e.Message }

func errorf(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	// ErrorID is also logged with a server error, to find it again.
	ErrorID string       `json:"error_id"`
	Errors  []ErrorEntry `json:"errors"`
}

// ErrorEntry is one error; file, line and column locate a problem of a
// deployment file.
type ErrorEntry struct {
	Message  string `json:"message"`
	Code     string `json:"code"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	Pipeline string `json:"pipeline,omitempty"`
}

// writeError answers with err mapped to a status and the error envelope.
// Errors the API does not know become a 500 with a generic message; the
// error itself is only logged, under the error id the caller sees.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	id := randomID()
	status, entries := Classify(err)
	if status == http.StatusInternalServerError {
		if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
			s.log.Debug("request cancelled", "error_id", id, "method", r.Method, "path", r.URL.Path)
		} else {
			s.log.Error("request failed", "error_id", id, "method", r.Method, "path", r.URL.Path, "err", err)
		}
	}
	writeJSON(w, status, ErrorResponse{ErrorID: id, Errors: entries})
}

// Classify is the one map from an error to its HTTP status and the
// entries the user reads, for the API and the console alike: a deployment
// file's problems (400, each with file, line and column), an *Error, the
// engine's codes, the store's not-found and conflict; anything else is a
// 500 whose text says nothing of the cause.
func Classify(err error) (int, []ErrorEntry) {
	if ps, ok := errors.AsType[deployfile.Problems](err); ok && len(ps) > 0 {
		entries := make([]ErrorEntry, len(ps))
		for i, p := range ps {
			entries[i] = ErrorEntry{Message: p.Message, Code: p.Code, File: p.File, Line: p.Line, Column: p.Col}
		}
		return http.StatusBadRequest, entries
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Status, []ErrorEntry{{Message: e.Message, Code: e.Code, Pipeline: e.Pipeline}}
	}
	if e, ok := errors.AsType[*pipeline.Error](err); ok {
		status := map[pipeline.Code]int{
			pipeline.CodeInvalid:       http.StatusBadRequest,
			pipeline.CodeNotFound:      http.StatusNotFound,
			pipeline.CodeForbidden:     http.StatusForbidden,
			pipeline.CodeConflict:      http.StatusConflict,
			pipeline.CodeUnprocessable: http.StatusUnprocessableEntity,
		}[e.Code]
		code := string(e.Code)
		if e.Hold != "" {
			code = CodeHeld
		}
		if status != 0 {
			return status, []ErrorEntry{{Message: e.Message, Code: code}}
		}
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, []ErrorEntry{{Message: "not found", Code: CodeNotFound}}
	case errors.As(err, new(*auth.StreamsError)):
		return http.StatusTooManyRequests, []ErrorEntry{{Message: err.Error(), Code: CodeBusy}}
	case errors.Is(err, auth.ErrBusy):
		return http.StatusTooManyRequests, []ErrorEntry{{Message: err.Error(), Code: CodeBusy}}
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict, []ErrorEntry{{Message: "the resource changed meanwhile or already exists; read it again and retry", Code: CodeConflict}}
	}
	return http.StatusInternalServerError, []ErrorEntry{{Message: "the server failed to answer; report the error id if it persists", Code: CodeInternal}}
}
