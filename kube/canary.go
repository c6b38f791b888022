package kube

import (
	"context"
	"encoding/json"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// AnnotationPreviousTemplate, on the user's Deployment while Sortie replaces
// its pod template, holds the template before (JSON), so a rollback can put
// it back.
const AnnotationPreviousTemplate = "sortie.dev/previous-template"

func podReady(conds []corev1.PodCondition) bool {
	for _, c := range conds {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// forEach applies the target's other objects, then runs fn for each of its
// Deployments in parallel, and sums their progress.
func (e *Executor) forEach(ctx context.Context, t *Target, applyRest bool, fn func(context.Context, *workload) (Progress, error)) (Progress, error) {
	ws, rest, err := split(t)
	if err != nil {
		return Progress{}, err
	}
	var total Progress
	if applyRest {
		if rest, err = e.withoutLiveTraffic(ctx, t, rest); err != nil {
			return total, err
		}
		if total.Applied, err = e.apply(ctx, t.Namespace, t.OwnNamespaces, rest); err != nil {
			return total, err
		}
	}
	results := make([]Progress, len(ws))
	g, gctx := errgroup.WithContext(ctx)
	for i, w := range ws {
		g.Go(func() (err error) {
			results[i], err = fn(gctx, w)
			return err
		})
	}
	err = g.Wait()
	total.AchievedWeight = 100
	for i, r := range results {
		total.NewPods += r.NewPods
		total.OldPods += r.OldPods
		total.Applied = append(total.Applied, r.Applied...)
		if i == 0 || r.AchievedWeight < total.AchievedWeight {
			total.AchievedWeight = r.AchievedWeight
		}
		if r.Message != "" {
			total.Message = r.Message
		}
	}
	return total, err
}

// SetWeight runs the new version so that ceil(N·w/100) of the N replicas
// the manifest asks for are new, and returns once all of them are Ready
// and the old version runs the rest. Without traffic management or an HPA
// the new pods run in the user's Deployment itself (handover.go). Where the
// user's Deployment does not exist yet there is nothing to share traffic
// with: it is created at full size. Where it already runs this version,
// nothing changes.
func (e *Executor) SetWeight(ctx context.Context, t *Target, weight int) (Progress, error) {
	if err := e.checkNamespaces(t); err != nil {
		return Progress{}, err
	}
	p, err := e.forEach(ctx, t, true, func(ctx context.Context, w *workload) (Progress, error) {
		return e.setWeight(ctx, w, weight)
	})
	p.RequestedWeight = weight
	return p, err
}

func (e *Executor) setWeight(ctx context.Context, w *workload, weight int) (Progress, error) {
	ns := w.t.Namespace
	live, err := e.live(ctx, ns, w.name())
	if err != nil {
		return Progress{}, err
	}
	if live == nil || (live.Spec.Template.Labels[LabelVersion] == w.version && live.Annotations[AnnotationOriginalReplicas] == "") {
		// First deployment, or this version already runs: straight to 100 %
		// (still remembering the old template if an autoscaled canary
		// promoted it at 100 % and Finalize has not come yet).
		p, err := e.promote(ctx, w, live, live == nil || live.Annotations[AnnotationPreviousTemplate] == "")
		if err != nil {
			return p, err
		}
		return e.progress(ctx, w, p.Applied)
	}
	n, hpa, err := e.autoscaled(ctx, w, live)
	if err != nil {
		return Progress{}, err
	}
	if w.t.Traffic != nil {
		return e.setTrafficWeight(ctx, w, live, n, weight)
	}
	if hpa != nil {
		return e.setWeightBeside(ctx, w, live, n, hpa, weight)
	}
	return e.setWeightInPlace(ctx, w, live, n, weight)
}

// runCanary applies the canary Deployment of w at size pods and waits
// until they all are Ready.
func (e *Executor) runCanary(ctx context.Context, w *workload, size int32) ([]Applied, error) {
	canary := w.desired(w.canaryName(), RoleCanary, size, w.t.Pipeline)
	applied, err := e.Apply(ctx, w.t.Namespace, []*unstructured.Unstructured{canary})
	if err != nil {
		return nil, err
	}
	if _, err := e.waitRolledOut(ctx, w.t.Namespace, w.canaryName()); err != nil {
		return nil, err
	}
	return applied, nil
}

// progress counts the Ready pods of the new version and of the old one
// behind the user's Deployment's selector.
func (e *Executor) progress(ctx context.Context, w *workload, applied []Applied) (Progress, error) {
	newPods, oldPods, err := e.countReady(ctx, w.t.Namespace, w.manifest.Spec.Selector, w.version)
	if err != nil {
		return Progress{}, err
	}
	p := Progress{NewPods: newPods, OldPods: oldPods, Applied: applied}
	if total := newPods + oldPods; total > 0 {
		p.AchievedWeight = int((100*newPods + total/2) / total)
	}
	return p, nil
}

// Finalize makes the user's Deployment carry the new version at full size
// and removes what the strategy created beside it (canary or preview), and,
// for a blue/green, gives the Services their own selectors back.
func (e *Executor) Finalize(ctx context.Context, t *Target) (Progress, error) {
	if err := e.checkNamespaces(t); err != nil {
		return Progress{}, err
	}
	return e.forEach(ctx, t, true, func(ctx context.Context, w *workload) (Progress, error) {
		live, err := e.live(ctx, w.t.Namespace, w.name())
		if err != nil {
			return Progress{}, err
		}
		warm, err := e.warmBefore(ctx, w, live)
		if err != nil {
			return Progress{}, err
		}
		p, err := e.promote(ctx, w, live, true)
		if err != nil {
			return p, err
		}
		if err := e.warmAfter(ctx, warm); err != nil {
			return p, err
		}
		// The user's Deployment runs the new version: traffic objects go
		// back to how they were (now selecting it), then the user's own
		// versions of them apply.
		if err := e.restoreTraffic(ctx, t); err != nil {
			return p, err
		}
		more, err := e.Apply(ctx, t.Namespace, trafficManifests(t))
		if err != nil {
			return p, err
		}
		p.Applied = append(p.Applied, more...)
		if err := e.deleteWorkload(ctx, w.t.Namespace, w.canaryName()); err != nil {
			return p, err
		}
		if err := e.deleteWorkload(ctx, w.t.Namespace, w.previewName()); err != nil {
			return p, err
		}
		if err := e.restoreServices(ctx, t); err != nil {
			return p, err
		}
		return e.progress(ctx, w, p.Applied)
	})
}

// promote applies the manifest to the user's Deployment at full size (or,
// under an HPA, at the HPA's count) and waits for the rollout. It remembers
// the template it replaces until the rollout is done, and past it unless
// final, so a rollback in between can restore it.
func (e *Executor) promote(ctx context.Context, w *workload, live *appsv1.Deployment, final bool) (Progress, error) {
	ns := w.t.Namespace
	pipelineLabel := w.t.Pipeline
	if live != nil && live.Spec.Template.Labels[LabelVersion] == w.version && live.Spec.Template.Labels[LabelPipeline] != "" {
		// Same version: keep the pipeline that introduced it, so the pod
		// template does not change and no pod restarts.
		pipelineLabel = live.Spec.Template.Labels[LabelPipeline]
	}
	desired := w.desired(w.name(), "", w.replicas(), pipelineLabel)
	// A Deployment this pipeline created keeps saying so when the command
	// is repeated (after a restart): server-side apply would otherwise drop
	// the annotation the first apply set, and a rollback would leave the
	// Deployment behind. One an earlier pipeline created keeps naming that
	// one, for the same reason: a rollback of this promotion restores the
	// template, not the annotations the apply dropped.
	createdBy := w.t.Pipeline
	if live != nil {
		createdBy = live.Annotations[AnnotationCreatedBy]
	}
	if createdBy != "" {
		desired.SetAnnotations(withLabels(desired.GetAnnotations(), map[string]string{AnnotationCreatedBy: createdBy}))
	}
	if live != nil && createdBy != w.t.Pipeline && live.Annotations[AnnotationPreviousTemplate] == "" && live.Spec.Template.Labels[LabelVersion] != w.version {
		prev, err := json.Marshal(live.Spec.Template)
		if err != nil {
			return Progress{}, err
		}
		if err := e.patchDeploymentAnnotations(ctx, ns, w.name(), map[string]*string{AnnotationPreviousTemplate: ptrTo(string(prev))}); err != nil {
			return Progress{}, err
		}
	}
	var held *corev1.ConfigMap
	if live != nil && live.Annotations[AnnotationOriginalReplicas] != "" {
		var err error
		if held, err = e.hold(ctx, w); err != nil {
			return Progress{}, err
		}
		if held != nil {
			// A canary ran inside the Deployment, paused a moment at its start.
			if err := unstructured.SetNestedField(desired.Object, false, "spec", "paused"); err != nil {
				return Progress{}, err
			}
		}
	}
	if live != nil {
		if _, hpa, err := e.autoscaled(ctx, w, live); err != nil {
			return Progress{}, err
		} else if hpa != nil {
			if err := e.releaseReplicas(ctx, live); err != nil {
				return Progress{}, err
			}
			unstructured.RemoveNestedField(desired.Object, "spec", "replicas")
		}
	}
	applied, err := e.Apply(ctx, ns, []*unstructured.Unstructured{desired})
	if err != nil {
		return Progress{}, err
	}
	if held != nil && final {
		// The new pods are the Deployment's own already: once all run and
		// the old are gone, the promotion is done, seen in the pods
		// themselves. The statuses of the Deployment and its ReplicaSets,
		// which their controllers write under the controller manager's
		// request limit, catch up after (a moment on a quiet cluster, a
		// few hundred milliseconds on a busy one). Availability after
		// minReadySeconds is in those statuses alone: with it, promotion
		// waits for them.
		if err := e.waitNewPods(ctx, w, w.replicas()); err != nil {
			return Progress{}, err
		}
		if err := e.finishHold(ctx, w, held); err != nil {
			return Progress{}, err
		}
		if w.manifest.Spec.MinReadySeconds > 0 {
			if _, err := e.waitRolledOut(ctx, ns, w.name()); err != nil {
				return Progress{}, err
			}
		}
	} else if _, err := e.waitRolledOut(ctx, ns, w.name()); err != nil {
		return Progress{}, err
	}
	if !final {
		return Progress{AchievedWeight: 100, Applied: applied}, nil
	}
	clear := map[string]*string{AnnotationPreviousTemplate: nil, AnnotationOriginalReplicas: nil}
	if err := e.patchDeploymentAnnotations(ctx, ns, w.name(), clear); err != nil {
		return Progress{}, err
	}
	return Progress{AchievedWeight: 100, Applied: applied}, nil
}
