package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sortie-cd/sortie/client/clienttest"
	"github.com/sortie-cd/sortie/server"
)

// TestNotificationsCLI: against a real server, `sortie notifications add`
// subscribes a Slack-format sink whose webhook URL is a secret, `test`
// sends it a sample (the receiver, on loopback, gets Slack's format), a
// sink that fails makes `test` exit 1 with the reason, `deliveries` shows
// both records with the secret URL masked, `delete` removes it.
func TestNotificationsCLI(t *testing.T) {
	dir := t.TempDir()
	isolateEnv(t, dir)
	srv := clienttest.Start(t, server.Config{DataDir: filepath.Join(dir, "data")})

	var (
		mu     sync.Mutex
		bodies []map[string]any
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var v map[string]any
		json.Unmarshal(b, &v)
		mu.Lock()
		bodies = append(bodies, v)
		mu.Unlock()
		if strings.Contains(r.URL.Path, "broken") {
			http.Error(w, "no such hook", http.StatusNotFound)
		}
	}))
	defer recv.Close()

	run := func(stdin string, args ...string) (int, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := Main(context.Background(), args, IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
		all := out.String() + errOut.String()
		for _, secret := range []string{srv.Credentials.ClientSecret, "T0K3N-good", "T0K3N-broken"} {
			if strings.Contains(all, secret) {
				t.Errorf("sortie %s printed a secret:\n%s", strings.Join(args, " "), all)
			}
		}
		return code, all
	}
	ok := func(stdin string, args ...string) string {
		t.Helper()
		code, out := run(stdin, args...)
		if code != 0 {
			t.Fatalf("sortie %s exited %d:\n%s", strings.Join(args, " "), code, out)
		}
		return out
	}
	ok("", "login", "--credentials-file", srv.CredentialsPath)
	ok(recv.URL+"/services/T0K3N-good\n", "secrets", "set", "slack-good")
	ok(recv.URL+"/services/broken/T0K3N-broken\n", "secrets", "set", "slack-broken")

	if out := ok("", "notifications", "add", "ops", "--sink", "slack", "--url-secret", "slack-good", "--application", "web",
		"--events", "waiting_for_approval,failed"); !strings.Contains(out, "Added subscription ops (slack)") {
		t.Errorf("add said:\n%s", out)
	}
	ok("", "notifications", "add", "broken", "--sink", "slack", "--url-secret", "slack-broken", "--events", "failed")
	if code, out := run("", "notifications", "add", "bad", "--sink", "slack", "--url", recv.URL, "--events", "failed"); code == 0 || !strings.Contains(out, "embeds its token") {
		t.Errorf("a Slack URL given in clear: exit %d:\n%s", code, out)
	}
	if code, out := run("", "notifications", "add", "bad", "--sink", "webhook", "--url", recv.URL, "--events", "exploded"); code == 0 || !strings.Contains(out, `event "exploded"`) {
		t.Errorf("an unknown event: exit %d:\n%s", code, out)
	}
	if out := ok("", "notifications", "list"); !strings.Contains(out, "ops") || !strings.Contains(out, "waiting_for_approval,failed") || !strings.Contains(out, `"urlSecret":"slack-good"`) {
		t.Errorf("list:\n%s", out)
	}

	if out := ok("", "notifications", "test", "ops"); !strings.Contains(out, "Sent a test message to ops") {
		t.Errorf("test ops:\n%s", out)
	}
	mu.Lock()
	if len(bodies) != 1 || !strings.Contains(bodies[0]["text"].(string), "test message for subscription ops") || bodies[0]["blocks"] == nil {
		t.Errorf("the receiver got %v, want one Slack message", bodies)
	}
	mu.Unlock()
	code, out := run("", "notifications", "test", "broken")
	if code != 1 || !strings.Contains(out, "answered 404") {
		t.Errorf("test broken: exit %d:\n%s", code, out)
	}

	out = ok("", "notifications", "deliveries")
	for _, want := range []string{"SUBSCRIPTION", "ops", "sent", "broken", "failed", "answered 404"} {
		if !strings.Contains(out, want) {
			t.Errorf("deliveries lack %q:\n%s", want, out)
		}
	}
	ok("", "notifications", "delete", "ops")
	if code, out := run("", "notifications", "delete", "ops"); code != 1 || !strings.Contains(out, "no subscription ops") {
		t.Errorf("delete twice: exit %d:\n%s", code, out)
	}
}
