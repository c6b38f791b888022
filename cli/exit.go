package cli

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/client"
)

// Exit codes, documented by `sortie help exit-codes`.
const (
	ExitOK         = 0 // success; for `deploy start` without --watch: accepted
	ExitFailure    = 1 // an error, or a deployment that did not succeed
	ExitUsage      = 2 // the command line was wrong
	ExitInProgress = 3 // another deployment of this application is in flight
	ExitHeld       = 4 // a start refused by a deploy window or a freeze
)

// ExitError carries the exit code a command wants. Its message has already
// been printed when Silent is true.
type ExitError struct {
	Code   int
	Err    error
	Silent bool
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// usageError marks an error in how the command was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitCode is the one place that maps an error to an exit code.
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	var ue usageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	var ae *client.Error
	if errors.As(err, &ae) && ae.Status == http.StatusConflict && startsPipeline(ae) {
		if slices.ContainsFunc(ae.Errors, func(e api.ErrorEntry) bool { return e.Code == api.CodeHeld }) {
			return ExitHeld
		}
		return ExitInProgress
	}
	return ExitFailure
}

// startsPipeline reports whether the refused request was a start or a
// redeploy: only there does a 409 mean another deployment is in flight (an
// action's 409 means the pipeline has ended, which is a plain failure).
func startsPipeline(e *client.Error) bool {
	return e.Method == http.MethodPost &&
		(e.Path == api.Prefix+"/pipelines" || strings.HasSuffix(e.Path, "/redeploy"))
}
