package secrets

import (
	"bytes"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
)

// TestKeyFileFailedWriteKeepsKey fills the disk quota mid-write (RLIMIT_FSIZE
// of 0 in a child process, as `ulimit -f 0` did when the bug was found): the
// write fails, the error says so, and the master key file is the old one,
// whole. Before the fix a shadowed error let the truncated file be renamed
// over master.key, losing every secret at the next start.
func TestKeyFileFailedWriteKeepsKey(t *testing.T) {
	if path := os.Getenv("SORTIE_TEST_KEYFILE_CHILD"); path != "" {
		signal.Ignore(syscall.SIGXFSZ) // the write returns EFBIG instead
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 0, Max: 0}); err != nil {
			t.Fatal(err)
		}
		k, err := newMasterKey(randomBytes(KeySize))
		if err != nil {
			t.Fatal(err)
		}
		if err := writeKeyFile(path, []masterKey{k}); err == nil {
			t.Fatal("writeKeyFile succeeded with no room to write")
		} else {
			t.Logf("refused as it should be: %v", err)
		}
		return
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "master.key")
	if _, err := loadKeyFile(path); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil || len(before) == 0 {
		t.Fatalf("key file: %q, %v", before, err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestKeyFileFailedWriteKeepsKey$", "-test.v")
	cmd.Env = append(os.Environ(), "SORTIE_TEST_KEYFILE_CHILD="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("refused as it should be")) {
		t.Fatalf("the child did not run the failing write:\n%s", out)
	}

	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatalf("the key file changed after a failed write:\nbefore %q\nafter  %q", before, after)
	}
	if _, err := loadKeyFile(path); err != nil {
		t.Fatalf("the key file no longer loads: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".master.key.*"))
	if len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}
