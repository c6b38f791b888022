package deployfile

import (
	"testing"
	"testing/fstest"
)

// Files passes the standard library's file system conformance test.
func TestFilesIsAFileSystem(t *testing.T) {
	m := Files{"deploy.yml": "a", "k8s/app.yaml": "b", "k8s/base/svc.yml": "c"}
	if err := fstest.TestFS(m, "deploy.yml", "k8s/app.yaml", "k8s/base/svc.yml"); err != nil {
		t.Fatal(err)
	}
}
