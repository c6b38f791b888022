package kube

// A canary inside the user's Deployment. Without traffic management and
// without an HPA, a canary step does not start a second Deployment whose
// pods promotion would create a second time: the user's Deployment itself
// carries the new template from the first step on, at the canary's count
// of pods, while the ReplicaSets it ran before are held out of it, so its
// controller neither scales them down nor replaces them:
//
//   - the hold is the ConfigMap NAME-sortie-hold, owned by the Deployment
//     (deleting the Deployment deletes everything); it becomes the
//     controller owner of the Deployment's earlier ReplicaSets, and names
//     the one that ran the old version (stable);
//   - Sortie scales the stable ReplicaSet itself to the old version's
//     share, after the new pods are Ready, so capacity never dips;
//   - finalize, the new pods being those of the Deployment already, costs
//     the release of the held ReplicaSets back to the Deployment (its
//     revision history, so `kubectl rollout undo` still works) and the
//     deletion of the hold: no pod is created or deleted, and it ends
//     as soon as the pods show the new version whole and the old gone,
//     not when the controllers' statuses, written under the controller
//     manager's request limit, say so (unless minReadySeconds is set);
//   - a rollback scales the stable ReplicaSet back to full size, then, the
//     Deployment paused so that its controller creates and scales nothing
//     meanwhile, holds the new ReplicaSet, restores the old template and
//     count, releases the stable ReplicaSet first (it matches the restored
//     template, at the restored count), and unpauses; the new ReplicaSet
//     and its pods are deleted last. The old version's pods are the ones
//     that ran before: none was replaced.
//
// Every step derives where it is from the cluster (the hold, the owner of
// each ReplicaSet), so a step repeated after a crash resumes.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

const (
	// RoleHold is the role of the ConfigMap that holds a Deployment's
	// earlier ReplicaSets during a canary inside it.
	RoleHold = "hold"
	// holdStable is the hold's key naming the ReplicaSet of the old version.
	holdStable = "stable"
)

func (w *workload) holdName() string { return w.manifest.Name + "-sortie-hold" }

// hold returns the hold of w, or nil.
func (e *Executor) hold(ctx context.Context, w *workload) (*corev1.ConfigMap, error) {
	cm, err := e.client.CoreV1().ConfigMaps(w.t.Namespace).Get(ctx, w.holdName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kube: get config map %s/%s: %w", w.t.Namespace, w.holdName(), explain(err))
	}
	return cm, nil
}

// takeOver takes the live Deployment's ReplicaSets of other versions out
// of it: it creates the hold (naming the ReplicaSet that runs the live
// template), records the count and template to come back to, pauses the
// Deployment (so that, left without ReplicaSets, it creates none) and makes
// the hold the controller of every such ReplicaSet, the active ones last
// (while one runs the Deployment's count, the paused controller scales
// none). The revision history at 0 too: a Deployment whose controller
// finds none of its ReplicaSets active scales the newest one up, and with
// the stable one held that would be the history's newest
// (TestRevisionHistoryComesBack). Run again after a crash, it goes on
// where it stopped.
func (e *Executor) takeOver(ctx context.Context, w *workload, live *appsv1.Deployment, cm *corev1.ConfigMap) (*corev1.ConfigMap, error) {
	ns := w.t.Namespace
	if cm != nil && !live.Spec.Paused && live.Spec.Template.Labels[LabelVersion] == w.version {
		// Taken over at an earlier step: the new template was applied,
		// which comes after the last ReplicaSet moved.
		return cm, nil
	}
	rss, err := e.replicaSetsOf(ctx, live, live.UID)
	if err != nil {
		return nil, err
	}
	rss = slices.DeleteFunc(rss, func(rs appsv1.ReplicaSet) bool { return rs.Spec.Template.Labels[LabelVersion] == w.version })
	if cm == nil {
		if cm, err = e.createHold(ctx, w, live, rss); err != nil {
			return nil, err
		}
	}
	if len(rss) == 0 {
		return cm, nil
	}
	ann := map[string]any{}
	if _, ok := live.Annotations[AnnotationOriginalReplicas]; !ok {
		orig := int32(1)
		if live.Spec.Replicas != nil {
			orig = *live.Spec.Replicas
		}
		ann[AnnotationOriginalReplicas] = itoa(orig)
	}
	if _, ok := live.Annotations[AnnotationPreviousTemplate]; !ok {
		prev, err := json.Marshal(live.Spec.Template)
		if err != nil {
			return nil, err
		}
		ann[AnnotationPreviousTemplate] = string(prev)
	}
	if len(ann) > 0 || !live.Spec.Paused {
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}, "spec": map[string]any{"paused": true}})
		if _, err := e.patchDeployment(ctx, ns, live.Name, types.MergePatchType, patch); err != nil {
			return nil, err
		}
	}
	return cm, e.moveReplicaSets(ctx, rss, holdRef(cm), "")
}

// createHold creates the hold of w, naming among rss the ReplicaSet of
// the live template (or else the largest) as the stable one.
func (e *Executor) createHold(ctx context.Context, w *workload, live *appsv1.Deployment, rss []appsv1.ReplicaSet) (*corev1.ConfigMap, error) {
	ns := w.t.Namespace
	stable, most := "", int32(0)
	for _, rs := range rss {
		if equalIgnoreHash(&rs.Spec.Template, &live.Spec.Template) {
			stable, most = rs.Name, 1<<30
		} else if rs.Spec.Replicas != nil && *rs.Spec.Replicas > most {
			stable, most = rs.Name, *rs.Spec.Replicas
		}
	}
	owner := controllerRef(live, false)
	owner.Controller = ptrTo(false)
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: w.holdName(), Namespace: ns,
			Labels: map[string]string{LabelManagedBy: "sortie", LabelRole: RoleHold, LabelPipeline: w.t.Pipeline,
				LabelApplication: LabelValue(w.t.Application), LabelTarget: LabelValue(w.t.Target)},
			OwnerReferences: []metav1.OwnerReference{owner},
		},
		Data: map[string]string{holdStable: stable},
	}
	cm, err := e.client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		return e.hold(ctx, w)
	}
	if err != nil {
		return nil, fmt.Errorf("kube: create config map %s/%s: %w", ns, w.holdName(), explain(err))
	}
	return cm, nil
}

// moveReplicaSets makes ref the controller of rss: first (when not
// empty) alone, then the inactive ones together, then the active ones.
func (e *Executor) moveReplicaSets(ctx context.Context, rss []appsv1.ReplicaSet, ref metav1.OwnerReference, first string) error {
	rounds := make([][]*appsv1.ReplicaSet, 3)
	for i := range rss {
		rs := &rss[i]
		if c := metav1.GetControllerOf(rs); c != nil && c.UID == ref.UID {
			continue
		}
		switch {
		case rs.Name == first:
			rounds[0] = append(rounds[0], rs)
		case rs.Spec.Replicas == nil || *rs.Spec.Replicas > 0:
			rounds[2] = append(rounds[2], rs)
		default:
			rounds[1] = append(rounds[1], rs)
		}
	}
	for _, round := range rounds {
		g, gctx := errgroup.WithContext(ctx)
		for _, rs := range round {
			g.Go(func() error {
				patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
					"ownerReferences": []metav1.OwnerReference{ref}, "uid": rs.UID}})
				_, err := e.client.AppsV1().ReplicaSets(rs.Namespace).Patch(gctx, rs.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
				if err != nil && !apierrors.IsNotFound(err) {
					return fmt.Errorf("kube: hand replica set %s/%s to %s %s: %w", rs.Namespace, rs.Name, ref.Kind, ref.Name, explain(err))
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
	return nil
}

func controllerRef(d *appsv1.Deployment, block bool) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID,
		Controller: ptrTo(true), BlockOwnerDeletion: ptrTo(block)}
}

func holdRef(cm *corev1.ConfigMap) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: cm.Name, UID: cm.UID,
		Controller: ptrTo(true), BlockOwnerDeletion: ptrTo(true)}
}

// replicaSetsOf lists the ReplicaSets matching d's selector whose
// controller is owner.
func (e *Executor) replicaSetsOf(ctx context.Context, d *appsv1.Deployment, owner types.UID) ([]appsv1.ReplicaSet, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, err
	}
	list, err := e.client.AppsV1().ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("kube: list replica sets in %s: %w", d.Namespace, explain(err))
	}
	var out []appsv1.ReplicaSet
	for _, rs := range list.Items {
		if c := metav1.GetControllerOf(&rs); c != nil && c.UID == owner {
			out = append(out, rs)
		}
	}
	return out, nil
}

// equalIgnoreHash compares pod templates as the Deployment controller
// does, the pod-template-hash label aside.
func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return apiequality.Semantic.DeepEqual(a, b)
}

// setWeightInPlace is the canary step inside the user's Deployment: c of
// its n pods new, then the old version's ReplicaSet at n−c.
func (e *Executor) setWeightInPlace(ctx context.Context, w *workload, live *appsv1.Deployment, n int32, weight int) (Progress, error) {
	cm, err := e.hold(ctx, w)
	if err != nil {
		return Progress{}, err
	}
	if cm, err = e.takeOver(ctx, w, live, cm); err != nil {
		return Progress{}, err
	}
	c := CanaryPods(n, weight)
	pipelineLabel := w.t.Pipeline
	if live.Spec.Template.Labels[LabelVersion] == w.version && live.Spec.Template.Labels[LabelPipeline] != "" {
		pipelineLabel = live.Spec.Template.Labels[LabelPipeline]
	}
	// The old pods this step retires are marked before the new ones start,
	// long before the old ReplicaSet's count changes (see scaleReplicaSet).
	if err := e.markStable(ctx, cm, n-c); err != nil {
		return Progress{}, err
	}
	applied, err := e.applyUserDeployment(ctx, w, live, pipelineLabel, c)
	if err != nil {
		return Progress{}, err
	}
	if err := e.waitNewPods(ctx, w, c); err != nil {
		return Progress{}, err
	}
	if err := e.scaleStable(ctx, cm, n-c); err != nil {
		return Progress{}, err
	}
	return e.progress(ctx, w, applied)
}

// markStable marks the pods of the hold's stable ReplicaSet beyond n as
// the next to go.
func (e *Executor) markStable(ctx context.Context, cm *corev1.ConfigMap, n int32) error {
	rs, sel, err := e.stable(ctx, cm)
	if err != nil || rs == nil || rs.Spec.Replicas == nil || *rs.Spec.Replicas <= n {
		return err
	}
	surplus, err := e.surplusPods(ctx, rs, sel, n)
	if err != nil {
		return err
	}
	_, err = e.markPods(ctx, surplus)
	return err
}

// stable returns the hold's stable ReplicaSet and its selector, or nil.
func (e *Executor) stable(ctx context.Context, cm *corev1.ConfigMap) (*appsv1.ReplicaSet, labels.Selector, error) {
	name := cm.Data[holdStable]
	if name == "" {
		return nil, nil, nil
	}
	rs, err := e.client.AppsV1().ReplicaSets(cm.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("kube: get replica set %s/%s: %w", cm.Namespace, name, explain(err))
	}
	sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil {
		return nil, nil, err
	}
	return rs, sel, nil
}

// applyUserDeployment applies w into the user's Deployment at replicas,
// unpaused, keeping the created-by annotation.
func (e *Executor) applyUserDeployment(ctx context.Context, w *workload, live *appsv1.Deployment, pipelineLabel string, replicas int32) ([]Applied, error) {
	desired := w.desired(w.name(), "", replicas, pipelineLabel)
	if createdBy := live.Annotations[AnnotationCreatedBy]; createdBy != "" {
		desired.SetAnnotations(withLabels(desired.GetAnnotations(), map[string]string{AnnotationCreatedBy: createdBy}))
	}
	if err := unstructured.SetNestedField(desired.Object, false, "spec", "paused"); err != nil {
		return nil, err
	}
	return e.Apply(ctx, w.t.Namespace, []*unstructured.Unstructured{desired})
}

// scaleStable scales the hold's stable ReplicaSet to n and waits until it
// runs n Ready pods.
func (e *Executor) scaleStable(ctx context.Context, cm *corev1.ConfigMap, n int32) error {
	rs, sel, err := e.stable(ctx, cm)
	if err != nil || rs == nil {
		return err
	}
	if rs.Spec.Replicas == nil || *rs.Spec.Replicas != n {
		if err := e.scaleReplicaSet(ctx, rs, sel, n); err != nil {
			return err
		}
	} else if replicaSetScaled(rs) {
		return nil
	}
	return e.waitPods(ctx, cm.Namespace, rs.Name, sel, n, func(*corev1.Pod) bool { return true })
}

// scaleReplicaSet scales rs to n. Scaling down, it retires the surplus
// pods itself rather than wait for the ReplicaSet controller to: that
// controller's requests, under the client-side limit of the controller
// manager (20 a second by default), wait their turn behind its status
// updates, which cost a canary step more than anything else. It picks the
// pods the controller would pick first (deletionOrder), marks them with the
// lowest cost so that the controller, seeing the new count before the
// deletions, picks the same ones, scales, and deletes them once its own
// watch of ReplicaSets shows the new count (sawGeneration). A canary step
// marks them earlier, before the new pods start (markStable): the
// controller reads pods and ReplicaSets from two watches, and a mark made
// just before the new count may reach it after. Should it still pick
// another pod, one old pod too many goes and the controller starts one
// again. Without the rights to patch or delete pods, the controller alone
// does it.
func (e *Executor) scaleReplicaSet(ctx context.Context, rs *appsv1.ReplicaSet, sel labels.Selector, n int32) error {
	var retire []corev1.Pod
	if rs.Spec.Replicas == nil || *rs.Spec.Replicas > n {
		var err error
		if retire, err = e.surplusPods(ctx, rs, sel, n); err != nil {
			return err
		}
	}
	marked, err := e.markPods(ctx, retire)
	if err != nil {
		return err
	}
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, n)
	scaled, err := e.client.AppsV1().ReplicaSets(rs.Namespace).Patch(ctx, rs.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil {
		return fmt.Errorf("kube: scale replica set %s/%s to %d: %w", rs.Namespace, rs.Name, n, explain(err))
	}
	if len(marked) == 0 {
		return nil
	}
	// A pod deleted before the controller has read the new count is, to
	// it, one missing: it would start another. The count is sent to every
	// watcher of ReplicaSets at once; once this one has it, the deletions
	// reach the controller after (a write, then the pods' own watch).
	if err := e.sawGeneration(ctx, rs, scaled.Generation); err != nil {
		return err
	}
	pods := e.client.CoreV1().Pods(rs.Namespace)
	_, err = forEachPod(ctx, marked, func(ctx context.Context, p *corev1.Pod) error {
		return pods.Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}})
	})
	return err
}

// sawGeneration waits until a watch of rs from its resource version shows
// generation gen.
func (e *Executor) sawGeneration(ctx context.Context, rs *appsv1.ReplicaSet, gen int64) error {
	return e.watchReplicaSet(ctx, rs, func(r *appsv1.ReplicaSet) bool { return r.Generation >= gen })
}

// watchReplicaSet watches rs from its resource version until it is
// deleted or done holds of it.
func (e *Executor) watchReplicaSet(ctx context.Context, rs *appsv1.ReplicaSet, done func(*appsv1.ReplicaSet) bool) error {
	byName := fields.OneTermEqualSelector("metadata.name", rs.Name).String()
	err := watchFrom(ctx, rs.ResourceVersion, func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		o.FieldSelector = byName
		return e.client.AppsV1().ReplicaSets(rs.Namespace).Watch(ctx, o)
	}, func(ev watch.Event) (bool, error) {
		r, ok := ev.Object.(*appsv1.ReplicaSet)
		return ok && (ev.Type == watch.Deleted || done(r)), nil
	})
	if err != nil {
		return fmt.Errorf("kube: replica set %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	return nil
}

// markPods gives pods the lowest pod-deletion-cost and returns those that
// carry it.
func (e *Executor) markPods(ctx context.Context, pods []corev1.Pod) ([]corev1.Pod, error) {
	client := e.client.CoreV1().Pods
	return forEachPod(ctx, pods, func(ctx context.Context, p *corev1.Pod) error {
		if p.Annotations[AnnotationPodDeletionCost] == lowestDeletionCost {
			return nil
		}
		patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q},"uid":%q}}`, AnnotationPodDeletionCost, lowestDeletionCost, p.UID)
		_, err := client(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
		return err
	})
}

// AnnotationPodDeletionCost ranks the pods of a ReplicaSet for deletion
// when it scales down: lower first (Kubernetes' own annotation).
const AnnotationPodDeletionCost = "controller.kubernetes.io/pod-deletion-cost"

const lowestDeletionCost = "-2147483648"

// surplusPods are the pods of rs beyond n that its controller would delete
// first.
func (e *Executor) surplusPods(ctx context.Context, rs *appsv1.ReplicaSet, sel labels.Selector, n int32) ([]corev1.Pod, error) {
	list, err := e.client.CoreV1().Pods(rs.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String(), ResourceVersion: "0"})
	if err != nil {
		return nil, fmt.Errorf("kube: list pods in %s: %w", rs.Namespace, explain(err))
	}
	active := slices.DeleteFunc(list.Items, func(p corev1.Pod) bool {
		c := metav1.GetControllerOf(&p)
		return p.DeletionTimestamp != nil || c == nil || c.UID != rs.UID
	})
	if int32(len(active)) <= n {
		return nil, nil
	}
	slices.SortStableFunc(active, deletionOrder(active, time.Now()))
	return active[:int32(len(active))-n], nil
}

// forEachPod runs fn on each pod at once and returns those it succeeded
// on. A pod already gone is left out; a refusal for want of rights ends
// it, leaving the rest to the pods' controller.
func forEachPod(ctx context.Context, pods []corev1.Pod, fn func(context.Context, *corev1.Pod) error) ([]corev1.Pod, error) {
	done := make([]bool, len(pods))
	g, gctx := errgroup.WithContext(ctx)
	for i := range pods {
		g.Go(func() error {
			err := fn(gctx, &pods[i])
			switch {
			case err == nil:
				done[i] = true
			case apierrors.IsNotFound(err), apierrors.IsConflict(err), apierrors.IsForbidden(err):
			default:
				return fmt.Errorf("kube: pod %s/%s: %w", pods[i].Namespace, pods[i].Name, explain(err))
			}
			return nil
		})
	}
	err := g.Wait()
	var out []corev1.Pod
	for i, p := range pods {
		if done[i] {
			out = append(out, p)
		}
	}
	return out, err
}

// waitNewPods waits until w's user Deployment runs exactly n Ready pods of
// the new version.
func (e *Executor) waitNewPods(ctx context.Context, w *workload, n int32) error {
	sel, err := metav1.LabelSelectorAsSelector(w.manifest.Spec.Selector)
	if err != nil {
		return err
	}
	return e.waitPods(ctx, w.t.Namespace, w.name(), sel, n, func(p *corev1.Pod) bool {
		return p.Labels[LabelVersion] == w.version && p.Labels[LabelRole] == ""
	})
}

func replicaSetScaled(rs *appsv1.ReplicaSet) bool {
	want := int32(1)
	if rs.Spec.Replicas != nil {
		want = *rs.Spec.Replicas
	}
	s := rs.Status
	return s.ObservedGeneration >= rs.Generation && s.Replicas == want && s.ReadyReplicas == want && s.AvailableReplicas == want
}

// waitNoPods waits until rs has no pod but those being deleted.
func (e *Executor) waitNoPods(ctx context.Context, rs *appsv1.ReplicaSet) error {
	sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil {
		return err
	}
	return e.waitPods(ctx, rs.Namespace, rs.Name, sel, 0, func(*corev1.Pod) bool { return true })
}

// finishHold, once the user's Deployment runs the new version at full
// size, scales the old version to zero, gives the held ReplicaSets back to
// the Deployment as its history (one with the Deployment's own template is
// deleted instead: the controller would take it for the new one) and
// deletes the hold.
func (e *Executor) finishHold(ctx context.Context, w *workload, cm *corev1.ConfigMap) error {
	ns := w.t.Namespace
	if err := e.scaleStable(ctx, cm, 0); err != nil {
		return err
	}
	live, err := e.live(ctx, ns, w.name())
	if err != nil || live == nil {
		return err
	}
	held, err := e.replicaSetsOf(ctx, live, cm.UID)
	if err != nil {
		return err
	}
	var back []appsv1.ReplicaSet
	for _, rs := range held {
		if equalIgnoreHash(&rs.Spec.Template, &live.Spec.Template) {
			if err := e.deleteReplicaSet(ctx, &rs); err != nil {
				return err
			}
			continue
		}
		// Back to the Deployment once it runs no pod: the stable one's are
		// gone (scaleStable); another's status may not say so yet. The
		// Deployment's status, the sum of its ReplicaSets', counts the
		// pods just gone until their controller writes the new count.
		if rs.Name != cm.Data[holdStable] && rs.Status.Replicas > 0 {
			if err := e.waitNoPods(ctx, &rs); err != nil {
				return err
			}
		}
		back = append(back, rs)
	}
	if err := e.moveReplicaSets(ctx, back, controllerRef(live, true), ""); err != nil {
		return err
	}
	return e.deleteHold(ctx, cm)
}

// rollbackHold puts the user's Deployment back as it was before the canary
// inside it (see the top of this file).
func (e *Executor) rollbackHold(ctx context.Context, w *workload, cm *corev1.ConfigMap) error {
	ns := w.t.Namespace
	live, err := e.live(ctx, ns, w.name())
	if err != nil || live == nil {
		return err
	}
	orig := w.replicas()
	if s, ok := live.Annotations[AnnotationOriginalReplicas]; ok {
		n, err := parseReplicas(live, s)
		if err != nil {
			return err
		}
		orig = n
	}
	// The old version back at full size before the new one goes.
	if err := e.scaleStable(ctx, cm, orig); err != nil {
		return err
	}
	if !live.Spec.Paused {
		if live, err = e.patchDeployment(ctx, ns, w.name(), types.MergePatchType, []byte(`{"spec":{"paused":true}}`)); err != nil {
			return err
		}
	}
	owned, err := e.replicaSetsOf(ctx, live, live.UID)
	if err != nil {
		return err
	}
	if err := e.moveReplicaSets(ctx, owned, holdRef(cm), ""); err != nil {
		return err
	}
	ops := []map[string]any{{"op": "replace", "path": "/spec/replicas", "value": orig}}
	if s, ok := live.Annotations[AnnotationPreviousTemplate]; ok {
		var tmpl corev1.PodTemplateSpec
		if err := json.Unmarshal([]byte(s), &tmpl); err != nil {
			return fmt.Errorf("kube: deployment %s/%s: unreadable %s annotation: %w", ns, live.Name, AnnotationPreviousTemplate, err)
		}
		ops = append(ops, map[string]any{"op": "replace", "path": "/spec/template", "value": tmpl})
	}
	patch, _ := json.Marshal(ops)
	if live, err = e.patchDeployment(ctx, ns, w.name(), types.JSONPatchType, patch); err != nil {
		return err
	}
	held, err := e.replicaSetsOf(ctx, live, cm.UID)
	if err != nil {
		return err
	}
	var back, drop []appsv1.ReplicaSet
	for _, rs := range held {
		if rs.Name == cm.Data[holdStable] || rs.Spec.Template.Labels[LabelVersion] != w.version && !equalIgnoreHash(&rs.Spec.Template, &live.Spec.Template) {
			back = append(back, rs)
		} else {
			drop = append(drop, rs)
		}
	}
	if err := e.moveReplicaSets(ctx, back, controllerRef(live, true), cm.Data[holdStable]); err != nil {
		return err
	}
	if _, err := e.patchDeployment(ctx, ns, w.name(), types.MergePatchType, []byte(`{"spec":{"paused":false}}`)); err != nil {
		return err
	}
	if _, err := e.waitRolledOut(ctx, ns, w.name()); err != nil {
		return err
	}
	for i := range drop {
		if err := e.deleteReplicaSet(ctx, &drop[i]); err != nil {
			return err
		}
	}
	if err := e.deleteHold(ctx, cm); err != nil {
		return err
	}
	return e.patchDeploymentAnnotations(ctx, ns, w.name(), map[string]*string{AnnotationPreviousTemplate: nil, AnnotationOriginalReplicas: nil})
}

func parseReplicas(live *appsv1.Deployment, s string) (int32, error) {
	var n int32
	if _, err := fmt.Sscan(s, &n); err != nil {
		return 0, fmt.Errorf("kube: deployment %s/%s: unreadable %s annotation %q", live.Namespace, live.Name, AnnotationOriginalReplicas, s)
	}
	return n, nil
}

func (e *Executor) patchDeployment(ctx context.Context, ns, name string, pt types.PatchType, patch []byte) (*appsv1.Deployment, error) {
	d, err := e.client.AppsV1().Deployments(ns).Patch(ctx, name, pt, patch, metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil {
		return nil, fmt.Errorf("kube: patch deployment %s/%s: %w", ns, name, explain(err))
	}
	return d, nil
}

// deleteReplicaSet deletes a held ReplicaSet and waits until its pods
// are gone.
func (e *Executor) deleteReplicaSet(ctx context.Context, rs *appsv1.ReplicaSet) error {
	fg := metav1.DeletePropagationForeground
	err := e.client.AppsV1().ReplicaSets(rs.Namespace).Delete(ctx, rs.Name, metav1.DeleteOptions{PropagationPolicy: &fg, Preconditions: &metav1.Preconditions{UID: &rs.UID}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kube: delete replica set %s/%s: %w", rs.Namespace, rs.Name, explain(err))
	}
	lw := cache.NewListWatchFromClient(e.client.AppsV1().RESTClient(), "replicasets", rs.Namespace, fields.OneTermEqualSelector("metadata.name", rs.Name))
	_, err = watchtools.UntilWithSync(ctx, lw, &appsv1.ReplicaSet{}, func(s cache.Store) (bool, error) {
		return len(s.List()) == 0, nil
	}, func(ev watch.Event) (bool, error) {
		return ev.Type == watch.Deleted, nil
	})
	if err != nil {
		return fmt.Errorf("kube: replica set %s/%s not deleted: %w", rs.Namespace, rs.Name, err)
	}
	return nil
}

// deleteHold deletes the hold once it holds nothing.
func (e *Executor) deleteHold(ctx context.Context, cm *corev1.ConfigMap) error {
	err := e.client.CoreV1().ConfigMaps(cm.Namespace).Delete(ctx, cm.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cm.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("kube: delete config map %s/%s: %w", cm.Namespace, cm.Name, explain(err))
	}
	return nil
}
