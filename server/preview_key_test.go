package server_test

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/sortie-cd/sortie/secrets"
	"github.com/sortie-cd/sortie/server"
	"github.com/sortie-cd/sortie/store/sqlite"
)

// TestPreviewKeySharedByReplicas: servers sharing a database sign preview
// URLs with one key (derived from the master key they share), though each
// has its own data directory, so a URL one minted opens on any other
// behind the balancer; one server keeps its own key in its data
// directory, the same across restarts.
func TestPreviewKeySharedByReplicas(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "sortie.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	service := func(key string) *secrets.Service {
		raw, err := secrets.ParseKey(key)
		if err != nil {
			t.Fatal(err)
		}
		sec, err := secrets.New(ctx, secrets.Options{Store: st, MasterKey: raw})
		if err != nil {
			t.Fatal(err)
		}
		return sec
	}
	master := secrets.NewKey()
	a, b := service(master), service(master)
	dirA, dirB := t.TempDir(), t.TempDir()

	ka, err := server.PreviewKey(dirA, a, true)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := server.PreviewKey(dirB, b, true)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ka, kb) || len(ka) < 32 {
		t.Errorf("two replicas with one master key sign previews with different keys (%d, %d bytes)", len(ka), len(kb))
	}

	own, err := server.PreviewKey(dirA, a, false)
	if err != nil {
		t.Fatal(err)
	}
	again, err := server.PreviewKey(dirA, a, false)
	if err != nil {
		t.Fatal(err)
	}
	other, err := server.PreviewKey(dirB, b, false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(own, again) || bytes.Equal(own, other) || bytes.Equal(own, ka) {
		t.Error("one server's preview key is not its data directory's own, kept across restarts")
	}
}
