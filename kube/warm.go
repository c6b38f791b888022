package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// A warm previous version: after Finalize promoted a new version into the
// user's Deployment NAME, the version it replaced can be kept as the
// Deployment NAME-sortie-warm (role warm), at KeepPrevious.Replicas pods
// or at zero. Its pods carry none of the user's labels, only Sortie's warm
// ones, so no Service of the user selects them: they take no traffic while
// warm. A later Finalize that puts that version back (a restore, a
// rollback after success) first points the Services that select the
// user's pods at the warm pods, already Ready, so traffic is back on that
// version within a second, then promotes it into the user's Deployment,
// gives the Services their selectors back and deletes the warm
// Deployment. DropWarm deletes it when its time is over (the runner's
// timer).

// KeepPrevious is how Finalize keeps the replaced version.
type KeepPrevious struct {
	// Replicas are the warm pods kept Ready; 0 keeps it scaled to zero.
	Replicas int32
}

const (
	// RoleWarm is the role of a previous version kept warm.
	RoleWarm = "warm"
	// LabelWarmOf names, on warm pods, the user's Deployment they are the
	// previous version of; LabelWarmVersion is that version.
	LabelWarmOf      = "sortie.dev/warm-of"
	LabelWarmVersion = "sortie.dev/warm-version"
	// AnnotationWarmLabels, on a warm Deployment, holds its version's pod
	// labels as the user wrote them (JSON): the Services selecting those
	// are the ones a restore points at the warm pods.
	AnnotationWarmLabels = "sortie.dev/warm-labels"
	// AnnotationWarmPipeline names the pipeline that kept the version warm:
	// DropWarm of that pipeline deletes it, of another one does not.
	AnnotationWarmPipeline = "sortie.dev/warm-pipeline"
)

func (w *workload) warmName() string { return w.manifest.Name + "-sortie-warm" }

func (w *workload) warmSelector() map[string]string {
	return map[string]string{LabelWarmOf: LabelValue(w.name()), LabelRole: RoleWarm}
}

// warmHandoff is what Finalize does around its promotion of w.
type warmHandoff struct {
	w *workload
	// keep is the template the promotion replaces, to keep warm after it.
	keep *corev1.PodTemplateSpec
	// restoring: the promotion puts the warm version back, and pinned are
	// the Services pointed at its pods meanwhile.
	restoring bool
	pinned    []string
}

// warmBefore runs before Finalize promotes w into live (nil: the user's
// Deployment does not exist). When w's version is the warm one, the
// Services move to the warm pods now.
func (e *Executor) warmBefore(ctx context.Context, w *workload, live *appsv1.Deployment) (*warmHandoff, error) {
	h := &warmHandoff{w: w}
	ns := w.t.Namespace
	warm, err := e.live(ctx, ns, w.warmName())
	if err != nil {
		return nil, err
	}
	if warm != nil && warm.Spec.Template.Labels[LabelWarmVersion] == w.version {
		h.restoring = true
		if warm.Status.ReadyReplicas == 0 || warm.Spec.Replicas == nil || *warm.Spec.Replicas < w.replicas() {
			if err := e.scale(ctx, ns, warm.Name, w.replicas()); err != nil {
				return nil, err
			}
		}
		if warm.Status.ReadyReplicas == 0 {
			// Kept at zero: its pods start now, as fast as they become Ready.
			if _, err := e.waitRolledOut(ctx, ns, warm.Name); err != nil {
				return nil, err
			}
		}
		h.pinned, err = e.pinToWarm(ctx, w, warm)
		return h, err
	}
	if w.t.KeepPrevious == nil || live == nil {
		return h, nil
	}
	if s, ok := live.Annotations[AnnotationPreviousTemplate]; ok {
		var tmpl corev1.PodTemplateSpec
		if err := json.Unmarshal([]byte(s), &tmpl); err != nil {
			return nil, fmt.Errorf("kube: deployment %s/%s: unreadable %s annotation: %w", ns, live.Name, AnnotationPreviousTemplate, err)
		}
		h.keep = &tmpl
	} else if live.Spec.Template.Labels[LabelVersion] != w.version {
		h.keep = live.Spec.Template.DeepCopy()
	}
	return h, nil
}

// warmAfter runs once Finalize promoted w: the Services get their own
// selectors back and the restored warm version goes, or the replaced
// version is kept warm (a stale warm version of another one goes).
func (e *Executor) warmAfter(ctx context.Context, h *warmHandoff) error {
	w, ns := h.w, h.w.t.Namespace
	if h.restoring {
		if err := e.unpinServices(ctx, ns, h.pinned); err != nil {
			return err
		}
		return e.deleteWorkload(ctx, ns, w.warmName())
	}
	if h.keep == nil || h.keep.Labels[LabelVersion] == "" {
		return e.deleteWorkload(ctx, ns, w.warmName())
	}
	return e.keepWarm(ctx, w, h.keep)
}

// keepWarm applies the warm Deployment of w running tmpl, out of traffic,
// and waits until its pods are Ready.
func (e *Executor) keepWarm(ctx context.Context, w *workload, tmpl *corev1.PodTemplateSpec) error {
	ns := w.t.Namespace
	orig, _ := json.Marshal(tmpl.Labels)
	pt := tmpl.DeepCopy()
	pt.Labels = withLabels(w.warmSelector(), map[string]string{LabelWarmVersion: tmpl.Labels[LabelVersion]})
	replicas := w.t.KeepPrevious.Replicas
	d := &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name: w.warmName(), Namespace: ns,
			Labels: map[string]string{LabelManagedBy: "sortie", LabelRole: RoleWarm,
				LabelApplication: LabelValue(w.t.Application), LabelTarget: LabelValue(w.t.Target)},
			Annotations: map[string]string{AnnotationWarmLabels: string(orig), AnnotationWarmPipeline: w.t.Pipeline},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: w.warmSelector()},
			Template: *pt,
		},
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
	if err != nil {
		return fmt.Errorf("kube: warm deployment %s/%s: %w", ns, d.Name, err)
	}
	u := &unstructured.Unstructured{Object: obj}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	if _, err := e.Apply(ctx, ns, []*unstructured.Unstructured{u}); err != nil {
		return err
	}
	if replicas == 0 {
		return nil
	}
	_, err = e.waitRolledOut(ctx, ns, d.Name)
	return err
}

// pinToWarm points every Service of the namespace that selects the warm
// version's own pod labels at the warm pods, remembering its selector, and
// returns their names.
func (e *Executor) pinToWarm(ctx context.Context, w *workload, warm *appsv1.Deployment) ([]string, error) {
	var podLabels map[string]string
	if err := json.Unmarshal([]byte(warm.Annotations[AnnotationWarmLabels]), &podLabels); err != nil {
		return nil, fmt.Errorf("kube: deployment %s/%s: unreadable %s annotation: %w", warm.Namespace, warm.Name, AnnotationWarmLabels, err)
	}
	svcs, err := e.client.CoreV1().Services(warm.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, explain(err)
	}
	var pinned []string
	for _, svc := range svcs.Items {
		sel := originalSelector(&svc)
		if len(sel) == 0 || !labels.SelectorFromSet(sel).Matches(labels.Set(podLabels)) {
			continue
		}
		err := e.updateService(ctx, svc.Namespace, svc.Name, func(s *corev1.Service) {
			if _, ok := s.Annotations[AnnotationOriginalSelector]; !ok {
				b, _ := json.Marshal(s.Spec.Selector)
				if s.Annotations == nil {
					s.Annotations = map[string]string{}
				}
				s.Annotations[AnnotationOriginalSelector] = string(b)
			}
			s.Spec.Selector = maps.Clone(warm.Spec.Selector.MatchLabels)
		})
		if err != nil {
			return pinned, err
		}
		pinned = append(pinned, svc.Name)
	}
	return pinned, nil
}

// DropWarm deletes the previous versions that pipeline t.Pipeline kept
// warm for t's Deployments; one another pipeline kept since stays.
func (e *Executor) DropWarm(ctx context.Context, t *Target) error {
	ws, _, err := split(t)
	if err != nil {
		return err
	}
	for _, w := range ws {
		warm, err := e.live(ctx, t.Namespace, w.warmName())
		if err != nil {
			return err
		}
		if warm == nil || warm.Annotations[AnnotationWarmPipeline] != t.Pipeline {
			continue
		}
		if err := e.deleteWorkload(ctx, t.Namespace, w.warmName()); err != nil {
			return err
		}
	}
	return nil
}
