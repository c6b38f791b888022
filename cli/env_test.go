package cli

import (
	"path/filepath"
	"testing"
)

// isolateEnv points the CLI at dir for its configuration and clears every
// variable it reads, so a test sees neither the developer's login nor the
// CI runner's environment (CI=true switches the CLI to its CI mode, which
// never saves a login).
func isolateEnv(t *testing.T, dir string) {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("HOME", filepath.Join(dir, "home"))
	for _, k := range []string{"SORTIE_CONFIG", "SORTIE_SERVER", "SORTIE_CLIENT_ID", "SORTIE_CLIENT_SECRET", "SORTIE_TOKEN",
		"ARMORY_CLIENT_ID", "ARMORY_CLIENT_SECRET", "CI", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"} {
		t.Setenv(k, "")
	}
}
