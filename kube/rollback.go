package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Rollback puts the target back as it was before the pipeline: for a
// blue/green the active Service flips back to the old pods at once; the old
// version is scaled back to its replica count (and its pod template restored
// if the promotion had begun) before the new version's pods are removed; a
// Deployment the pipeline created is deleted.
func (e *Executor) Rollback(ctx context.Context, t *Target) (Progress, error) {
	if err := e.checkNamespaces(t); err != nil {
		return Progress{}, err
	}
	return e.forEach(ctx, t, false, func(ctx context.Context, w *workload) (Progress, error) {
		ns := t.Namespace
		live, err := e.live(ctx, ns, w.name())
		if err != nil {
			return Progress{}, err
		}
		if live != nil && t.ActiveService != "" {
			if err := e.flipBack(ctx, t, w, live); err != nil {
				return Progress{}, err
			}
		}
		// Under traffic management the old version still runs at full
		// size: all traffic goes back to it at once.
		if err := e.trafficToStable(ctx, t); err != nil {
			return Progress{}, err
		}
		created := live != nil && live.Annotations[AnnotationCreatedBy] == t.Pipeline
		if live != nil && !created {
			// The old version back to full size before the new one goes.
			held, err := e.hold(ctx, w)
			if err != nil {
				return Progress{}, err
			}
			if held != nil {
				err = e.rollbackHold(ctx, w, held)
			} else {
				err = e.restore(ctx, live)
			}
			if err != nil {
				return Progress{}, err
			}
		}
		for _, name := range []string{w.canaryName(), w.previewName()} {
			if err := e.deleteWorkload(ctx, ns, name); err != nil {
				return Progress{}, err
			}
		}
		if created {
			if err := e.deleteCreated(ctx, live); err != nil {
				return Progress{}, err
			}
		}
		if err := e.restoreServices(ctx, t); err != nil {
			return Progress{}, err
		}
		if err := e.restoreTraffic(ctx, t); err != nil {
			return Progress{}, err
		}
		p, err := e.progress(ctx, w, nil)
		p.AchievedWeight = 0
		return p, err
	})
}

// flipBack points the active Services of w's pods at the old version's
// pods, where they were redirected.
func (e *Executor) flipBack(ctx context.Context, t *Target, w *workload, live *appsv1.Deployment) error {
	ws, _, err := split(t)
	if err != nil {
		return err
	}
	for _, pair := range t.servicePairs() {
		svc, err := e.client.CoreV1().Services(t.Namespace).Get(ctx, pair.Active, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return explain(err)
		}
		if _, pinned := svc.Annotations[AnnotationOriginalSelector]; !pinned {
			continue
		}
		if paired, err := e.pairedWorkload(ctx, t, ws, pair.Active); err != nil {
			return err
		} else if paired.name() != w.name() {
			continue
		}
		if _, promoting := live.Annotations[AnnotationPreviousTemplate]; promoting {
			continue // the old pods are being replaced; restore() brings them back
		}
		hash, err := e.currentHash(ctx, live)
		if err != nil {
			return err
		}
		if err := e.pinLiveService(ctx, t.Namespace, pair.Active, map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: hash}); err != nil {
			return err
		}
	}
	return nil
}

// restore undoes what a canary or a promotion changed on the user's
// Deployment: its pod template and its replica count.
func (e *Executor) restore(ctx context.Context, live *appsv1.Deployment) error {
	ns, name := live.Namespace, live.Name
	var ops []map[string]any
	if s, ok := live.Annotations[AnnotationPreviousTemplate]; ok {
		var tmpl corev1.PodTemplateSpec
		if err := json.Unmarshal([]byte(s), &tmpl); err != nil {
			return fmt.Errorf("kube: deployment %s/%s: unreadable %s annotation: %w", ns, name, AnnotationPreviousTemplate, err)
		}
		ops = append(ops, map[string]any{"op": "replace", "path": "/spec/template", "value": tmpl})
	}
	if s, ok := live.Annotations[AnnotationOriginalReplicas]; ok {
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("kube: deployment %s/%s: unreadable %s annotation %q", ns, name, AnnotationOriginalReplicas, s)
		}
		ops = append(ops, map[string]any{"op": "replace", "path": "/spec/replicas", "value": n})
	}
	if len(ops) == 0 {
		return nil
	}
	patch, _ := json.Marshal(ops)
	if _, err := e.client.AppsV1().Deployments(ns).Patch(ctx, name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("kube: restore deployment %s/%s: %w", ns, name, explain(err))
	}
	if _, err := e.waitRolledOut(ctx, ns, name); err != nil {
		return err
	}
	return e.patchDeploymentAnnotations(ctx, ns, name, map[string]*string{AnnotationPreviousTemplate: nil, AnnotationOriginalReplicas: nil})
}

// deleteCreated removes a Deployment that the rolled-back pipeline created.
func (e *Executor) deleteCreated(ctx context.Context, live *appsv1.Deployment) error {
	fg := metav1.DeletePropagationForeground
	err := e.client.AppsV1().Deployments(live.Namespace).Delete(ctx, live.Name, metav1.DeleteOptions{PropagationPolicy: &fg})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("kube: delete deployment %s/%s: %w", live.Namespace, live.Name, explain(err))
	}
	return e.waitDeploymentGone(ctx, live.Namespace, live.Name)
}
