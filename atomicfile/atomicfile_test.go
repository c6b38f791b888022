package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWritePrivateReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WritePrivate(path, []byte("new")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "new" {
		t.Fatalf("content %q, %v", b, err)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", info.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".f.*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// A directory that cannot take a new file: the old content stays.
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	if os.Geteuid() != 0 { // root ignores the directory's mode
		if err := WritePrivate(path, []byte("newer")); err == nil {
			t.Error("a write into a read-only directory succeeded")
		}
		if b, _ := os.ReadFile(path); string(b) != "new" {
			t.Errorf("content after a failed write: %q", b)
		}
	}
}
