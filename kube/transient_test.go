package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestTransient(t *testing.T) {
	deploy := schema.GroupResource{Group: "apps", Resource: "deployments"}
	reset := &url.Error{Op: "Patch", URL: "https://127.0.0.1:6443/apis/apps/v1", Err: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}
	refused := &url.Error{Op: "Get", URL: "https://127.0.0.1:6443/api", Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"service unavailable", apierrors.NewServiceUnavailable("etcd is down"), true},
		{"too many requests", apierrors.NewTooManyRequests("slow down", 1), true},
		{"internal error", apierrors.NewInternalError(errors.New("boom")), true},
		{"conflict", apierrors.NewConflict(deploy, "web", errors.New("modified")), true},
		{"server timeout", apierrors.NewServerTimeout(deploy, "patch", 1), true},
		{"timeout", apierrors.NewTimeoutError("took too long", 1), true},
		{"bare 502", apierrors.NewGenericServerResponse(502, "patch", deploy, "web", "bad gateway", 0, true), true},
		{"connection reset, wrapped", fmt.Errorf("apply deployment web: %w", reset), true},
		{"connection refused", refused, true},
		{"unexpected EOF", fmt.Errorf("watch: %w", io.ErrUnexpectedEOF), true},
		{"forbidden", apierrors.NewForbidden(deploy, "web", errors.New("no RBAC")), false},
		{"invalid", apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "web", field.ErrorList{field.Required(field.NewPath("spec"), "")}), false},
		{"not found", fmt.Errorf("get: %w", apierrors.NewNotFound(deploy, "web")), false},
		{"deadline", fmt.Errorf("pods not ready: %w", context.DeadlineExceeded), false},
		{"cancelled", context.Canceled, false},
		{"plain", errors.New("manifest does not decode"), false},
		{"nil", nil, false},
	} {
		if got := Transient(tc.err); got != tc.want {
			t.Errorf("%s: Transient(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
