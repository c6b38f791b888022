package agentpb_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedCodeMatchesProto regenerates the Go code from agent.proto
// (as `make proto` does) and compares it with the committed files. It fails
// when protoc or its plugins are missing: make test installs the plugins and
// .ci/run installs protoc (Debian's protobuf-compiler).
func TestGeneratedCodeMatchesProto(t *testing.T) {
	path := os.Getenv("PATH")
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		path = filepath.Join(strings.TrimSpace(string(out)), "bin") + string(os.PathListSeparator) + path
	}
	for _, tool := range []string{"protoc", "protoc-gen-go", "protoc-gen-go-grpc"} {
		if _, err := lookPath(tool, path); err != nil {
			t.Fatalf("%s is not installed (apt-get install protobuf-compiler; make proto-tools): %v", tool, err)
		}
	}
	dir := t.TempDir()
	cmd := exec.Command("protoc", "--proto_path=.",
		"--go_out="+dir, "--go_opt=paths=source_relative",
		"--go-grpc_out="+dir, "--go-grpc_opt=paths=source_relative",
		"agent.proto")
	cmd.Env = append(os.Environ(), "PATH="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, out)
	}
	for _, f := range []string{"agent.pb.go", "agent_grpc.pb.go"} {
		want, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s does not match agent.proto (or was made by other plugin versions): run make proto", f)
		}
	}
}

func lookPath(name, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return exec.LookPath(name)
}
