package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConnectionPrecedence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	for _, k := range []string{"SORTIE_SERVER", "SORTIE_CLIENT_ID", "SORTIE_CLIENT_SECRET", "SORTIE_TOKEN", "ARMORY_CLIENT_ID", "ARMORY_CLIENT_SECRET", "CI"} {
		t.Setenv(k, "")
	}
	t.Setenv("SORTIE_CONFIG", path)
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	file := configFile{Server: "https://file.example", ClientID: "file-id", ClientSecret: "file-secret", Token: "file-token", TokenExpiry: exp}
	if err := file.save(path); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}

	c, err := resolveConnection(connOptions{})
	if err != nil || c.Server != file.Server || c.ClientID != "file-id" || c.Token.AccessToken != "file-token" || !c.cache {
		t.Errorf("file only: %+v %v", c, err)
	}
	t.Setenv("SORTIE_SERVER", "https://env.example")
	// The saved secret is never sent to another server.
	if _, err := resolveConnection(connOptions{}); err == nil || !strings.Contains(err.Error(), "the saved credentials are for https://file.example") {
		t.Errorf("env server with the file's credentials: %v", err)
	}
	t.Setenv("SORTIE_TOKEN", "t")
	if c, _ := resolveConnection(connOptions{}); c.Server != "https://env.example" || c.cache {
		t.Errorf("env server over file: server %s, cache %t", c.Server, c.cache)
	}
	if c, _ := resolveConnection(connOptions{Server: "https://flag.example"}); c.Server != "https://flag.example" {
		t.Errorf("flag over env: %s", c.Server)
	}
	t.Setenv("SORTIE_TOKEN", "")
	t.Setenv("SORTIE_SERVER", "")
	t.Setenv("ARMORY_CLIENT_ID", "armory-id")
	t.Setenv("ARMORY_CLIENT_SECRET", "armory-secret")
	if c, _ := resolveConnection(connOptions{}); c.ClientID != "armory-id" || c.ClientSecret != "armory-secret" || c.cache {
		t.Errorf("ARMORY_*: %+v", c)
	}
	t.Setenv("SORTIE_CLIENT_ID", "sortie-id")
	t.Setenv("SORTIE_CLIENT_SECRET", "sortie-secret")
	if c, _ := resolveConnection(connOptions{}); c.ClientID != "sortie-id" || c.ClientSecret != "sortie-secret" {
		t.Errorf("SORTIE_* over ARMORY_*: %+v", c)
	}
	t.Setenv("SORTIE_CLIENT_SECRET", "")
	t.Setenv("ARMORY_CLIENT_SECRET", "")
	t.Setenv("SORTIE_TOKEN", "")
	if _, err := resolveConnection(connOptions{}); err == nil {
		t.Error("an id without a secret was accepted")
	}
	t.Setenv("SORTIE_CLIENT_ID", "")
	t.Setenv("ARMORY_CLIENT_ID", "")
	t.Setenv("SORTIE_TOKEN", "given")
	if c, _ := resolveConnection(connOptions{}); c.Token.AccessToken != "given" || c.ClientID != "" {
		t.Errorf("SORTIE_TOKEN: %+v", c)
	}
	t.Setenv("SORTIE_TOKEN", "")
	t.Setenv("CI", "true")
	if c, _ := resolveConnection(connOptions{}); c.cache {
		t.Error("CI=true caches tokens")
	}

	// A broken file is reported by line, without its content.
	os.WriteFile(path, []byte("server: x\nclient_secret: [s3cr3t\n"), 0o600)
	if _, err := resolveConnection(connOptions{}); err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "line") {
		t.Errorf("broken config: %v", err)
	}
}
