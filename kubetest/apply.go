package kubetest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/kube"
)

// ApplyFile applies the objects of a YAML file to the shared cluster with
// Sortie's own apply (CRDs first, waiting until they are Established), as
// an operator would have installed them before the test: CRDs, say.
func ApplyFile(t testing.TB, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := kube.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kube.New(Config(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := e.Apply(ctx, "default", objs); err != nil {
		t.Fatal(err)
	}
}
