package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// reasonTimeout bounds the look at pods after a readiness wait ran out.
const reasonTimeout = 5 * time.Second

// Target is what one pipeline deploys to one namespace of this cluster.
type Target struct {
	Application string
	Pipeline    string
	Target      string
	Namespace   string
	// OwnNamespaces: the target names no namespace, so each object goes to
	// the one its manifest names, or "default"; Namespace is then its
	// Deployments' namespace.
	OwnNamespaces bool
	// Version names what the target deploys (a hash of its manifests, from
	// the plan); empty means each Deployment's pod template's hash.
	Version string
	// Objects are the target's manifests, templated. Deployments among them
	// get the strategy; everything else is applied as it is.
	Objects []*unstructured.Unstructured
	// ActiveService and PreviewService name the Services of a blue/green
	// (PreviewService is optional). MoreServices are the further pairs of
	// a blue/green of several Deployments, each pair selecting the pods of
	// one of them (Armory's trafficManagement.kubernetes lists them).
	ActiveService, PreviewService string
	MoreServices                  []ServicePair
	// Traffic, when set, moves a canary's traffic by weights (SMI, Istio,
	// Gateway API) instead of by pod counts.
	Traffic *Traffic
	// KeepPrevious, when set, has Finalize keep the version it replaces
	// warm beside the user's Deployment, out of traffic (see warm.go).
	KeepPrevious *KeepPrevious
}

// ServicePair is a blue/green's active Service and its optional preview
// Service.
type ServicePair struct{ Active, Preview string }

// servicePairs are every blue/green Service pair of the target.
func (t *Target) servicePairs() []ServicePair {
	var out []ServicePair
	if t.ActiveService != "" {
		out = append(out, ServicePair{t.ActiveService, t.PreviewService})
	}
	return append(out, t.MoreServices...)
}

// Progress reports where a workload step got to.
type Progress struct {
	RequestedWeight int `json:"requestedWeight"`
	// AchievedWeight is the share of the new version's pods among all Ready
	// pods, in percent.
	AchievedWeight int   `json:"achievedWeight"`
	NewPods        int32 `json:"newPods"`
	OldPods        int32 `json:"oldPods"`
	// Applied lists the objects written.
	Applied []Applied `json:"applied,omitempty"`
	Message string    `json:"message,omitempty"`
}

// CanaryPods is the number of new-version pods at weight w of n replicas:
// ceil(n·w/100), at least 1 for w > 0.
func CanaryPods(n int32, w int) int32 {
	if w <= 0 || n <= 0 {
		return 0
	}
	if w >= 100 {
		return n
	}
	c := int32(math.Ceil(float64(n) * float64(w) / 100))
	return max(c, 1)
}

// workload is one Deployment of a target: the manifest as the user wrote it
// and names derived from it.
type workload struct {
	t        *Target
	manifest *appsv1.Deployment
	version  string
}

func (w *workload) name() string        { return w.manifest.Name }
func (w *workload) canaryName() string  { return w.manifest.Name + "-sortie-canary" }
func (w *workload) previewName() string { return w.manifest.Name + "-sortie-preview" }
func (w *workload) replicas() int32 {
	if w.manifest.Spec.Replicas == nil {
		return 1
	}
	return *w.manifest.Spec.Replicas
}

// split separates a target's Deployments from everything else.
func split(t *Target) ([]*workload, []*unstructured.Unstructured, error) {
	var ws []*workload
	var rest []*unstructured.Unstructured
	for _, u := range t.Objects {
		gvk := u.GroupVersionKind()
		if gvk.Group != "apps" || gvk.Kind != "Deployment" {
			rest = append(rest, u)
			continue
		}
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d); err != nil {
			return nil, nil, fmt.Errorf("kube: Deployment %q: %w", u.GetName(), err)
		}
		if d.Spec.Selector == nil {
			return nil, nil, fmt.Errorf("kube: Deployment %q has no spec.selector", d.Name)
		}
		version := t.Version
		if version == "" {
			tmpl, _, _ := unstructured.NestedMap(u.Object, "spec", "template")
			version = versionOf(tmpl)
		}
		ws = append(ws, &workload{t: t, manifest: &d, version: version})
	}
	return ws, rest, nil
}

// desired is the manifest as Sortie applies it: managed-by and target
// labels on the object, application/target/version/pipeline labels on pods,
// with name, replicas, role and selector adjusted for a canary or preview
// (role "" is the user's own Deployment).
func (w *workload) desired(name, role string, replicas int32, pipelineLabel string) *unstructured.Unstructured {
	d := w.manifest.DeepCopy()
	d.TypeMeta = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}
	d.Name = name
	d.Namespace = w.t.Namespace
	d.Status = appsv1.DeploymentStatus{}
	d.Labels = withLabels(d.Labels, map[string]string{
		LabelManagedBy: "sortie", LabelApplication: LabelValue(w.t.Application), LabelTarget: LabelValue(w.t.Target),
	})
	if role != "" {
		d.Labels[LabelRole] = role
		d.Labels[LabelPipeline] = w.t.Pipeline
	}
	d.Spec.Replicas = &replicas
	d.Spec.Template.Labels = withLabels(d.Spec.Template.Labels, map[string]string{
		LabelApplication: LabelValue(w.t.Application), LabelTarget: LabelValue(w.t.Target),
		LabelVersion: w.version, LabelPipeline: pipelineLabel,
	})
	w.stamp(&d.Spec.Template, pipelineLabel)
	if role != "" {
		d.Spec.Template.Labels[LabelRole] = role
		sel := d.Spec.Selector.DeepCopy()
		sel.MatchLabels = withLabels(sel.MatchLabels, map[string]string{LabelRole: role, LabelVersion: w.version})
		d.Spec.Selector = sel
		d.Spec.Template.Labels[LabelVersion] = w.version
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
	if err != nil {
		panic(err) // a typed Deployment always converts
	}
	u := &unstructured.Unstructured{Object: obj}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	return u
}

// Armory's stamp on the pods of a version: the annotations and container
// environment Armory CD-as-a-Service documented, so that files and
// dashboards written for it (kube_pod_annotations queries on the
// replica-set-name, an app reading ARMORY_ENVIRONMENT_NAME) work as they
// did.
const (
	AnnotationArmoryApplication    = "deploy.armory.io/application"
	AnnotationArmoryEnvironment    = "deploy.armory.io/environment"
	AnnotationArmoryReplicaSetName = "deploy.armory.io/replica-set-name"
	AnnotationArmoryDeploymentID   = "deploy.armory.io/deployment-id"
)

// ReplicaSetName is Armory's name for the pods of a version of the
// Deployment name: {{armory.replicaSetName}}.
func ReplicaSetName(deployment, version string) string { return deployment + "-" + version }

// stamp puts Armory's annotations and environment variables on a pod
// template. The deployment id is the pipeline that introduced the version
// (pipelineLabel), so running the same file again changes no pod.
func (w *workload) stamp(pt *corev1.PodTemplateSpec, pipelineLabel string) {
	rs := ReplicaSetName(w.name(), w.version)
	pt.Annotations = withLabels(pt.Annotations, map[string]string{
		AnnotationArmoryApplication: w.t.Application, AnnotationArmoryEnvironment: w.t.Target,
		AnnotationArmoryReplicaSetName: rs, AnnotationArmoryDeploymentID: pipelineLabel,
	})
	env := []corev1.EnvVar{
		{Name: "ARMORY_APPLICATION_NAME", Value: w.t.Application},
		{Name: "ARMORY_ENVIRONMENT_NAME", Value: w.t.Target},
		{Name: "ARMORY_REPLICA_SET_NAME", Value: rs},
		{Name: "ARMORY_DEPLOYMENT_ID", Value: pipelineLabel},
	}
	for i := range pt.Spec.Containers {
		c := &pt.Spec.Containers[i]
		c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool {
			return slices.ContainsFunc(env, func(s corev1.EnvVar) bool { return s.Name == e.Name })
		})
		c.Env = append(c.Env, env...)
	}
}

func withLabels(base, add map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(add))
	maps.Copy(out, base)
	maps.Copy(out, add)
	return out
}

// live returns the user's Deployment as it is in the cluster, or nil.
func (e *Executor) live(ctx context.Context, ns, name string) (*appsv1.Deployment, error) {
	d, err := e.client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kube: get deployment %s/%s: %w", ns, name, explain(err))
	}
	return d, nil
}

// patchAnnotations sets (or, for nil values, removes) annotations with a
// JSON merge patch.
func (e *Executor) patchDeploymentAnnotations(ctx context.Context, ns, name string, ann map[string]*string) error {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
	_, err := e.client.AppsV1().Deployments(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil {
		return fmt.Errorf("kube: annotate deployment %s/%s: %w", ns, name, explain(err))
	}
	return nil
}

func (e *Executor) scale(ctx context.Context, ns, name string, replicas int32) error {
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas)
	_, err := e.client.AppsV1().Deployments(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil {
		return fmt.Errorf("kube: scale deployment %s/%s to %d: %w", ns, name, replicas, explain(err))
	}
	return nil
}

// deleteWorkload deletes a Deployment Sortie created (canary or preview)
// and waits until its pods are gone. Deleting what is already gone is fine.
func (e *Executor) deleteWorkload(ctx context.Context, ns, name string) error {
	d, err := e.live(ctx, ns, name)
	if err != nil || d == nil {
		return err
	}
	if d.Labels[LabelManagedBy] != "sortie" || d.Labels[LabelRole] == "" {
		return fmt.Errorf("kube: refusing to delete deployment %s/%s: Sortie did not create it", ns, name)
	}
	fg := metav1.DeletePropagationForeground
	err = e.client.AppsV1().Deployments(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("kube: delete deployment %s/%s: %w", ns, name, explain(err))
	}
	return e.waitDeploymentGone(ctx, ns, name)
}

// userPods counts the Ready pods of the user's Deployment, new version and
// old, among those the Deployment's selector matches (canary pods included).
func (e *Executor) countReady(ctx context.Context, ns string, sel *metav1.LabelSelector, version string) (newPods, oldPods int32, err error) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return 0, 0, err
	}
	pods, err := e.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: s.String()})
	if err != nil {
		return 0, 0, explain(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || !podReady(p.Status.Conditions) {
			continue
		}
		if p.Labels[LabelVersion] == version {
			newPods++
		} else {
			oldPods++
		}
	}
	return newPods, oldPods, nil
}

func ptrTo[T any](v T) *T { return &v }

func itoa(n int32) string { return strconv.Itoa(int(n)) }
