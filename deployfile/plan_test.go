package deployfile

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNewPods(t *testing.T) {
	for _, tc := range []struct{ n, w, want int }{
		{4, 25, 1}, {4, 50, 2}, {4, 100, 4}, {4, 0, 0},
		{3, 25, 1}, // 0.75 rounds up
		{10, 33, 4},
		{10, 1, 1}, // at least one pod for w > 0
		{1, 10, 1},
		{0, 50, 0},
		{5, 99, 5},
	} {
		if got := NewPods(tc.n, tc.w); got != tc.want {
			t.Errorf("NewPods(%d, %d) = %d, want %d", tc.n, tc.w, got, tc.want)
		}
	}
}

func TestPlan(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.yaml"), []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 3}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(examplesDir(t), "environments.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// The example's manifests directory does not exist; point it at ours.
	text := strings.Replace(string(src), "path: manifests/ledger/", "path: app.yaml", 1)
	if err := os.WriteFile(filepath.Join(dir, "deploy.yml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	res := Load(filepath.Join(dir, "deploy.yml"), Options{WorkDir: dir})
	if len(res.Errors) > 0 {
		t.Fatal(res.Errors)
	}
	p := NewPlan(res.File)
	var waves [][]string
	for _, w := range p.Waves {
		var names []string
		for _, tp := range w.Targets {
			names = append(names, tp.Name)
		}
		waves = append(waves, names)
	}
	if diff := cmp.Diff([][]string{{"staging"}, {"prod-east", "prod-west"}}, waves); diff != "" {
		t.Fatalf("waves (-want +got):\n%s", diff)
	}
	east := p.Waves[1].Targets[0]
	if len(east.Before) != 2 || east.Before[0].Kind != "pause" || !strings.Contains(east.Before[0].Description, "approval by Release Manager; roll back if none within 4 hours") {
		t.Errorf("prod-east gates: %+v", east.Before)
	}
	// careful: 10% of 3 is 1 pod, 50% is 2, then the implicit 100%.
	var splits [][]PodSplit
	for _, s := range east.Steps {
		if s.Kind == "setWeight" {
			splits = append(splits, s.Pods)
		}
	}
	want := [][]PodSplit{{{"web", 1, 2}}, {{"web", 2, 1}}, {{"web", 3, 0}}}
	if diff := cmp.Diff(want, splits); diff != "" {
		t.Errorf("pod splits (-want +got):\n%s", diff)
	}
	staging := p.Waves[0].Targets[0]
	if staging.Objects != 2 || len(staging.After) != 1 || staging.After[0].Kind != "runWebhook" {
		t.Errorf("staging: %+v", staging)
	}
	if west := p.Waves[1].Targets[1]; west.Objects != 1 {
		t.Errorf("prod-west gets the staging-only ConfigMap: %+v", west)
	}
	var b bytes.Buffer
	if err := p.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"3 targets in 2 waves",
		"goes straight to 100%",
		"Wave 2",
		"1. set weight 10%: web 1 new + 2 old of 3",
		"4. wait for approval\n",
		"5. set weight 100%: web 3 new + 0 old of 3 (end of the strategy)",
		`run webhook "notify" (no callback awaited)`,
	} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("plan text lacks %q:\n%s", s, b.String())
		}
	}
}

func TestPlanBlueGreenAndMesh(t *testing.T) {
	for _, name := range []string{"blue-green.yml", "analysis-mesh.yml"} {
		res := Load(filepath.Join(examplesDir(t), name), Options{WorkDir: t.TempDir()})
		if len(res.Errors) > 0 {
			t.Fatal(res.Errors)
		}
		p := NewPlan(res.File)
		tp := p.Waves[0].Targets[0]
		if len(tp.UnreadManifests) != 1 {
			t.Errorf("%s: the missing manifest is not reported: %+v", name, tp)
		}
		var kinds []string
		for _, s := range tp.Steps {
			kinds = append(kinds, s.Kind)
		}
		switch name {
		case "blue-green.yml":
			want := []string{"deploy", "pause", "analysis", "redirect", "pause", "shutdown"}
			if diff := cmp.Diff(want, kinds); diff != "" || tp.Traffic != TrafficService {
				t.Errorf("blue/green steps (-want +got):\n%s", diff)
			}
			if !strings.Contains(tp.Steps[3].Description, `"shop"`) {
				t.Errorf("redirect: %s", tp.Steps[3].Description)
			}
		case "analysis-mesh.yml":
			if tp.Traffic != TrafficSMI || tp.Steps[0].Pods != nil || !strings.Contains(tp.Steps[0].Description, "10% of traffic") {
				t.Errorf("mesh canary: %+v", tp.Steps[0])
			}
		}
	}
}
