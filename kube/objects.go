package kube

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Labels and annotations Sortie puts on what it manages.
const (
	LabelApplication = "sortie.dev/application"
	LabelPipeline    = "sortie.dev/pipeline"
	LabelTarget      = "sortie.dev/target"
	// LabelVersion names the version of a pod template: a hash of the
	// template the user wrote. Metric queries and Service selectors use it.
	LabelVersion = "sortie.dev/version"
	// LabelRole marks workloads Sortie created beside the user's own:
	// "canary" or "preview".
	LabelRole = "sortie.dev/role"
	// LabelManagedBy marks every object Sortie applied or created.
	LabelManagedBy = "app.kubernetes.io/managed-by"

	// AnnotationOriginalReplicas, on the user's Deployment during a canary,
	// holds its replica count before Sortie scaled it down.
	AnnotationOriginalReplicas = "sortie.dev/original-replicas"
	// AnnotationOriginalSelector, on a Service during blue/green, holds its
	// selector (JSON) before Sortie repointed it.
	AnnotationOriginalSelector = "sortie.dev/original-selector"
	// AnnotationCreatedBy, on a Deployment that did not exist before a
	// pipeline, names that pipeline, so its rollback deletes it.
	AnnotationCreatedBy = "sortie.dev/created-by-pipeline"

	// FieldManager is the server-side apply field manager of every change.
	FieldManager = "sortie"
)

// Roles of the workloads Sortie creates beside the user's Deployment.
const (
	RoleCanary  = "canary"
	RolePreview = "preview"
)

// Decode splits YAML or JSON documents into objects, skipping empty ones and
// flattening v1 Lists.
func Decode(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for i := 0; ; i++ {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.IsList() {
			list, err := u.ToList()
			if err != nil {
				return nil, fmt.Errorf("document %d: %w", i+1, err)
			}
			for j := range list.Items {
				out = append(out, &list.Items[j])
			}
			continue
		}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("document %d: not a Kubernetes object (no apiVersion or kind)", i+1)
		}
		out = append(out, u)
	}
}

// applyOrder sorts objects so that what others need comes first: CRDs,
// Namespaces, then cluster-wide and configuration kinds, then the rest, each
// group in the order given.
func applyOrder(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	rank := func(u *unstructured.Unstructured) int {
		switch u.GetKind() {
		case "CustomResourceDefinition":
			return 0
		case "Namespace":
			return 1
		case "ServiceAccount", "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding",
			"ConfigMap", "Secret", "PersistentVolumeClaim", "ResourceQuota", "LimitRange":
			return 2
		case "Service":
			return 3
		default:
			return 4
		}
	}
	out := append([]*unstructured.Unstructured(nil), objs...)
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}

// LabelValue is name as a label value: itself when Kubernetes takes it,
// else (Armory's target names have spaces and parentheses, such as
// "prod-west (canary-pod)") its letters, digits, '-', '_' and '.' with the
// rest turned to '-', cut to leave room for '-' and 8 hex digits of its
// SHA-256, so that two names stay two values. The annotations and
// ARMORY_* variables keep the name as written.
func LabelValue(name string) string {
	if len(validation.IsValidLabelValue(name)) == 0 {
		return name
	}
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '-'
		}
	}
	s := strings.Trim(string(b), "-_.")
	if len(s) > validation.LabelValueMaxLength-9 {
		s = strings.TrimRight(s[:validation.LabelValueMaxLength-9], "-_.")
	}
	sum := sha256.Sum256([]byte(name))
	if s == "" {
		return hex.EncodeToString(sum[:4])
	}
	return s + "-" + hex.EncodeToString(sum[:4])
}

// versionOf hashes a pod template as the user wrote it, Sortie's own labels
// removed, so the same template always gets the same version.
func versionOf(template map[string]any) string {
	t := deepCopyMap(template)
	if md, ok := t["metadata"].(map[string]any); ok {
		if labels, ok := md["labels"].(map[string]any); ok {
			for _, k := range []string{LabelApplication, LabelPipeline, LabelTarget, LabelVersion, LabelRole, LabelManagedBy} {
				delete(labels, k)
			}
		}
	}
	b, _ := json.Marshal(t) // map keys marshal sorted: stable
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:10]
}

func deepCopyMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	return (&unstructured.Unstructured{Object: m}).DeepCopy().Object
}
