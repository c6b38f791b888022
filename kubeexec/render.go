package kubeexec

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sortie-cd/sortie/deployfile"
	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/pipeline"
)

// DefaultNamespace is where a target without a namespace deploys.
const DefaultNamespace = "default"

// Render returns the objects of the manifests that go to target t, with
// their variables rendered for this pipeline and target.
func Render(f *deployfile.File, application, pipelineID string, t *pipeline.TargetSpec) ([]*unstructured.Unstructured, error) {
	ns := t.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	vars := deployfile.Variables{
		Armory: map[string]string{
			"applicationName": application,
			"deploymentId":    pipelineID,
			"environmentName": t.Name,
			"accountName":     t.Account,
			"namespace":       ns,
		},
		Context: f.Context,
		Secret: func(name string) (string, bool) {
			return "", false // secrets belong in webhooks, not in manifests
		},
	}
	var out []*unstructured.Unstructured
	for _, m := range f.Manifests {
		if len(m.Targets) > 0 && !slices.ContainsFunc(m.Targets, func(r deployfile.Ref) bool { return r.Name == t.Name }) {
			continue
		}
		for _, mf := range m.Files {
			text, err := deployfile.Render(mf.Content, vars)
			if err != nil {
				return nil, fmt.Errorf("manifest %s: %w", mf.Path, err)
			}
			objs, err := kube.Decode([]byte(text))
			if err != nil {
				return nil, fmt.Errorf("manifest %s: %w", mf.Path, err)
			}
			out = append(out, objs...)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no manifests for target %q", t.Name)
	}
	return out, nil
}
