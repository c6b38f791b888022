package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sortie-cd/sortie/atomicfile"
)

// KeysDir is the folder of the data directory holding the signing keys.
const KeysDir = "keys"

const keyExt = ".pem"

// KeySet is the server's token signing keys. The key with the greatest id
// (ids start with their creation time) signs; all of them verify.
type KeySet struct {
	mu      sync.RWMutex
	kids    []string // sorted
	private map[string]ed25519.PrivateKey
	// stored, when not nil, is where the keys come from (StoredKeys):
	// they are read again when a token names a key not known here, or
	// when they were read more than KeyRefresh ago.
	stored *storedKeys
}

// LoadKeys reads every key of dir (<data-dir>/keys), creating dir and a
// first key when there is none. A key file readable by anyone but its owner
// is refused, as ssh refuses a private key.
func LoadKeys(dir string) (*KeySet, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: keys folder: %w", err)
	}
	ks, err := readKeys(dir)
	if err != nil {
		return nil, err
	}
	if len(ks.kids) == 0 {
		if _, err := AddKey(dir, time.Now()); err != nil {
			return nil, err
		}
		return readKeys(dir)
	}
	return ks, nil
}

func readKeys(dir string) (*KeySet, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("auth: keys folder: %w", err)
	}
	ks := &KeySet{private: map[string]ed25519.PrivateKey{}}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, keyExt) {
			continue
		}
		path := filepath.Join(dir, name)
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("auth: key %s: %w", path, err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("auth: key %s is readable by others (mode %v); chmod 600 it", path, info.Mode().Perm())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("auth: key %s: %w", path, err)
		}
		key, err := parseKey(b)
		if err != nil {
			return nil, fmt.Errorf("auth: key %s: %w", path, err)
		}
		kid := strings.TrimSuffix(name, keyExt)
		ks.kids = append(ks.kids, kid)
		ks.private[kid] = key
	}
	slices.Sort(ks.kids)
	return ks, nil
}

func parseKey(b []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM PRIVATE KEY")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	ed, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an Ed25519 key", k)
	}
	return ed, nil
}

// AddKey writes a new Ed25519 key to dir (mode 0600) and returns its id. The
// next LoadKeys signs with it and still verifies tokens of the older keys;
// remove an old key's file once its tokens have expired.
func AddKey(dir string, now time.Time) (string, error) {
	kid, der, err := newKey(now)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, kid+keyExt)
	// Written aside and renamed (atomicfile): a crash mid-write leaves a
	// dot-file readKeys skips, never a truncated key that stops the start.
	if err := atomicfile.WritePrivate(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return "", fmt.Errorf("auth: new key: %w", err)
	}
	return kid, nil
}

// newKey makes an Ed25519 key (PKCS #8 DER) and its id: its creation
// time, then random hex.
func newKey(now time.Time) (kid string, der []byte, err error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", nil, fmt.Errorf("auth: new key: %w", err)
	}
	if der, err = x509.MarshalPKCS8PrivateKey(priv); err != nil {
		return "", nil, fmt.Errorf("auth: new key: %w", err)
	}
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return "", nil, fmt.Errorf("auth: new key: %w", err)
	}
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(suffix), der, nil
}

// signing returns the key that signs new tokens.
func (ks *KeySet) signing() (string, ed25519.PrivateKey) {
	if st := ks.stored; st != nil && st.stale(KeyRefresh) {
		ks.reload()
	}
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	kid := ks.kids[len(ks.kids)-1]
	return kid, ks.private[kid]
}

// public returns the verifying key with id kid.
func (ks *KeySet) public(kid string) (ed25519.PublicKey, bool) {
	ks.mu.RLock()
	k, ok := ks.private[kid]
	ks.mu.RUnlock()
	if !ok && ks.stored != nil && ks.stored.stale(time.Second) {
		// Another server may have added it: read them again, at most once
		// a second, so forged kids cost no more than that.
		ks.reload()
		ks.mu.RLock()
		k, ok = ks.private[kid]
		ks.mu.RUnlock()
	}
	if !ok {
		return nil, false
	}
	return k.Public().(ed25519.PublicKey), true
}

// IDs returns the key ids, oldest first.
func (ks *KeySet) IDs() []string {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return slices.Clone(ks.kids)
}
