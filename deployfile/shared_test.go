package deployfile

import (
	"os"
	"path/filepath"
	"testing"
)

// sharedDir is ../shared beside the repository root (the directory holding
// go.mod), where the design's example files live. Its absence fails the test.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's working directory")
		}
		dir = parent
	}
	shared := filepath.Join(filepath.Dir(dir), "shared")
	if _, err := os.Stat(filepath.Join(shared, "examples")); err != nil {
		t.Fatalf("the shared example files are missing: %v (expected at ../shared beside the repository)", err)
	}
	return shared
}
