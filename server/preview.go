package server

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/sortie-cd/sortie/atomicfile"
	"github.com/sortie-cd/sortie/kube"
	"github.com/sortie-cd/sortie/preview"
	"github.com/sortie-cd/sortie/secrets"
	"github.com/sortie-cd/sortie/store"
)

// previewKey is the key preview URLs are signed with. Servers sharing a
// database (behind one balancer, a preview URL one minted may reach any)
// derive it from the master key they share, as the notification links'
// key is; one server reads it from its data directory, creating it
// (owner-only) the first time.
func previewKey(dataDir string, sec *secrets.Service, shared bool) ([]byte, error) {
	if shared {
		return sec.DerivedKey("preview links")
	}
	path := filepath.Join(dataDir, "preview.key")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, 32)
		rand.Read(key)
		if err := atomicfile.WritePrivate(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n")); err != nil {
			return nil, fmt.Errorf("server: write the preview key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("server: read the preview key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < 32 {
		return nil, fmt.Errorf("server: the preview key %s is not 32 base64-encoded bytes", path)
	}
	return key, nil
}

// previewDoers reach a target's cluster for a preview: through the
// in-process executor's service proxy for the accounts it serves, through
// the agent's relay (which sends Service names to its own service proxy)
// for every other.
type previewDoers struct {
	local map[string]*kube.Executor
	relay relayer
}

func (d previewDoers) Doer(tenant, account string) (preview.Doer, error) {
	if kx, ok := d.local[account]; ok && tenant == store.DefaultTenant {
		rt, err := kx.ServiceProxy()
		if err != nil {
			return nil, err
		}
		return &http.Client{Transport: rt, Timeout: preview.Timeout}, nil
	}
	return d.relay(tenant, account)
}

// serviceURL is the URL a Doer takes to reach a Service's path.
func serviceURL(namespace, service, path string) string {
	return "http://" + kube.ServiceHost(namespace, service) + path
}
