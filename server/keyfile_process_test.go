package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/internal/proctest"
	"github.com/sortie-cd/sortie/notify"
	"github.com/sortie-cd/sortie/secrets"
)

// authReceiver is a webhook sink on loopback that records the
// Authorization header of every call: what a secret decrypted to.
type authReceiver struct {
	*httptest.Server
	mu  sync.Mutex
	got []string
}

func newAuthReceiver(t *testing.T) *authReceiver {
	r := &authReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.got = append(r.got, req.Header.Get("Authorization"))
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *authReceiver) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) == 0 {
		return ""
	}
	return r.got[len(r.got)-1]
}

// storedSecret is a secret put through the API, in a tenant, with a
// notification subscription whose webhook sends it to a receiver: testing
// the subscription shows what the server decrypts it to.
type storedSecret struct{ tenant, name, value string }

// putSecretWithSink stores sec with token (of sec's tenant) and a webhook
// subscription sending it as Authorization to recv.
func (s *liveServer) putSecretWithSink(token string, sec storedSecret, recv *authReceiver) {
	s.t.Helper()
	s.must(200, "PUT", api.Prefix+"/secrets/"+sec.name, token, api.PutSecretRequest{Value: sec.value}, nil)
	sink, _ := json.Marshal(notify.Sink{URL: recv.URL + "/" + sec.name, AuthSecret: sec.name})
	s.must(201, "POST", api.Prefix+"/notifications", token, api.Subscription{ID: sec.name, Events: []string{notify.EventFailed}, SinkType: notify.SinkWebhook, Sink: sink}, nil)
}

// decrypts tests sec's subscription and wants the receiver to get its value.
func (s *liveServer) decrypts(token string, sec storedSecret, recv *authReceiver) {
	s.t.Helper()
	var rec struct {
		Status    string `json:"status"`
		LastError string `json:"lastError"`
	}
	s.must(200, "POST", api.Prefix+"/notifications/"+sec.name+"/test", token, nil, &rec)
	if rec.Status != "sent" || recv.last() != sec.value {
		s.t.Errorf("secret %s of tenant %s: delivery %+v, the receiver got %q; want it sent with the secret's value", sec.name, sec.tenant, rec, recv.last())
	}
}

// TestMasterKeyKeptWhenItsRewriteFails reproduces issue 16 item 13 on a
// real `sortie server` process: with secrets stored in two tenants, the
// process's file-size limit is set to 0 (prlimit, as `ulimit -f 0` did when
// the bug was found) and an organization admin rotates the master key. The
// key file cannot be written: the rotation is refused, master.key is byte
// for byte what it was, no temporary file is left, and the server keeps
// wrapping with the old key (a tenant created afterwards gets a data key
// the old key opens). After a normal restart every secret still
// decrypts. Before the fix the truncated file was renamed over master.key
// and every secret was lost at the next start.
func TestMasterKeyKeptWhenItsRewriteFails(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--public-url", "https://sortie.example", "--egress-allow", "127.0.0.0/8"}
	srv := proctest.StartServerIn(t, dir, nil, args...)
	s := &liveServer{t: t, url: "http://" + srv.Addr}
	root := s.token(srv.Admin.ClientID, srv.Admin.ClientSecret, "")
	s.must(201, "POST", api.Prefix+"/tenants", root, api.CreateTenantRequest{Name: "acme"}, nil)
	recv := newAuthReceiver(t)
	stored := []storedSecret{{"main", "hook-a", "Bearer main-a-value"}, {"main", "hook-b", "Bearer main-b-value"}, {"acme", "hook-c", "Bearer acme-c-value"}}
	tokens := map[string]string{"main": root, "acme": s.token(srv.Admin.ClientID, srv.Admin.ClientSecret, "acme")}
	for _, sec := range stored {
		s.putSecretWithSink(tokens[sec.tenant], sec, recv)
	}
	keyPath := filepath.Join(dir, secrets.KeyFile)
	before, err := os.ReadFile(keyPath)
	if err != nil || len(before) == 0 {
		t.Fatalf("master.key: %q, %v", before, err)
	}

	pid := srv.Cmd.Process.Pid
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: 0, Max: unix.RLIM_INFINITY}, &old); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	code, body := s.do("POST", api.Prefix+"/master-key/rotate", root, api.MasterKeyRotation{})
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &old, nil); err != nil {
		t.Fatalf("prlimit back: %v", err)
	}
	if code == http.StatusOK {
		t.Fatalf("a rotation with no room to write the key file: %d %s, want it refused", code, body)
	}
	t.Logf("the rotation with no room to write: %d %s", code, body)
	for _, line := range strings.Split(string(before), "\n") {
		if len(line) > 20 && !strings.HasPrefix(line, "#") && bytes.Contains(body, []byte(line)) {
			t.Errorf("the refusal shows the master key: %s", body)
		}
	}
	after, err := os.ReadFile(keyPath)
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("master.key after the failed rotation: %q, %v; want it unchanged:\n%q", after, err, before)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "."+secrets.KeyFile+".*")); len(left) > 0 {
		t.Errorf("temporary files left beside master.key: %v", left)
	}
	// The server still wraps with the key on disk: a new tenant's data key.
	s.must(201, "POST", api.Prefix+"/tenants", root, api.CreateTenantRequest{Name: "late"}, nil)
	late := storedSecret{"late", "hook-d", "Bearer late-d-value"}
	tokens["late"] = s.token(srv.Admin.ClientID, srv.Admin.ClientSecret, "late")
	s.putSecretWithSink(tokens["late"], late, recv)
	stored = append(stored, late)
	for _, sec := range stored {
		s.decrypts(tokens[sec.tenant], sec, recv)
	}

	srv.Stop(syscall.SIGTERM)
	srv = proctest.StartServerIn(t, dir, nil, args...)
	s.url = "http://" + srv.Addr
	for _, sec := range stored {
		s.decrypts(s.token(srv.Admin.ClientID, srv.Admin.ClientSecret, sec.tenant), sec, recv)
	}
	if now, _ := os.ReadFile(keyPath); !bytes.Equal(before, now) {
		t.Errorf("master.key changed across the restart")
	}
}
