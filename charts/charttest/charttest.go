package charttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/localkube"
)

// Chart is the directory of the repository's chart name.
func Chart(t testing.TB, name string) string {
	t.Helper()
	tools, err := localkube.FindToolsDir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(filepath.Dir(filepath.Dir(tools)), "charts", name)
}

// Helm runs the pinned helm with args (and kubeconfig, when not empty),
// with its own cache and config directories; it returns the standard output
// and the standard error.
func Helm(t testing.TB, kubeconfig string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin, err := localkube.EnsureHelm(ctx, localkube.BuildOptions{Log: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config", "HELM_DATA_HOME="+home+"/data")
	if kubeconfig != "" {
		cmd.Env = append(cmd.Env, "KUBECONFIG="+kubeconfig)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// Process is what the first container of a rendered Deployment runs.
type Process struct {
	// Args are the container's arguments (the image's entrypoint is sortie),
	// with every --flag=PATH under a mount moved under Root.
	Args []string
	// Env is the container's environment: values as rendered (paths under a
	// mount moved under Root), secretKeyRef values from the Secrets, and
	// fieldRef metadata.name as PodName.
	Env []string
	// PodName is the name of the pod this process stands for: the
	// Deployment's name and a random suffix, another on each call, as the
	// pods of one Deployment have.
	PodName string
	// Root stands for the container's file system: each volume is a
	// directory at its mount path, with the items of the ConfigMaps and
	// Secrets it mounts, in the Secret's defaultMode.
	Root string
}

// Container turns the rendered chart's Deployment into its Process. The
// Secrets the operator creates are given by name (key to value); the
// chart's own ConfigMaps and Secrets are taken from the rendering.
func Container(t testing.TB, rendered string, secrets map[string]map[string][]byte) *Process {
	t.Helper()
	objs, err := kube.Decode([]byte(rendered))
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	configMaps := map[string]map[string]string{}
	all := map[string]map[string][]byte{}
	for name, data := range secrets {
		all[name] = data
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment":
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
				t.Fatal(err)
			}
		case "ConfigMap":
			var cm corev1.ConfigMap
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &cm); err != nil {
				t.Fatal(err)
			}
			configMaps[cm.Name] = cm.Data
		case "Secret":
			data := map[string][]byte{}
			raw, _ := o.Object["data"].(map[string]any)
			for k, v := range raw {
				b, err := base64.StdEncoding.DecodeString(v.(string))
				if err != nil {
					t.Fatalf("Secret %s key %s: %v", o.GetName(), k, err)
				}
				data[k] = b
			}
			all[o.GetName()] = data
		}
	}
	if len(d.Spec.Template.Spec.Containers) == 0 {
		t.Fatal("the chart rendered no Deployment with a container")
	}
	c := d.Spec.Template.Spec.Containers[0]
	if len(c.Command) != 0 {
		t.Fatalf("the container overrides the image's entrypoint: %q", c.Command)
	}
	p := &Process{Root: t.TempDir(), PodName: d.GetName() + "-" + strings.ToLower(rand.Text()[:10])}
	volumes := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	for _, m := range c.VolumeMounts {
		dir := filepath.Join(p.Root, m.MountPath)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		v, ok := volumes[m.Name]
		if !ok {
			t.Fatalf("volume mount %s names no volume", m.Name)
		}
		switch {
		case v.ConfigMap != nil:
			data, ok := configMaps[v.ConfigMap.Name]
			if !ok {
				t.Fatalf("volume %s mounts ConfigMap %s, which the chart did not render", m.Name, v.ConfigMap.Name)
			}
			files := map[string][]byte{}
			for k, s := range data {
				files[k] = []byte(s)
			}
			writeItems(t, dir, files, v.ConfigMap.Items, v.ConfigMap.DefaultMode)
		case v.Secret != nil:
			data, ok := all[v.Secret.SecretName]
			if !ok {
				t.Fatalf("volume %s mounts Secret %s, which neither the test nor the chart has", m.Name, v.Secret.SecretName)
			}
			writeItems(t, dir, data, v.Secret.Items, v.Secret.DefaultMode)
		case v.EmptyDir != nil, v.PersistentVolumeClaim != nil:
			// An empty directory, as a new volume is.
		default:
			t.Fatalf("volume %s: a source this package does not know", m.Name)
		}
	}
	inContainer := func(v string) string {
		for _, m := range c.VolumeMounts {
			if v == m.MountPath || strings.HasPrefix(v, m.MountPath+"/") {
				return filepath.Join(p.Root, v)
			}
		}
		return v
	}
	for _, a := range c.Args {
		if name, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(name, "--") {
			a = name + "=" + inContainer(v)
		}
		p.Args = append(p.Args, a)
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			p.Env = append(p.Env, e.Name+"="+inContainer(e.Value))
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := all[ref.Name][ref.Key]
			if !ok {
				t.Fatalf("env %s reads key %s of Secret %s, which is not there", e.Name, ref.Key, ref.Name)
			}
			p.Env = append(p.Env, e.Name+"="+string(v))
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			p.Env = append(p.Env, e.Name+"="+p.PodName)
		default:
			t.Fatalf("env %s: a source this package does not know", e.Name)
		}
	}
	return p
}

// writeItems writes a mounted ConfigMap's or Secret's keys (all, or the
// listed items at their paths) with the volume's mode (default 0644).
func writeItems(t testing.TB, dir string, data map[string][]byte, items []corev1.KeyToPath, defaultMode *int32) {
	t.Helper()
	mode := os.FileMode(0o644)
	if defaultMode != nil {
		mode = os.FileMode(*defaultMode)
	}
	if len(items) == 0 {
		for k := range data {
			items = append(items, corev1.KeyToPath{Key: k, Path: k})
		}
	}
	for _, it := range items {
		b, ok := data[it.Key]
		if !ok {
			t.Fatalf("the mounted object has no key %s", it.Key)
		}
		path := filepath.Join(dir, it.Path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
}
