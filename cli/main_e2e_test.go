package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sortie-cd/sortie/kubetest"
)

// TestMain either is the sortie command (the scripts of script_e2e_test.go
// run this test binary under that name, a real process with its own
// environment), or runs the tests with the shared local cluster, which the
// end-to-end tests deploy to; the package's other tests do not use it.
func TestMain(m *testing.M) {
	if name := filepath.Base(os.Args[0]); name == "sortie" || name == "armory" {
		code := MainAs(context.Background(), name, os.Args[1:], SystemStreams())
		if code != 0 {
			// For the scripts to check the exit code: testscript only
			// tells success from failure.
			fmt.Fprintf(os.Stderr, "[%s exited %d]\n", name, code)
		}
		os.Exit(code)
	}
	kubetest.Main(m)
}
