package kubetest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func TestFaultProxyInjectsWhatTheTestSchedules(t *testing.T) {
	ns := Namespace(t)
	proxy := NewFaultProxy(t)
	c, err := kubernetes.NewForConfig(proxy.Config())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n := 0
	create := func() error {
		n++
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", n)}}
		_, err := c.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
		return err
	}
	// Reads pass: the faults are for writes.
	proxy.Inject(func(r *http.Request) bool { return r.Method == http.MethodPost },
		Unavailable, TooManyRequests, Forbidden, Reset)
	for _, tc := range []struct {
		name string
		is   func(error) bool
	}{
		{"503", apierrors.IsServiceUnavailable},
		{"429", apierrors.IsTooManyRequests},
		{"403", apierrors.IsForbidden},
		{"reset", func(err error) bool { return err != nil && strings.Contains(err.Error(), "connection reset") }},
	} {
		if _, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
			t.Fatalf("a read before the %s: %v", tc.name, err)
		}
		if err := create(); !tc.is(err) {
			t.Errorf("write met by %s: err = %v", tc.name, err)
		}
	}
	if err := create(); err != nil {
		t.Fatalf("a write after the faults: %v", err)
	}
	if got, want := proxy.Injected(), map[string]int{"503": 1, "429": 1, "403": 1, "reset": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("injected %v, want %v", got, want)
	}
	// An outage fails every request, reads too, while it lasts. (A plain
	// GET: client-go's own reads retry a reset for a while.)
	proxy.Inject(nil, Outage(time.Hour))
	if err := create(); err == nil {
		t.Fatal("a write passed during the outage")
	}
	hc, err := rest.HTTPClientFor(proxy.Config())
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := hc.Get(proxy.Config().Host + "/api"); err == nil {
		resp.Body.Close()
		t.Fatalf("a read passed during the outage: %s", resp.Status)
	}
	if got := proxy.Injected()["reset"]; got != 3 {
		t.Errorf("%d requests reset, want 3: the scheduled one and the outage's two", got)
	}
	if got := proxy.Injected()["outage"]; got != 1 {
		t.Errorf("%d outages began, want 1", got)
	}
}
