package deployfile

import (
	"os"
	"path/filepath"
	"testing"
)

// repoRoot is the directory holding go.mod above the test's working directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's working directory")
		}
		dir = parent
	}
}

// examplesDir is the repository's own examples/ folder: files written for
// Sortie that must validate.
func examplesDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(repoRoot(t), "examples")
}

// armoryDir is the corpus of deployment files written by real users of
// Armory CD-as-a-Service: $SORTIE_ARMORY_EXAMPLES, or ../shared/armory-examples
// beside the repository. It is not part of the repository; when it is absent
// the test is skipped and says so loudly (make test prints it too).
func armoryDir(t testing.TB) string {
	t.Helper()
	dir, err := findArmoryDir(t)
	if err != nil {
		t.Skipf("SKIPPED: the Armory users' corpus is not here (%v); set SORTIE_ARMORY_EXAMPLES or put it at ../shared/armory-examples to run this test", err)
	}
	return dir
}

// findArmoryDir is where the Armory corpus should be, and why it is not there.
func findArmoryDir(t testing.TB) (string, error) {
	dir := os.Getenv("SORTIE_ARMORY_EXAMPLES")
	if dir == "" {
		dir = filepath.Join(filepath.Dir(repoRoot(t)), "shared", "armory-examples")
	}
	_, err := os.Stat(dir)
	return dir, err
}

// exampleRoots are the folders of deployment files a test may read: the
// repository's examples, and the Armory corpus when it is present.
func exampleRoots(t testing.TB) []string {
	roots := []string{examplesDir(t)}
	if dir, err := findArmoryDir(t); err == nil {
		roots = append(roots, dir)
	} else {
		t.Logf("the Armory users' corpus is not here (%v); only the repository's examples are used", err)
	}
	return roots
}
