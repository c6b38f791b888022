package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/auth/sso"
)

// The single sign-on flags and variables are parsed once, here, into
// server.Config; the secret's value appears in no error.
func TestServerSSOConfig(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, []byte("file-secret\n"), 0o600)
	t.Setenv("SORTIE_OIDC_CLIENT_SECRET", "")

	parse := func(args ...string) (*sso.Config, error) {
		t.Helper()
		cmd := &cobra.Command{Use: "server"}
		o := &serverOptions{}
		o.bind(cmd)
		if err := cmd.Flags().Parse(args); err != nil {
			t.Fatal(err)
		}
		return o.ssoConfig()
	}
	if c, err := parse(); c != nil || err != nil {
		t.Errorf("no flags: %+v, %v", c, err)
	}
	c, err := parse("--oidc-issuer", "https://idp.example", "--oidc-client-id", "sortie", "--oidc-client-secret-file", secretFile,
		"--oidc-group-role", "ops=main:deployer,release-manager", "--oidc-group-role", "acme=acme:viewer")
	if err != nil {
		t.Fatal(err)
	}
	want := &sso.Config{Issuer: "https://idp.example", ClientID: "sortie", ClientSecret: "file-secret", GroupsClaim: "groups",
		Mappings: []sso.Mapping{{Group: "ops", Tenant: "main", Roles: []string{"deployer", "release-manager"}}, {Group: "acme", Tenant: "acme", Roles: []string{"viewer"}}}}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	t.Setenv("SORTIE_OIDC_ISSUER", "https://idp.example")
	t.Setenv("SORTIE_OIDC_CLIENT_ID", "sortie")
	t.Setenv("SORTIE_OIDC_CLIENT_SECRET", "env-secret-value")
	t.Setenv("SORTIE_OIDC_GROUP_ROLES", "ops=main:deployer;devs=main:viewer")
	c, err = parse()
	if err != nil || c.ClientSecret != "env-secret-value" || len(c.Mappings) != 2 {
		t.Errorf("from the environment: %+v, %v", c, err)
	}
	for name, args := range map[string][]string{
		"bad mapping": {"--oidc-group-role", "ops=main"},
		"no secret":   {"--oidc-client-secret-file", filepath.Join(t.TempDir(), "missing")},
	} {
		_, err := parse(args...)
		if err == nil || strings.Contains(err.Error(), "env-secret-value") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
