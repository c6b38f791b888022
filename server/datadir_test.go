package server

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrivateDataDir: a data directory that exists open to others (0755) is
// made owner-only, and the server says so; a new one is created owner-only.
func TestPrivateDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	if err := privateDir(dir, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(dir); info.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v, want 0700", info.Mode().Perm())
	}
	if !strings.Contains(logs.String(), "now owner only") {
		t.Errorf("no warning logged:\n%s", logs.String())
	}
	fresh := filepath.Join(t.TempDir(), "new", "data")
	if err := privateDir(fresh, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(fresh); info.Mode().Perm() != 0o700 {
		t.Errorf("new data dir mode %v, want 0700", info.Mode().Perm())
	}
}
