package pipeline

import (
	"errors"
	"fmt"
)

// Code classifies an engine error so the API can map it to an HTTP status at
// the edge (Invalid 400, NotFound 404, Forbidden 403, Conflict 409,
// Unprocessable 422).
type Code string

// Error codes.
const (
	CodeInvalid   Code = "invalid"
	CodeNotFound  Code = "not_found"
	CodeForbidden Code = "forbidden"
	CodeConflict  Code = "conflict"
	// CodeUnprocessable: a valid request that cannot run here, such as a
	// target whose account no agent serves.
	CodeUnprocessable Code = "unprocessable"
)

// Error is an action or a spec the engine refuses. Message is written for the
// user who asked.
type Error struct {
	Code    Code
	Message string
	// Hold names the deploy window (of mode refuse) or the freeze that
	// refused a start: a refusal to try again later, or to break glass.
	Hold string
}

func (e *Error) Error() string { return e.Message }

// ErrorCode returns the code of the first *Error in err's chain, or "" when
// there is none.
func ErrorCode(err error) Code {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return ""
}

func errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
