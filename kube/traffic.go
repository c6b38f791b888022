package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"
)

// Traffic is how a canary's traffic moves when a mesh or a gateway moves
// it: the new version runs at full size beside the old one and only
// weights change. Each entry names a root Service (the one clients call);
// the target's Deployment whose pods it selects is the one it splits.
type Traffic struct {
	SMI       []SMITraffic
	Istio     []IstioTraffic
	HTTPRoute []HTTPRouteTraffic
}

// SMITraffic is an SMI TrafficSplit (split.smi-spec.io/v1alpha2) of a root
// Service between a stable and a canary Service. The TrafficSplit is
// Sortie's unless one of that name exists already.
type SMITraffic struct {
	RootService   string
	CanaryService string // default ROOT-canary
	TrafficSplit  string // default ROOT-sortie-split
}

// IstioTraffic is an Istio VirtualService (networking.istio.io/v1beta1)
// whose http route is split between two subsets of a DestinationRule.
type IstioTraffic struct {
	VirtualService string
	Route          string // name of the http route; the first when empty
	// DestinationRule, when set, gets its subsets' labels pointed at the
	// old and the new version's pods; without it, the subsets must exist
	// and select them already.
	DestinationRule string
	ActiveSubset    string // default "stable"
	CanarySubset    string // default "canary"
}

// HTTPRouteTraffic is a Gateway API HTTPRoute (gateway.networking.k8s.io/v1)
// whose rules naming the root Service are split by backendRef weights.
type HTTPRouteTraffic struct {
	Name          string
	RootService   string
	CanaryService string // default ROOT-canary
}

// Labels and annotations of traffic management.
const (
	// RoleTraffic marks objects Sortie created for traffic management
	// (TrafficSplits, stable and canary Services); they go at the end.
	RoleTraffic = "traffic"
	// AnnotationOriginalSpec, on a user's object whose weights or subsets
	// Sortie changes, holds its spec before (JSON), put back at the end.
	AnnotationOriginalSpec = "sortie.dev/original-spec"
	// trafficManager is the field manager of weight changes: distinct
	// from the apply manager, so that an apply never drops them.
	trafficManager = "sortie-traffic"
)

var (
	gvkService      = schema.GroupVersionKind{Version: "v1", Kind: "Service"}
	gvkTrafficSplit = schema.GroupVersionKind{Group: "split.smi-spec.io", Version: "v1alpha2", Kind: "TrafficSplit"}
	gvkVirtualSvc   = schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1beta1", Kind: "VirtualService"}
	gvkDestRule     = schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1beta1", Kind: "DestinationRule"}
	gvkHTTPRoute    = schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"}
)

func (s SMITraffic) canary() string { return or(s.CanaryService, s.RootService+"-canary") }
func (s SMITraffic) split() string  { return or(s.TrafficSplit, s.RootService+"-sortie-split") }
func (i IstioTraffic) active() string {
	return or(i.ActiveSubset, "stable")
}
func (i IstioTraffic) canary() string     { return or(i.CanarySubset, "canary") }
func (h HTTPRouteTraffic) canary() string { return or(h.CanaryService, h.RootService+"-canary") }
func stableService(root string) string    { return root + "-sortie-stable" }

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// trafficObject names one object traffic management changes.
type trafficObject struct {
	gvk  schema.GroupVersionKind
	name string
}

// objects lists the user's objects tr changes (not those it creates).
func (tr *Traffic) objects() []trafficObject {
	var out []trafficObject
	for _, s := range tr.SMI {
		out = append(out, trafficObject{gvkTrafficSplit, s.split()})
	}
	for _, i := range tr.Istio {
		out = append(out, trafficObject{gvkVirtualSvc, i.VirtualService})
		if i.DestinationRule != "" {
			out = append(out, trafficObject{gvkDestRule, i.DestinationRule})
		}
	}
	for _, h := range tr.HTTPRoute {
		out = append(out, trafficObject{gvkHTTPRoute, h.Name})
	}
	return out
}

// withoutLiveTraffic drops from objs the traffic objects that exist
// already: their weights are Sortie's until Finalize applies them.
func (e *Executor) withoutLiveTraffic(ctx context.Context, t *Target, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, u := range objs {
		if isTrafficObject(t, u) {
			live, err := e.getTraffic(ctx, t.Namespace, u.GroupVersionKind(), u.GetName())
			if err != nil {
				return nil, err
			}
			if live != nil {
				continue
			}
		}
		out = append(out, u)
	}
	return out, nil
}

// trafficManifests are the traffic objects among t's manifests.
func trafficManifests(t *Target) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range t.Objects {
		if isTrafficObject(t, u) {
			out = append(out, u)
		}
	}
	return out
}

// isTrafficObject reports whether u is one of the objects t's traffic
// management changes: those are applied only when they do not exist yet,
// or once their weights are back (Finalize), so that an apply never
// undoes a weight mid-canary.
func isTrafficObject(t *Target, u *unstructured.Unstructured) bool {
	if t.Traffic == nil {
		return false
	}
	for _, o := range t.Traffic.objects() {
		if u.GroupVersionKind().GroupKind() == o.gvk.GroupKind() && u.GetName() == o.name {
			return true
		}
	}
	return false
}

// setTrafficWeight runs the new version of w at full size (size pods, as
// many as the old version) beside the old one and gives it weight percent
// of the traffic, through every traffic object of the target that splits
// w's pods.
func (e *Executor) setTrafficWeight(ctx context.Context, w *workload, live *appsv1.Deployment, size int32, weight int) (Progress, error) {
	t, ns := w.t, w.t.Namespace
	applied, err := e.runCanary(ctx, w, size)
	if err != nil {
		return Progress{}, err
	}
	oldHash, err := e.currentHash(ctx, live)
	if err != nil {
		return Progress{}, err
	}
	stable := map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: oldHash}
	newPods := map[string]string{LabelRole: RoleCanary, LabelVersion: w.version}
	n := 0
	for _, s := range t.Traffic.SMI {
		ok, err := e.splits(ctx, w, s.RootService)
		if err != nil {
			return Progress{}, err
		}
		if !ok {
			continue
		}
		if err := e.trafficServices(ctx, ns, s.RootService, s.canary(), stable, newPods); err != nil {
			return Progress{}, err
		}
		err = e.editTraffic(ctx, ns, gvkTrafficSplit, s.split(), true, func(u *unstructured.Unstructured) error {
			return unstructured.SetNestedField(u.Object, map[string]any{
				"service": s.RootService,
				"backends": []any{
					map[string]any{"service": stableService(s.RootService), "weight": int64(100 - weight)},
					map[string]any{"service": s.canary(), "weight": int64(weight)},
				},
			}, "spec")
		})
		if err != nil {
			return Progress{}, err
		}
		n++
	}
	for _, h := range t.Traffic.HTTPRoute {
		ok, err := e.splits(ctx, w, h.RootService)
		if err != nil {
			return Progress{}, err
		}
		if !ok {
			continue
		}
		if err := e.trafficServices(ctx, ns, h.RootService, h.canary(), stable, newPods); err != nil {
			return Progress{}, err
		}
		if err := e.editTraffic(ctx, ns, gvkHTTPRoute, h.Name, false, func(u *unstructured.Unstructured) error {
			return splitHTTPRoute(u, h, weight)
		}); err != nil {
			return Progress{}, err
		}
		n++
	}
	for _, i := range t.Traffic.Istio {
		ok, err := e.istioSplits(ctx, w, i)
		if err != nil {
			return Progress{}, err
		}
		if !ok {
			continue
		}
		if i.DestinationRule != "" {
			if err := e.editTraffic(ctx, ns, gvkDestRule, i.DestinationRule, false, func(u *unstructured.Unstructured) error {
				return setSubsets(u, map[string]map[string]string{i.active(): stable, i.canary(): newPods})
			}); err != nil {
				return Progress{}, err
			}
		}
		if err := e.editTraffic(ctx, ns, gvkVirtualSvc, i.VirtualService, false, func(u *unstructured.Unstructured) error {
			return splitVirtualService(u, i, weight)
		}); err != nil {
			return Progress{}, err
		}
		n++
	}
	if n == 0 {
		return Progress{}, fmt.Errorf("kube: no traffic management entry of target %s splits the pods of deployment %s", t.Target, w.name())
	}
	p, err := e.progress(ctx, w, applied)
	p.AchievedWeight = weight // the weights set, not the pods: both versions run at full size
	p.Message = fmt.Sprintf("traffic %d%% to the new version (%d new and %d old pods ready)", weight, p.NewPods, p.OldPods)
	return p, err
}

// splits reports whether the root Service selects w's pods; an Istio
// entry is taken to (its host is not resolved to a Service).
func (e *Executor) splits(ctx context.Context, w *workload, root string) (bool, error) {
	svc, err := e.client.CoreV1().Services(w.t.Namespace).Get(ctx, root, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("kube: root service %s/%s of traffic management: %w", w.t.Namespace, root, explain(err))
	}
	if len(svc.Spec.Selector) == 0 {
		return false, fmt.Errorf("kube: root service %s/%s has no selector", w.t.Namespace, root)
	}
	// Another Deployment's root Service (a target of several, each with
	// its own entry): not this one's to split.
	return selects(svc.Spec.Selector, w.manifest.Spec.Template.Labels), nil
}

// istioSplits reports whether an Istio entry splits w's pods. With one
// Deployment it does; with several (each with its own entry, as the
// borealis demo's potato-facts and potato-lies), the entry's
// DestinationRule names its host, a Service, whose selector must select
// w's pods. An entry whose host is no Service of the namespace is taken.
func (e *Executor) istioSplits(ctx context.Context, w *workload, i IstioTraffic) (bool, error) {
	ws, _, err := split(w.t)
	if err != nil || len(ws) < 2 || i.DestinationRule == "" {
		return err == nil, err
	}
	dr, err := e.getTraffic(ctx, w.t.Namespace, gvkDestRule, i.DestinationRule)
	if err != nil || dr == nil {
		return err == nil, err
	}
	host, _, _ := unstructured.NestedString(dr.Object, "spec", "host")
	host, _, _ = strings.Cut(host, ".")
	svc, err := e.client.CoreV1().Services(w.t.Namespace).Get(ctx, host, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, explain(err)
	}
	return selects(originalSelector(svc), w.manifest.Spec.Template.Labels), nil
}

// trafficServices creates (or repoints) the stable and the canary Service
// of a root Service: its ports, its selector narrowed to one version.
func (e *Executor) trafficServices(ctx context.Context, ns, root, canary string, stable, newPods map[string]string) error {
	svc, err := e.client.CoreV1().Services(ns).Get(ctx, root, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("kube: root service %s/%s: %w", ns, root, explain(err))
	}
	var ports []any
	for _, p := range svc.Spec.Ports {
		port := map[string]any{"port": int64(p.Port), "protocol": string(p.Protocol), "targetPort": p.TargetPort.String()}
		if p.TargetPort.IntValue() != 0 {
			port["targetPort"] = int64(p.TargetPort.IntValue())
		}
		if p.Name != "" {
			port["name"] = p.Name
		}
		ports = append(ports, port)
	}
	for name, extra := range map[string]map[string]string{stableService(root): stable, canary: newPods} {
		sel := map[string]any{}
		for k, v := range withLabels(svc.Spec.Selector, extra) {
			sel[k] = v
		}
		err := e.editTraffic(ctx, ns, gvkService, name, true, func(u *unstructured.Unstructured) error {
			if err := unstructured.SetNestedField(u.Object, sel, "spec", "selector"); err != nil {
				return err
			}
			if _, found, _ := unstructured.NestedSlice(u.Object, "spec", "ports"); !found {
				return unstructured.SetNestedSlice(u.Object, ports, "spec", "ports")
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// editTraffic changes one traffic object with mutate. An object that does
// not exist is created as Sortie's own (role traffic) when create is set,
// else it is an error. A user's object has its spec remembered first.
func (e *Executor) editTraffic(ctx context.Context, ns string, gvk schema.GroupVersionKind, name string, create bool, mutate func(*unstructured.Unstructured) error) error {
	probe := &unstructured.Unstructured{}
	probe.SetGroupVersionKind(gvk)
	ri, err := e.ri(probe, ns)
	if err != nil {
		return err
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u, err := ri.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			if !create {
				return fmt.Errorf("kube: %s %s/%s of traffic management not found: %w", gvk.Kind, ns, name, err)
			}
			u = &unstructured.Unstructured{Object: map[string]any{}}
			u.SetGroupVersionKind(gvk)
			u.SetName(name)
			u.SetNamespace(ns)
			u.SetLabels(map[string]string{LabelManagedBy: "sortie", LabelRole: RoleTraffic})
			if err := mutate(u); err != nil {
				return err
			}
			_, err = ri.Create(ctx, u, metav1.CreateOptions{FieldManager: trafficManager})
			return err
		}
		if err != nil {
			return err
		}
		before := u.DeepCopy()
		if u.GetLabels()[LabelRole] != RoleTraffic {
			if _, saved := u.GetAnnotations()[AnnotationOriginalSpec]; !saved {
				spec, _, _ := unstructured.NestedFieldNoCopy(u.Object, "spec")
				b, err := json.Marshal(spec)
				if err != nil {
					return err
				}
				u.SetAnnotations(withLabels(u.GetAnnotations(), map[string]string{AnnotationOriginalSpec: string(b)}))
			}
		}
		if err := mutate(u); err != nil {
			return err
		}
		if equalObjects(before, u) {
			return nil
		}
		_, err = ri.Update(ctx, u, metav1.UpdateOptions{FieldManager: trafficManager})
		return err
	})
	if err != nil {
		return fmt.Errorf("kube: %s %s/%s: %w", gvk.Kind, ns, name, explain(err))
	}
	return nil
}

func equalObjects(a, b *unstructured.Unstructured) bool {
	x, _ := json.Marshal(a.Object)
	y, _ := json.Marshal(b.Object)
	return string(x) == string(y)
}

// trafficToStable gives the old version all the traffic again: the first
// move of a rollback, before the new version's pods go.
func (e *Executor) trafficToStable(ctx context.Context, t *Target) error {
	if t.Traffic == nil {
		return nil
	}
	ns := t.Namespace
	for _, s := range t.Traffic.SMI {
		if err := e.ifEdited(ctx, ns, gvkTrafficSplit, s.split(), func(u *unstructured.Unstructured) error {
			return unstructured.SetNestedField(u.Object, []any{
				map[string]any{"service": stableService(s.RootService), "weight": int64(100)},
				map[string]any{"service": s.canary(), "weight": int64(0)},
			}, "spec", "backends")
		}); err != nil {
			return err
		}
	}
	for _, h := range t.Traffic.HTTPRoute {
		if err := e.ifEdited(ctx, ns, gvkHTTPRoute, h.Name, func(u *unstructured.Unstructured) error { return splitHTTPRoute(u, h, 0) }); err != nil {
			return err
		}
	}
	for _, i := range t.Traffic.Istio {
		if err := e.ifEdited(ctx, ns, gvkVirtualSvc, i.VirtualService, func(u *unstructured.Unstructured) error { return splitVirtualService(u, i, 0) }); err != nil {
			return err
		}
	}
	return nil
}

// ifEdited runs editTraffic on an object Sortie created or changed, and
// leaves any other alone.
func (e *Executor) ifEdited(ctx context.Context, ns string, gvk schema.GroupVersionKind, name string, mutate func(*unstructured.Unstructured) error) error {
	u, err := e.getTraffic(ctx, ns, gvk, name)
	if err != nil || u == nil {
		return err
	}
	if _, saved := u.GetAnnotations()[AnnotationOriginalSpec]; !saved && u.GetLabels()[LabelRole] != RoleTraffic {
		return nil
	}
	return e.editTraffic(ctx, ns, gvk, name, false, mutate)
}

func (e *Executor) getTraffic(ctx context.Context, ns string, gvk schema.GroupVersionKind, name string) (*unstructured.Unstructured, error) {
	probe := &unstructured.Unstructured{}
	probe.SetGroupVersionKind(gvk)
	ri, err := e.ri(probe, ns)
	if err != nil {
		return nil, err
	}
	u, err := ri.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kube: get %s %s/%s: %w", gvk.Kind, ns, name, explain(err))
	}
	return u, nil
}

// restoreTraffic puts the target's traffic objects back as they were and
// deletes those Sortie created: the end of a canary, or of its rollback
// once the new version's pods are gone.
func (e *Executor) restoreTraffic(ctx context.Context, t *Target) error {
	if t.Traffic == nil {
		return nil
	}
	ns := t.Namespace
	var objs []trafficObject
	objs = append(objs, t.Traffic.objects()...)
	for _, s := range t.Traffic.SMI {
		objs = append(objs, trafficObject{gvkService, stableService(s.RootService)}, trafficObject{gvkService, s.canary()})
	}
	for _, h := range t.Traffic.HTTPRoute {
		objs = append(objs, trafficObject{gvkService, stableService(h.RootService)}, trafficObject{gvkService, h.canary()})
	}
	for _, o := range objs {
		u, err := e.getTraffic(ctx, ns, o.gvk, o.name)
		if err != nil {
			return err
		}
		if u == nil {
			continue
		}
		ri, _ := e.ri(u, ns)
		if u.GetLabels()[LabelRole] == RoleTraffic {
			if err := ri.Delete(ctx, o.name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("kube: delete %s %s/%s: %w", o.gvk.Kind, ns, o.name, explain(err))
			}
			continue
		}
		orig, saved := u.GetAnnotations()[AnnotationOriginalSpec]
		if !saved {
			continue
		}
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			u, err := ri.Get(ctx, o.name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			var spec any
			if err := json.Unmarshal([]byte(orig), &spec); err != nil {
				return fmt.Errorf("unreadable %s annotation: %w", AnnotationOriginalSpec, err)
			}
			u.Object["spec"] = spec
			ann := maps.Clone(u.GetAnnotations())
			delete(ann, AnnotationOriginalSpec)
			u.SetAnnotations(ann)
			_, err = ri.Update(ctx, u, metav1.UpdateOptions{FieldManager: trafficManager})
			return err
		})
		if err != nil {
			return fmt.Errorf("kube: restore %s %s/%s: %w", o.gvk.Kind, ns, o.name, explain(err))
		}
	}
	return nil
}

// splitHTTPRoute sets, in every rule of the route that names the root
// Service, backendRefs to the stable and the canary Service by weight.
func splitHTTPRoute(u *unstructured.Unstructured, h HTTPRouteTraffic, weight int) error {
	orig := u.Object
	if s, ok := u.GetAnnotations()[AnnotationOriginalSpec]; ok {
		var spec any
		if err := json.Unmarshal([]byte(s), &spec); err == nil {
			orig = map[string]any{"spec": spec}
		}
	}
	origRules, _, _ := unstructured.NestedSlice(orig, "spec", "rules")
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	if len(rules) != len(origRules) {
		return fmt.Errorf("HTTPRoute %s changed its rules during the canary", u.GetName())
	}
	found := false
	for i, r := range origRules {
		refs, _, _ := unstructured.NestedSlice(r.(map[string]any), "backendRefs")
		for _, ref := range refs {
			rm, _ := ref.(map[string]any)
			if rm["name"] != h.RootService || (rm["kind"] != nil && rm["kind"] != "Service") {
				continue
			}
			found = true
			stable, canary := maps.Clone(rm), maps.Clone(rm)
			stable["name"], stable["weight"] = stableService(h.RootService), int64(100-weight)
			canary["name"], canary["weight"] = h.canary(), int64(weight)
			rules[i].(map[string]any)["backendRefs"] = []any{stable, canary}
			break
		}
	}
	if !found {
		return fmt.Errorf("no rule of HTTPRoute %s has a backendRef to Service %s", u.GetName(), h.RootService)
	}
	return unstructured.SetNestedSlice(u.Object, rules, "spec", "rules")
}

// splitVirtualService sets the route's destinations to the active and the
// canary subset of its host, by weight.
func splitVirtualService(u *unstructured.Unstructured, i IstioTraffic, weight int) error {
	routes, _, _ := unstructured.NestedSlice(u.Object, "spec", "http")
	idx := -1
	for n, r := range routes {
		if rm, _ := r.(map[string]any); i.Route == "" || rm["name"] == i.Route {
			idx = n
			break
		}
	}
	if idx < 0 {
		if i.Route != "" {
			return fmt.Errorf("VirtualService %s has no http route named %s", u.GetName(), i.Route)
		}
		return fmt.Errorf("VirtualService %s has no http route", u.GetName())
	}
	route := routes[idx].(map[string]any)
	dests, _, _ := unstructured.NestedSlice(route, "route")
	if len(dests) == 0 {
		return fmt.Errorf("VirtualService %s: http route %d has no destination", u.GetName(), idx)
	}
	first, _ := dests[0].(map[string]any)
	dest, _ := first["destination"].(map[string]any)
	mk := func(subset string, w int) map[string]any {
		d := maps.Clone(dest)
		d["subset"] = subset
		return map[string]any{"destination": d, "weight": int64(w)}
	}
	route["route"] = []any{mk(i.active(), 100-weight), mk(i.canary(), weight)}
	return unstructured.SetNestedSlice(u.Object, routes, "spec", "http")
}

// setSubsets sets the labels of the named subsets, adding missing ones.
func setSubsets(u *unstructured.Unstructured, labels map[string]map[string]string) error {
	subsets, _, _ := unstructured.NestedSlice(u.Object, "spec", "subsets")
	done := map[string]bool{}
	for _, s := range subsets {
		sm, _ := s.(map[string]any)
		name, _ := sm["name"].(string)
		if l, ok := labels[name]; ok {
			sm["labels"] = toAny(l)
			done[name] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(labels)) {
		if !done[name] {
			subsets = append(subsets, map[string]any{"name": name, "labels": toAny(labels[name])})
		}
	}
	return unstructured.SetNestedSlice(u.Object, subsets, "spec", "subsets")
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
