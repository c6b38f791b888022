package secrets_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sortie-cd/sortie/secrets"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/sqlite"
	"github.com/sortie-cd/sortie/webhook"
)

var _ webhook.SecretResolver = (*secrets.Service)(nil)

func openStore(t *testing.T, dir string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "sortie.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newService(t *testing.T, st secrets.Store, o secrets.Options) *secrets.Service {
	t.Helper()
	o.Store = st
	s, err := secrets.New(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func resolve(t *testing.T, s *secrets.Service, tenant, name string) string {
	t.Helper()
	v, _, err := s.Secret(t.Context(), tenant, name)
	if err != nil {
		t.Fatalf("Secret %s/%s: %v", tenant, name, err)
	}
	return v
}

// TestEncryptedAtRest: the database file holds no value, a key file is
// created 0600, values resolve per tenant, and a restart with the same
// key file reads them back.
func TestEncryptedAtRest(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	if err := st.CreateTenant(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, secrets.KeyFile)
	s := newService(t, st, secrets.Options{KeyPath: keyPath})
	info, err := os.Stat(keyPath)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("master key file: %v, %v; want mode 0600", info, err)
	}
	const v1, v2 = "hunter2-main-value-0451", "hunter2-acme-value-0452"
	if _, err := s.Put(t.Context(), store.DefaultTenant, "token", v1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "acme", "token", v2, nil); err != nil {
		t.Fatal(err)
	}
	if got := resolve(t, s, store.DefaultTenant, "token"); got != v1 {
		t.Errorf("main's token = %q", got)
	}
	if got := resolve(t, s, "acme", "token"); got != v2 {
		t.Errorf("acme's token = %q", got)
	}
	var notSet *webhook.SecretNotSetError
	if _, _, err := s.Secret(t.Context(), "acme", "nope"); !errors.As(err, &notSet) {
		t.Errorf("a secret that is not set: %v, want SecretNotSetError", err)
	}
	for _, f := range []string{"sortie.db", "sortie.db-wal"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		if bytes.Contains(b, []byte(v1)) || bytes.Contains(b, []byte(v2)) {
			t.Errorf("%s holds a secret value in clear", f)
		}
	}
	list, err := s.List(t.Context(), "acme")
	if err != nil || len(list) != 1 || list[0].Name != "token" || list[0].Ciphertext != nil {
		t.Errorf("List: %+v, %v", list, err)
	}

	s2 := newService(t, st, secrets.Options{KeyPath: keyPath})
	if got := resolve(t, s2, "acme", "token"); got != v2 {
		t.Errorf("after a restart, acme's token = %q", got)
	}
	// Another master key opens nothing: the server refuses to start.
	if _, err := secrets.New(t.Context(), secrets.Options{Store: st, MasterKey: bytes.Repeat([]byte{7}, secrets.KeySize)}); err == nil {
		t.Error("a start with another master key succeeded")
	}
}

// TestCiphertextBoundToItsRow: a ciphertext copied to another tenant's or
// name's row does not open there.
func TestCiphertextBoundToItsRow(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	s := newService(t, st, secrets.Options{KeyPath: filepath.Join(dir, secrets.KeyFile)})
	if _, err := s.Put(t.Context(), store.DefaultTenant, "a", "value-a", nil); err != nil {
		t.Fatal(err)
	}
	sec, err := st.GetSecret(t.Context(), store.DefaultTenant, "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutSecret(t.Context(), store.Secret{Tenant: store.DefaultTenant, Name: "b", Ciphertext: sec.Ciphertext}); err != nil {
		t.Fatal(err)
	}
	if v, _, err := s.Secret(t.Context(), store.DefaultTenant, "b"); err == nil || strings.Contains(err.Error(), "value-a") {
		t.Errorf("a ciphertext moved to another name opened: %q, %v", v, err)
	}
}

// TestRotateMasterKey rotates while other goroutines keep resolving and
// writing: none fails, the file ends with the new key only, every data key
// is wrapped by it, and a restart reads everything.
func TestRotateMasterKey(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	keyPath := filepath.Join(dir, secrets.KeyFile)
	s := newService(t, st, secrets.Options{KeyPath: keyPath})
	tenants := []string{store.DefaultTenant, "t1", "t2", "t3"}
	for _, tn := range tenants[1:] {
		if err := st.CreateTenant(t.Context(), tn); err != nil {
			t.Fatal(err)
		}
	}
	for _, tn := range tenants {
		if _, err := s.Put(t.Context(), tn, "token", "value-of-"+tn, nil); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := os.ReadFile(keyPath)

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for _, tn := range tenants {
		wg.Go(func() {
			for ctx.Err() == nil {
				v, _, err := s.Secret(context.Background(), tn, "token")
				if err != nil || v != "value-of-"+tn {
					errs <- err
					return
				}
			}
		})
	}
	for range 3 {
		id, err := s.RotateMasterKey(t.Context())
		if err != nil || id == "" {
			t.Fatalf("RotateMasterKey: %q, %v", id, err)
		}
	}
	if _, err := s.Put(t.Context(), "t1", "after", "written-after", nil); err != nil {
		t.Fatal(err)
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a read during the rotation failed: %v", err)
	}

	after, _ := os.ReadFile(keyPath)
	if bytes.Equal(before, after) || strings.Count(strings.TrimSpace(string(after)), "\n") != 1 {
		t.Errorf("key file after rotations:\n%s", after)
	}
	keys, _ := st.ListDataKeys(t.Context())
	for _, k := range keys[1:] {
		if k.MasterKeyID != keys[0].MasterKeyID {
			t.Errorf("data keys wrapped by different master keys: %+v", keys)
		}
	}
	fresh := newService(t, st, secrets.Options{KeyPath: keyPath})
	for _, tn := range tenants {
		if got := resolve(t, fresh, tn, "token"); got != "value-of-"+tn {
			t.Errorf("after restart, %s: %q", tn, got)
		}
	}
	if got := resolve(t, fresh, "t1", "after"); got != "written-after" {
		t.Errorf("after restart, t1/after: %q", got)
	}
}

// TestRotateByConfiguration: a key given by configuration is rotated by a
// restart with the new key and the old as previous; the API's rotation is
// refused.
func TestRotateByConfiguration(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	old, _ := secrets.ParseKey(secrets.NewKey())
	next, _ := secrets.ParseKey(secrets.NewKey())
	s := newService(t, st, secrets.Options{MasterKey: old})
	if _, err := s.Put(t.Context(), store.DefaultTenant, "token", "v", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateMasterKey(t.Context()); !errors.Is(err, secrets.ErrKeyFromConfig) {
		t.Errorf("RotateMasterKey with a configured key: %v", err)
	}
	if _, err := secrets.New(t.Context(), secrets.Options{Store: st, MasterKey: next}); err == nil {
		t.Error("a start with a new key but not the old one succeeded: its data keys cannot be opened")
	}
	s2 := newService(t, st, secrets.Options{MasterKey: next, PreviousMasterKeys: [][]byte{old}})
	if got := resolve(t, s2, store.DefaultTenant, "token"); got != "v" {
		t.Errorf("after re-wrapping: %q", got)
	}
	s3 := newService(t, st, secrets.Options{MasterKey: next})
	if got := resolve(t, s3, store.DefaultTenant, "token"); got != "v" {
		t.Errorf("with the new key alone: %q", got)
	}
	if _, err := secrets.ParseKey("c2hvcnQ="); err == nil {
		t.Error("a short key parsed")
	}
}

// TestInterruptedRotation: a key file left with two keys (a rotation that
// did not finish) is completed at the next start.
func TestInterruptedRotation(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	keyPath := filepath.Join(dir, secrets.KeyFile)
	s := newService(t, st, secrets.Options{KeyPath: keyPath})
	if _, err := s.Put(t.Context(), store.DefaultTenant, "token", "v", nil); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(keyPath)
	if err := os.WriteFile(keyPath, append([]byte(secrets.NewKey()+"\n"), old...), 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := newService(t, st, secrets.Options{KeyPath: keyPath})
	if got := resolve(t, s2, store.DefaultTenant, "token"); got != "v" {
		t.Errorf("after the interrupted rotation: %q", got)
	}
	b, _ := os.ReadFile(keyPath)
	if n := strings.Count(string(b), "\n"); n != 2 { // the comment and one key
		t.Errorf("key file after the start completed the rotation:\n%s", b)
	}
	if err := os.Chmod(keyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.New(t.Context(), secrets.Options{Store: st, KeyPath: keyPath}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a key file readable by others: %v", err)
	}
}

// TestAllowedHosts: a secret keeps its allowed hosts, they are checked when
// set, and a row whose restriction is taken away in the store no longer
// opens.
func TestAllowedHosts(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	s := newService(t, st, secrets.Options{KeyPath: filepath.Join(dir, secrets.KeyFile)})
	hosts := []string{"hooks.example.com", "*.example.org"}
	if _, err := s.Put(t.Context(), store.DefaultTenant, "hook", "hook-value", hosts); err != nil {
		t.Fatal(err)
	}
	v, got, err := s.Secret(t.Context(), store.DefaultTenant, "hook")
	if err != nil || v != "hook-value" || strings.Join(got, ",") != strings.Join(hosts, ",") {
		t.Fatalf("Secret = %q, %v, %v; want the value and %v", v, got, err, hosts)
	}
	if _, err := s.Put(t.Context(), store.DefaultTenant, "bad", "v", []string{"https://x.example.com/"}); err == nil || !strings.Contains(err.Error(), "not a URL") {
		t.Errorf("a URL as an allowed host: %v", err)
	}
	// A new value without hosts keeps them; an empty list lifts them.
	if sec, err := s.Put(t.Context(), store.DefaultTenant, "hook", "hook-value-2", nil); err != nil || strings.Join(sec.AllowedHosts, ",") != strings.Join(hosts, ",") {
		t.Errorf("a new value dropped the allowed hosts: %+v, %v", sec, err)
	}
	if _, got, _ := s.Secret(t.Context(), store.DefaultTenant, "hook"); strings.Join(got, ",") != strings.Join(hosts, ",") {
		t.Errorf("after a new value, the secret's hosts are %v", got)
	}
	if sec, err := s.Put(t.Context(), store.DefaultTenant, "free", "v", []string{}); err != nil || sec.AllowedHosts != nil {
		t.Errorf("an empty list: %+v, %v", sec, err)
	}
	sec, err := st.GetSecret(t.Context(), store.DefaultTenant, "hook")
	if err != nil {
		t.Fatal(err)
	}
	sec.AllowedHosts = nil
	if err := st.PutSecret(t.Context(), *sec); err != nil {
		t.Fatal(err)
	}
	if v, _, err := s.Secret(t.Context(), store.DefaultTenant, "hook"); err == nil || strings.Contains(err.Error(), "hook-value") {
		t.Errorf("a row stripped of its allowed hosts opened: %q, %v", v, err)
	}
}
