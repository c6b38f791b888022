package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/sortie-cd/sortie/api"
)

// Error is an error answer of the server: its HTTP status and the
// {"error_id", "errors": [...]} envelope. Problems of a deployment file carry
// their file, line and column.
type Error struct {
	// Method and Path are the request's, so a caller can tell which call
	// failed (a 409 on a start means another deployment is in flight).
	Method, Path string
	Status       int
	ErrorID      string
	Errors       []api.ErrorEntry
}

func (e *Error) Error() string {
	if len(e.Errors) == 0 {
		return fmt.Sprintf("the server answered %d %s", e.Status, http.StatusText(e.Status))
	}
	msgs := make([]string, len(e.Errors))
	for i, en := range e.Errors {
		msgs[i] = en.Message
		if en.File != "" {
			msgs[i] = entryPos(en) + ": " + en.Message
		}
	}
	return strings.Join(msgs, "; ")
}

// Code is the first error's code ("conflict", "not_found", ...), or "".
func (e *Error) Code() string {
	if len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

// entryPos formats an entry's position as file:line:col.
func entryPos(en api.ErrorEntry) string {
	s := en.File
	if en.Line > 0 {
		s += fmt.Sprintf(":%d", en.Line)
		if en.Column > 0 {
			s += fmt.Sprintf(":%d", en.Column)
		}
	}
	return s
}

// Position is an entry's location as file:line:col ("" when it has none).
func Position(en api.ErrorEntry) string {
	if en.File == "" {
		return ""
	}
	return entryPos(en)
}

// StatusOf returns the HTTP status of an *Error in err's chain, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// decodeError reads an error answer. A body that is not the envelope (a
// proxy's HTML page, say) becomes an Error with only the status; its text is
// never echoed, as it could hold anything.
func decodeError(resp *http.Response, body []byte) *Error {
	e := &Error{Method: resp.Request.Method, Path: resp.Request.URL.Path, Status: resp.StatusCode}
	var env api.ErrorResponse
	if json.Unmarshal(body, &env) == nil {
		e.ErrorID, e.Errors = env.ErrorID, env.Errors
	}
	if len(e.Errors) == 0 {
		var oauth struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(body, &oauth) == nil && oauth.Error != "" {
			e.Errors = []api.ErrorEntry{{Code: oauth.Error, Message: oauth.Description}}
		}
	}
	return e
}
