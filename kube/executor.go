package kube

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/sortie-cd/sortie/progress"
)

// Executor performs Sortie's operations in one cluster.
type Executor struct {
	client kubernetes.Interface
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
	cfg    *rest.Config
	log    *slog.Logger
	// namespaces, when not empty, are the only ones it writes in
	// (LimitNamespaces).
	namespaces []string
}

// New returns an Executor for the cluster of cfg. A nil log discards.
func New(cfg *rest.Config, log *slog.Logger) (*Executor, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube: client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube: dynamic client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube: discovery: %w", err)
	}
	return &Executor{
		client: client,
		dyn:    dyn,
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)),
		cfg:    cfg,
		log:    log,
	}, nil
}

// Client is the typed clientset the executor uses.
func (e *Executor) Client() kubernetes.Interface { return e.client }

// ServerVersion reports the cluster's Kubernetes version.
func (e *Executor) ServerVersion() (string, error) {
	v, err := e.client.Discovery().ServerVersion()
	if err != nil {
		return "", err
	}
	return v.GitVersion, nil
}

// Applied names one object an apply wrote.
type Applied = progress.Object

// Apply server-side applies objs into namespace ns (forced onto every
// namespaced object), CRDs and Namespaces first, waiting for each CRD to be
// established before objects that may be its instances.
func (e *Executor) Apply(ctx context.Context, ns string, objs []*unstructured.Unstructured) ([]Applied, error) {
	return e.apply(ctx, ns, false, objs)
}

// apply is Apply; with own (a target that names no namespace), each object
// goes where its manifest says, or to "default" when it says nothing, as
// kubectl apply would put it.
func (e *Executor) apply(ctx context.Context, ns string, own bool, objs []*unstructured.Unstructured) ([]Applied, error) {
	var out []Applied
	for _, u := range applyOrder(objs) {
		u = u.DeepCopy()
		objNS := ns
		if own {
			objNS = cmp.Or(u.GetNamespace(), metav1.NamespaceDefault)
		}
		res, err := e.applyOne(ctx, objNS, u)
		if err != nil {
			return out, err
		}
		out = append(out, Applied{Kind: res.GetKind(), Namespace: res.GetNamespace(), Name: res.GetName()})
		if u.GetKind() == "CustomResourceDefinition" {
			if err := e.waitEstablished(ctx, u.GetName()); err != nil {
				return out, err
			}
			e.mapper.Reset()
		}
	}
	return out, nil
}

func (e *Executor) resource(u *unstructured.Unstructured) (*meta.RESTMapping, error) {
	gvk := u.GroupVersionKind()
	m, err := e.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		e.mapper.Reset() // a CRD may have been installed since discovery was cached
		m, err = e.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("kube: %s %q: the cluster does not know this kind (%s): %w", gvk.Kind, u.GetName(), gvk.GroupVersion(), err)
	}
	return m, nil
}

func (e *Executor) ri(u *unstructured.Unstructured, ns string) (dynamic.ResourceInterface, error) {
	m, err := e.resource(u)
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if err := e.allowedNamespace(u.GetKind()+" "+u.GetName(), ns); err != nil {
			return nil, err
		}
		u.SetNamespace(ns)
		return e.dyn.Resource(m.Resource).Namespace(ns), nil
	}
	if len(e.namespaces) > 0 && (u.GetKind() != "Namespace" || !slices.Contains(e.namespaces, u.GetName())) {
		return nil, &ErrNamespaceNotAllowed{What: u.GetKind() + " " + u.GetName() + " (cluster-scoped)", Allowed: e.namespaces}
	}
	u.SetNamespace("")
	return e.dyn.Resource(m.Resource), nil
}

func (e *Executor) applyOne(ctx context.Context, ns string, u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	ri, err := e.ri(u, ns)
	if err != nil {
		return nil, err
	}
	unstructured.RemoveNestedField(u.Object, "status")
	u.SetResourceVersion("")
	u.SetManagedFields(nil)
	res, err := ri.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return nil, fmt.Errorf("kube: apply %s %q: %w", u.GetKind(), u.GetName(), explain(err))
	}
	return res, nil
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

func (e *Executor) waitEstablished(ctx context.Context, name string) error {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
			return e.dyn.Resource(crdGVR).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
			return e.dyn.Resource(crdGVR).Watch(ctx, o)
		},
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, nil, func(ev watch.Event) (bool, error) {
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			cm, _ := c.(map[string]any)
			if cm["type"] == "Established" && cm["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("kube: CustomResourceDefinition %q not established: %w", name, err)
	}
	return nil
}

// explain turns API errors into a sentence that says what to do, naming a
// missing permission when the agent's ServiceAccount lacks one.
func explain(err error) error {
	var se *apierrors.StatusError
	if errors.As(err, &se) && apierrors.IsForbidden(err) {
		return fmt.Errorf("permission denied: %s (grant it to the ServiceAccount Sortie runs as)", strings.TrimSpace(se.ErrStatus.Message))
	}
	return err
}
