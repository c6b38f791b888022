package kube

// The HorizontalPodAutoscaler contract. When an HPA scales the user's
// Deployment, the HPA owns its replica count and Sortie never writes it:
//
//   - the live count N is the base of every split (not the manifest's
//     replicas, which the HPA has long overridden);
//   - a canary at weight w runs CanaryPodsBeside(N, w) new pods beside the
//     N old ones, so they are w % of all (capped at the HPA's maximum), and
//     every step re-reads N, so the share follows the HPA as it scales;
//   - at 100 %, the new template goes into the user's Deployment (its count
//     untouched) and the canary goes; the old template stays remembered
//     until Finalize, so a rollback still restores it;
//   - the user's Deployment is applied without spec.replicas, after the
//     field's ownership has been handed over (releaseReplicas), so the apply
//     neither resets the count nor fights the HPA;
//   - a rollback restores the template only, and the HPA keeps targeting
//     the Deployment throughout, since Sortie never touches the HPA object
//     beyond applying the user's own manifest of it.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// HandoverFieldManager applies a Deployment's live replica count once,
// before Sortie's own field manager lets go of spec.replicas, so the count
// survives the handover to the HorizontalPodAutoscaler.
const HandoverFieldManager = "sortie-hpa-handover"

// autoscaler returns the HorizontalPodAutoscaler that scales Deployment
// ns/name, or nil when none does.
func (e *Executor) autoscaler(ctx context.Context, ns, name string) (*autoscalingv2.HorizontalPodAutoscaler, error) {
	list, err := e.client.AutoscalingV2().HorizontalPodAutoscalers(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("kube: list horizontal pod autoscalers in %s: %w", ns, explain(err))
	}
	for i := range list.Items {
		ref := list.Items[i].Spec.ScaleTargetRef
		if ref.Kind == "Deployment" && ref.Name == name && groupOf(ref.APIVersion) == "apps" {
			return &list.Items[i], nil
		}
	}
	return nil, nil
}

func groupOf(apiVersion string) string {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return ""
	}
	return gv.Group
}

// autoscaled reports whether the live Deployment's count belongs to an
// HPA for this workload, and the base of its split: the live count. A
// canary that began without an HPA (it scaled the Deployment down and
// remembered the count) finishes as it began.
func (e *Executor) autoscaled(ctx context.Context, w *workload, live *appsv1.Deployment) (base int32, hpa *autoscalingv2.HorizontalPodAutoscaler, err error) {
	base = w.replicas()
	if live == nil {
		return base, nil, nil
	}
	if _, scaledDown := live.Annotations[AnnotationOriginalReplicas]; scaledDown {
		return base, nil, nil
	}
	if hpa, err = e.autoscaler(ctx, live.Namespace, live.Name); err != nil || hpa == nil {
		return base, nil, err
	}
	base = 1
	if live.Spec.Replicas != nil {
		base = *live.Spec.Replicas
	}
	return base, hpa, nil
}

// CanaryPodsBeside is the number of new-version pods to run beside n old
// ones so that they are w percent of all: ceil(n·w/(100−w)), at least 1 for
// w > 0, and at most limit (the HPA's maximum; limit < 1 means none). At
// w ≥ 100 no count suffices: the caller promotes instead.
func CanaryPodsBeside(n int32, w int, limit int32) int32 {
	if w <= 0 || n <= 0 {
		return 0
	}
	c := limit
	if w < 100 {
		c = max(int32(math.Ceil(float64(n)*float64(w)/float64(100-w))), 1)
	}
	if limit > 0 {
		c = min(c, limit)
	}
	return c
}

// setWeightBeside is the canary step under an HPA: new pods added beside
// the HPA's count of old ones, never fewer old ones.
func (e *Executor) setWeightBeside(ctx context.Context, w *workload, live *appsv1.Deployment, n int32, hpa *autoscalingv2.HorizontalPodAutoscaler, weight int) (Progress, error) {
	ns := w.t.Namespace
	if weight >= 100 {
		p, err := e.promote(ctx, w, live, false)
		if err != nil {
			return p, err
		}
		if err := e.deleteWorkload(ctx, ns, w.canaryName()); err != nil {
			return p, err
		}
		return e.progress(ctx, w, p.Applied)
	}
	applied, err := e.runCanary(ctx, w, CanaryPodsBeside(n, weight, hpa.Spec.MaxReplicas))
	if err != nil {
		return Progress{}, err
	}
	return e.progress(ctx, w, applied)
}

// releaseReplicas hands spec.replicas of the live Deployment over from
// Sortie's field manager, as the Kubernetes server-side apply guide
// prescribes for a field an HPA takes over: the live count is applied once
// under HandoverFieldManager, so Sortie's next apply, which omits the field,
// leaves the count as it is instead of resetting it.
func (e *Executor) releaseReplicas(ctx context.Context, live *appsv1.Deployment) error {
	if !ownsReplicas(live.ManagedFields, FieldManager) {
		return nil
	}
	n := int32(1)
	if live.Spec.Replicas != nil {
		n = *live.Spec.Replicas
	}
	patch, _ := json.Marshal(map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": live.Name, "namespace": live.Namespace},
		"spec":     map[string]any{"replicas": n},
	})
	force := true
	_, err := e.client.AppsV1().Deployments(live.Namespace).Patch(ctx, live.Name, types.ApplyPatchType, patch, metav1.PatchOptions{FieldManager: HandoverFieldManager, Force: &force})
	if err != nil {
		return fmt.Errorf("kube: hand the replica count of deployment %s/%s over to its autoscaler: %w", live.Namespace, live.Name, explain(err))
	}
	return nil
}

// ownsReplicas reports whether manager's server-side apply owns
// spec.replicas.
func ownsReplicas(entries []metav1.ManagedFieldsEntry, manager string) bool {
	for _, m := range entries {
		if m.Manager != manager || m.Operation != metav1.ManagedFieldsOperationApply || m.FieldsV1 == nil {
			continue
		}
		var fields struct {
			Spec map[string]json.RawMessage `json:"f:spec"`
		}
		if json.Unmarshal(m.FieldsV1.GetRawBytes(), &fields) == nil {
			if _, ok := fields.Spec["f:replicas"]; ok {
				return true
			}
		}
	}
	return false
}
