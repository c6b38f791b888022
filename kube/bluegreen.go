package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
)

// DeployPreview starts the new version at full size beside the old one and
// points the preview Service at it. The active Service is first pinned to
// the running version's pods, so the new pods get no production traffic
// before RedirectActive.
func (e *Executor) DeployPreview(ctx context.Context, t *Target) (Progress, error) {
	if err := e.checkNamespaces(t); err != nil {
		return Progress{}, err
	}
	ws, rest, err := split(t)
	if err != nil {
		return Progress{}, err
	}
	if len(ws) == 0 {
		return Progress{}, fmt.Errorf("kube: a blue/green target needs a Deployment in its manifests")
	}
	ns := t.Namespace
	lives := map[string]*appsv1.Deployment{}
	previewing := false
	for _, w := range ws {
		live, err := e.live(ctx, ns, w.name())
		if err != nil {
			return Progress{}, err
		}
		lives[w.name()] = live
		previewing = previewing || (live != nil && live.Spec.Template.Labels[LabelVersion] != w.version)
	}
	if !previewing {
		// Nothing runs yet, or this version already does: no preview needed.
		return e.Finalize(ctx, t)
	}
	pending := map[string]map[string]string{} // service → extra selector labels
	for _, pair := range t.servicePairs() {
		w, err := e.pairedWorkload(ctx, t, ws, pair.Active)
		if err != nil {
			return Progress{}, err
		}
		if live := lives[w.name()]; live != nil && live.Spec.Template.Labels[LabelVersion] != w.version {
			oldHash, err := e.currentHash(ctx, live)
			if err != nil {
				return Progress{}, err
			}
			pending[pair.Active] = map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: oldHash}
		}
		if pair.Preview != "" { // optional: Armory's blueGreen needs only activeService
			pending[pair.Preview] = map[string]string{LabelVersion: w.version}
		}
	}
	var applyRest []*unstructured.Unstructured
	for _, u := range rest {
		extra, ok := pending[u.GetName()]
		if u.GetKind() != "Service" || !ok {
			applyRest = append(applyRest, u)
			continue
		}
		pinned, err := pinService(u, extra)
		if err != nil {
			return Progress{}, err
		}
		applyRest = append(applyRest, pinned)
		delete(pending, u.GetName())
	}
	applied, err := e.apply(ctx, ns, t.OwnNamespaces, applyRest)
	if err != nil {
		return Progress{}, err
	}
	for name, extra := range pending { // Services that live only in the cluster
		if err := e.pinLiveService(ctx, ns, name, extra); err != nil {
			return Progress{}, err
		}
	}
	p, err := e.forEach(ctx, t, false, func(ctx context.Context, w *workload) (Progress, error) {
		live := lives[w.name()]
		if live != nil && live.Spec.Template.Labels[LabelVersion] == w.version {
			return e.progress(ctx, w, nil) // this Deployment runs its version already
		}
		size, _, err := e.autoscaled(ctx, w, live) // as many pods as the old version runs
		if err != nil {
			return Progress{}, err
		}
		preview := w.desired(w.previewName(), RolePreview, size, t.Pipeline)
		more, err := e.Apply(ctx, ns, []*unstructured.Unstructured{preview})
		if err != nil {
			return Progress{}, err
		}
		if _, err := e.waitRolledOut(ctx, ns, w.previewName()); err != nil {
			return Progress{}, err
		}
		return e.progress(ctx, w, more)
	})
	p.Applied = append(applied, p.Applied...)
	p.AchievedWeight = 0 // the preview gets no production traffic yet
	return p, err
}

// RedirectActive points each active Service at the new version's pods.
func (e *Executor) RedirectActive(ctx context.Context, t *Target) (Progress, error) {
	if err := e.checkNamespaces(t); err != nil {
		return Progress{}, err
	}
	ws, _, err := split(t)
	if err != nil {
		return Progress{}, err
	}
	for _, pair := range t.servicePairs() {
		w, err := e.pairedWorkload(ctx, t, ws, pair.Active)
		if err != nil {
			return Progress{}, err
		}
		if err := e.pinLiveService(ctx, t.Namespace, pair.Active, map[string]string{LabelVersion: w.version}); err != nil {
			return Progress{}, err
		}
	}
	return Progress{AchievedWeight: 100}, nil
}

// pairedWorkload is the Deployment whose pods the blue/green Service named
// selects (its own selector, before Sortie pinned it, within the pod
// template's labels); with one Deployment, that one.
func (e *Executor) pairedWorkload(ctx context.Context, t *Target, ws []*workload, service string) (*workload, error) {
	if len(ws) == 1 {
		return ws[0], nil
	}
	sel, err := e.serviceSelector(ctx, t, service)
	if err != nil {
		return nil, err
	}
	for _, w := range ws {
		if selects(sel, w.manifest.Spec.Template.Labels) {
			return w, nil
		}
	}
	return nil, fmt.Errorf("kube: blue/green Service %q selects the pods of none of the target's Deployments", service)
}

// serviceSelector is a Service's own selector: from the target's manifests,
// else from the cluster.
func (e *Executor) serviceSelector(ctx context.Context, t *Target, name string) (map[string]string, error) {
	for _, u := range t.Objects {
		if u.GetKind() == "Service" && u.GetName() == name {
			sel, _, err := unstructured.NestedStringMap(u.Object, "spec", "selector")
			return sel, err
		}
	}
	svc, err := e.client.CoreV1().Services(t.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, explain(err)
	}
	return originalSelector(svc), nil
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// currentHash is the pod-template-hash of the Deployment's current
// ReplicaSet: the label that tells its pods apart from any other version's.
func (e *Executor) currentHash(ctx context.Context, d *appsv1.Deployment) (string, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return "", err
	}
	rss, err := e.client.AppsV1().ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return "", explain(err)
	}
	rev := d.Annotations["deployment.kubernetes.io/revision"]
	for _, rs := range rss.Items {
		if metav1.IsControlledBy(&rs, d) && rs.Annotations["deployment.kubernetes.io/revision"] == rev {
			if h := rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; h != "" {
				return h, nil
			}
		}
	}
	return "", fmt.Errorf("kube: deployment %s/%s has no current ReplicaSet", d.Namespace, d.Name)
}

// pinService returns the Service manifest with extra labels in its selector
// and its own selector remembered in an annotation.
func pinService(u *unstructured.Unstructured, extra map[string]string) (*unstructured.Unstructured, error) {
	u = u.DeepCopy()
	orig, _, err := unstructured.NestedStringMap(u.Object, "spec", "selector")
	if err != nil {
		return nil, fmt.Errorf("kube: Service %q selector: %w", u.GetName(), err)
	}
	b, _ := json.Marshal(orig)
	u.SetAnnotations(withLabels(u.GetAnnotations(), map[string]string{AnnotationOriginalSelector: string(b)}))
	if err := unstructured.SetNestedStringMap(u.Object, withLabels(orig, extra), "spec", "selector"); err != nil {
		return nil, err
	}
	return u, nil
}

// pinLiveService sets a Service's selector to its original selector plus
// extra, remembering the original on first change.
func (e *Executor) pinLiveService(ctx context.Context, ns, name string, extra map[string]string) error {
	return e.updateService(ctx, ns, name, func(svc *corev1.Service) {
		orig := originalSelector(svc)
		if _, ok := svc.Annotations[AnnotationOriginalSelector]; !ok {
			b, _ := json.Marshal(orig)
			if svc.Annotations == nil {
				svc.Annotations = map[string]string{}
			}
			svc.Annotations[AnnotationOriginalSelector] = string(b)
		}
		svc.Spec.Selector = withLabels(orig, extra)
	})
}

func originalSelector(svc *corev1.Service) map[string]string {
	if s, ok := svc.Annotations[AnnotationOriginalSelector]; ok {
		var orig map[string]string
		if json.Unmarshal([]byte(s), &orig) == nil {
			return orig
		}
	}
	return maps.Clone(svc.Spec.Selector)
}

// restoreServices gives the target's blue/green Services their own selectors
// back and forgets the remembered ones.
func (e *Executor) restoreServices(ctx context.Context, t *Target) error {
	var names []string
	for _, pair := range t.servicePairs() {
		names = append(names, pair.Active, pair.Preview)
	}
	return e.unpinServices(ctx, t.Namespace, names)
}

// unpinServices gives the named Services (empty names skipped) their own
// selectors back, where Sortie had changed them.
func (e *Executor) unpinServices(ctx context.Context, ns string, names []string) error {
	for _, name := range names {
		if name == "" {
			continue
		}
		err := e.updateService(ctx, ns, name, func(svc *corev1.Service) {
			if _, ok := svc.Annotations[AnnotationOriginalSelector]; !ok {
				return
			}
			svc.Spec.Selector = originalSelector(svc)
			delete(svc.Annotations, AnnotationOriginalSelector)
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

func (e *Executor) updateService(ctx context.Context, ns, name string, mutate func(*corev1.Service)) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		svc, err := e.client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		before := svc.DeepCopy()
		mutate(svc)
		if maps.Equal(before.Spec.Selector, svc.Spec.Selector) && maps.Equal(before.Annotations, svc.Annotations) {
			return nil
		}
		_, err = e.client.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{FieldManager: FieldManager})
		return err
	})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("kube: service %s/%s not found: %w", ns, name, err)
	}
	if err != nil {
		return fmt.Errorf("kube: update service %s/%s: %w", ns, name, explain(err))
	}
	return nil
}
