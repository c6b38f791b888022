package deployfile

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkValidateLargest loads and validates the largest example file
// (with the manifests it names), as `sortie validate` does.
func BenchmarkValidateLargest(b *testing.B) {
	shared := sharedDir(b)
	var largest string
	var size int64
	for _, root := range []string{filepath.Join(shared, "examples"), filepath.Join(shared, "armory-examples")} {
		for _, rel := range armoryDeployFiles(b, root) {
			p := filepath.Join(root, filepath.FromSlash(rel))
			if st, err := os.Stat(p); err == nil && st.Size() > size {
				largest, size = p, st.Size()
			}
		}
	}
	repo := filepath.Dir(largest)
	b.Logf("largest example: %s (%d bytes)", largest, size)
	if res := Load(largest, Options{WorkDir: repo}); res.File == nil {
		b.Fatal(res.Errors)
	}
	b.ReportAllocs()
	for b.Loop() {
		Load(largest, Options{WorkDir: repo})
	}
}
