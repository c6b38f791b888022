package deployfile

import (
	"os"
	"path/filepath"
	"testing"
)

// largestExample is the largest deployment file of the shared examples.
func largestExample(b *testing.B) string {
	var largest string
	var size int64
	for _, root := range exampleRoots(b) {
		for _, rel := range armoryDeployFiles(b, root) {
			p := filepath.Join(root, filepath.FromSlash(rel))
			if st, err := os.Stat(p); err == nil && st.Size() > size {
				largest, size = p, st.Size()
			}
		}
	}
	b.Logf("largest example: %s (%d bytes)", largest, size)
	return largest
}

// BenchmarkParseLargest parses and validates the largest example from
// memory, without reading its manifests.
func BenchmarkParseLargest(b *testing.B) {
	data, err := os.ReadFile(largestExample(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if res := Parse("deploy.yml", data); len(res.Errors) > 0 {
			b.Fatal(res.Errors)
		}
	}
}

// BenchmarkValidateLargest loads and validates the largest example file
// (with the manifests it names), as `sortie validate` does.
func BenchmarkValidateLargest(b *testing.B) {
	largest := largestExample(b)
	repo := filepath.Dir(largest)
	if res := Load(largest, Options{WorkDir: repo}); res.File == nil {
		b.Fatal(res.Errors)
	}
	b.ReportAllocs()
	for b.Loop() {
		Load(largest, Options{WorkDir: repo})
	}
}
