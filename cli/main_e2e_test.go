package cli

import (
	"testing"

	"github.com/sortie-cd/sortie/kubetest"
)

// The end-to-end tests run the CLI against a real server deploying to the
// shared local cluster; the other tests of the package do not use it.
func TestMain(m *testing.M) { kubetest.Main(m) }
