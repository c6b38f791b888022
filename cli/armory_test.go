package cli

import (
	"slices"
	"testing"
)

func TestArmoryEnvNames(t *testing.T) {
	for flag, want := range map[string][]string{
		"clientId":     {"ARMORY_CLIENTID", "ARMORY_CLIENT_ID"},
		"clientSecret": {"ARMORY_CLIENTSECRET", "ARMORY_CLIENT_SECRET"},
		"authToken":    {"ARMORY_AUTHTOKEN", "ARMORY_AUTH_TOKEN"},
		"addr":         {"ARMORY_ADDR"},
		"output":       {"ARMORY_OUTPUT"},
	} {
		if got := armoryEnvNames(flag); !slices.Equal(got, want) {
			t.Errorf("armoryEnvNames(%q) = %v, want %v", flag, got, want)
		}
	}
}

func TestArmorySlug(t *testing.T) {
	for in, want := range map[string]string{
		"Flagship Team Member": "flagship-team-member",
		"Engineering-Lead":     "engineering-lead",
		"  Tenant  Admin (EU)": "tenant-admin-eu",
		"potato-facts-app":     "potato-facts-app",
		"dev team":             "dev-team",
	} {
		if got := armorySlug(in); got != want {
			t.Errorf("armorySlug(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestArmoryChange(t *testing.T) {
	names := map[string]string{"flagship": "Flagship", "flagship-admin": "Flagship Admin"}
	for in, want := range map[string]string{
		"tenant flagship created":                                           "Created tenant: Flagship",
		"role flagship/flagship-admin created":                              "Created role: Flagship Admin",
		"role flagship/other updated":                                       "Updated role: other",
		"role main/ops deleted":                                             "Deleted role: ops",
		"role main/ops kept: not in the file, and allowAutoDelete is false": "role main/ops kept: not in the file, and allowAutoDelete is false",
	} {
		if got := armoryChange(in, names); got != want {
			t.Errorf("armoryChange(%q) = %q, want %q", in, got, want)
		}
	}
}
