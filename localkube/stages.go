package localkube

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// FailLabel, set on a pod template, makes the simulated kubelet keep the pod
// from becoming Ready, with the label's value as the container's waiting
// reason (for example ImagePullBackOff or CrashLoopBackOff). Tests use it to
// show a failing new version.
const FailLabel = "localkube_fail"

//go:embed stages/pod-fail.yaml
var podFailStage []byte

// writeClusterStages writes the kwok configuration of one cluster: kwok's own
// stages, with pod-ready taught to skip pods carrying FailLabel, plus the
// pod-fail stage that reports the failure reason.
func writeClusterStages(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var out [][]byte
	patched := false
	for _, doc := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var stage map[string]any
		if err := yaml.Unmarshal(doc, &stage); err != nil {
			return fmt.Errorf("localkube: kwok stage: %w", err)
		}
		if name, _ := nested(stage, "metadata", "name").(string); name == "pod-ready" {
			sel, _ := nested(stage, "spec", "selector").(map[string]any)
			if sel == nil {
				return fmt.Errorf("localkube: kwok pod-ready stage has no selector")
			}
			exprs, _ := sel["matchExpressions"].([]any)
			sel["matchExpressions"] = append(exprs, map[string]any{
				"key": ".metadata.labels." + FailLabel, "operator": "DoesNotExist",
			})
			if doc, err = yaml.Marshal(stage); err != nil {
				return err
			}
			patched = true
		}
		out = append(out, bytes.TrimSpace(doc))
	}
	if !patched {
		return fmt.Errorf("localkube: kwok stages have no pod-ready stage to patch")
	}
	out = append(out, bytes.TrimSpace(podFailStage))
	return os.WriteFile(dst, append(bytes.Join(out, []byte("\n---\n")), '\n'), 0o644)
}

func nested(m map[string]any, keys ...string) any {
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}
