package kube

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// ExposedService is a Service an exposeServices step exposes.
type ExposedService struct {
	Name, Namespace string
	Port            int32
}

// ExposeService checks that the Service name exists in ns with one port
// (the one a preview URL reaches), and returns it.
func (e *Executor) ExposeService(ctx context.Context, ns, name string) (ExposedService, error) {
	if err := e.allowedNamespace("Service "+name, ns); err != nil {
		return ExposedService{}, err
	}
	svc, err := e.client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ExposedService{}, fmt.Errorf("kube: exposeServices: Service %s does not exist in namespace %s", name, ns)
	}
	if err != nil {
		return ExposedService{}, fmt.Errorf("kube: exposeServices: Service %s/%s: %w", ns, name, explain(err))
	}
	if len(svc.Spec.Ports) != 1 {
		return ExposedService{}, fmt.Errorf("kube: exposeServices: Service %s in namespace %s has %d ports; a preview URL needs a Service with one HTTP port", name, ns, len(svc.Spec.Ports))
	}
	return ExposedService{Name: name, Namespace: ns, Port: svc.Spec.Ports[0].Port}, nil
}

// ServiceHost is the in-cluster host name of a Service: what a relayed
// request names to reach it (NAME.NAMESPACE.svc).
func ServiceHost(namespace, name string) string { return name + "." + namespace + ".svc" }

// parseServiceHost is the inverse of ServiceHost (with or without
// .cluster.local and a port).
func parseServiceHost(host string) (namespace, name, port string, ok bool) {
	h, p, found := strings.Cut(host, ":")
	if found {
		port = p
	}
	h = strings.TrimSuffix(h, ".cluster.local")
	rest, isSvc := strings.CutSuffix(h, ".svc")
	if !isSvc {
		return "", "", "", false
	}
	name, namespace, ok = strings.Cut(rest, ".")
	if !ok || name == "" || namespace == "" || strings.Contains(namespace, ".") {
		return "", "", "", false
	}
	return namespace, name, port, true
}

// ServiceProxy returns a RoundTripper that sends requests for a Service's
// in-cluster name (NAME.NAMESPACE.svc[.cluster.local][:PORT]) through the
// Kubernetes API server's service proxy, with the executor's credentials:
// an agent outside the cluster's network (or without its DNS) reaches
// Services so, and inside it needs no extra network rule. Other hosts
// are refused. The namespace limit holds here too.
func (e *Executor) ServiceProxy() (http.RoundTripper, error) {
	hc, err := rest.HTTPClientFor(e.cfg)
	if err != nil {
		return nil, fmt.Errorf("kube: service proxy: %w", err)
	}
	base, err := url.Parse(e.cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("kube: service proxy: %w", err)
	}
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		ns, name, port, ok := parseServiceHost(req.URL.Host)
		if !ok {
			return nil, fmt.Errorf("kube: service proxy: %q is not a Service's in-cluster name", req.URL.Host)
		}
		if err := e.allowedNamespace("Service "+name, ns); err != nil {
			return nil, err
		}
		if port == "" {
			// The API server's service proxy, given no port, takes only an
			// unnamed one; a Service's one port is often named (the
			// corpus's "http", "gate-tcp"), so name it.
			if svc, err := e.client.CoreV1().Services(ns).Get(req.Context(), name, metav1.GetOptions{}); err == nil && len(svc.Spec.Ports) == 1 {
				port = svc.Spec.Ports[0].Name
			}
		}
		target := name
		if port != "" {
			target += ":" + port
		}
		out := req.Clone(req.Context())
		u := *base
		u.Path = strings.TrimRight(base.Path, "/") + "/api/v1/namespaces/" + url.PathEscape(ns) + "/services/" + url.PathEscape(target) + "/proxy" + req.URL.EscapedPath()
		u.RawPath = ""
		u.RawQuery = req.URL.RawQuery
		out.URL, out.Host, out.RequestURI = &u, "", ""
		return hc.Transport.RoundTrip(out)
	}), nil
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
