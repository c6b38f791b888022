package kube

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Transient reports whether err, from an operation of this package, may
// pass by itself, so that running the operation again (it is idempotent)
// can succeed: the API server timed out, throttled, failed or is
// unavailable, answered a conflict, or the connection to it broke or
// could not be made. A context that ended is not transient (the caller's
// deadline is over), nor is anything the server refused (forbidden,
// invalid, not found).
func Transient(err error) bool {
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsTooManyRequests(err),
		apierrors.IsInternalError(err), apierrors.IsServiceUnavailable(err), apierrors.IsConflict(err),
		apierrors.IsUnexpectedServerError(err):
		return true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	// A 5xx answer without a Status body of a known reason.
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		code := se.Status().Code
		return code >= 500 || code == 429
	}
	return false
}
