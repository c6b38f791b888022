package kube_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/sortie-cd/sortie/kubetest"
)

// The service proxy reaches a Service whose one port is named (the
// corpus's Services name theirs "http" or "gate-tcp"): the API server's
// proxy, given no port, would take only an unnamed one and answer "no
// endpoints available".
func TestServiceProxyNamedPort(t *testing.T) {
	ns := kubetest.Namespace(t)
	ctx := context.Background()
	kc := kubetest.Client(t)
	ip := kubetest.HostIP(t)
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	port := int32(ln.Addr().(*net.TCPAddr).Port)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "app at %s", r.URL.Path) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	// The API server proxies only to a pod's address: a pod bound to a
	// node nothing runs stands for the application, its status set here.
	pod, err := kc.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app"},
		Spec:       corev1.PodSpec{NodeName: "no-such-node", Containers: []corev1.Container{{Name: "app", Image: "app:v1"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	if _, err := kc.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "app"}, Spec: corev1.ServiceSpec{
		Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(port)}},
	}}
	if _, err := kc.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The API server's service proxy resolves a selector-less Service
	// through its Endpoints, which this test writes as a controller would.
	//lint:ignore SA1019 the service proxy reads Endpoints, not EndpointSlices
	eps := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "app"}, Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: ip, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "app", Namespace: ns}}},
		Ports:     []corev1.EndpointPort{{Name: "http", Port: port}},
	}}}
	if _, err := kc.CoreV1().Endpoints(ns).Create(ctx, eps, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	rt, err := newExecutor(t).ServiceProxy()
	if err != nil {
		t.Fatal(err)
	}
	// The service proxy reads the Endpoints from the API server's own
	// cache, which may not hold the ones just written: until it does, it
	// answers 503 "no endpoints available". Nothing tells when it does, so
	// the request is made again on that answer alone, for a while.
	var resp *http.Response
	var body []byte
	again := time.NewTicker(50 * time.Millisecond)
	defer again.Stop()
	for deadline := time.Now().Add(30 * time.Second); ; <-again.C {
		if resp, err = (&http.Client{Transport: rt}).Get("http://app." + ns + ".svc/facts"); err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "no endpoints available") || time.Now().After(deadline) {
			break
		}
	}
	if resp.StatusCode != http.StatusOK || string(body) != "app at /facts" {
		t.Errorf("through the service proxy: %s %s", resp.Status, body)
	}
}
