package secrets

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sortie-cd/sortie/atomicfile"
	"github.com/sortie-cd/sortie/egress"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/webhook"
)

// KeyFile is the master key file's name in the data directory.
const KeyFile = "master.key"

// KeySize is the size of master and data keys: AES-256.
const KeySize = 32

// Store is what a Service needs of the store: store.Store has it.
type Store interface {
	PutSecret(ctx context.Context, s store.Secret) error
	GetSecret(ctx context.Context, tenant, name string) (*store.Secret, error)
	ListSecrets(ctx context.Context, tenant string) ([]store.Secret, error)
	DeleteSecret(ctx context.Context, tenant, name string) error
	CreateDataKey(ctx context.Context, k store.DataKey) error
	GetDataKey(ctx context.Context, tenant string) (*store.DataKey, error)
	ListDataKeys(ctx context.Context) ([]store.DataKey, error)
	ReplaceDataKey(ctx context.Context, old, k store.DataKey) error
}

// Options configure a Service.
type Options struct {
	// Store keeps ciphertexts and wrapped data keys; required.
	Store Store
	// MasterKey, when set (SORTIE_MASTER_KEY), is the master key, and
	// PreviousMasterKeys the ones it replaced, still able to unwrap until
	// the start re-wraps their data keys. When MasterKey is nil the keys
	// live in KeyPath (created with a new key when missing) and
	// RotateMasterKey may replace them.
	MasterKey          []byte
	PreviousMasterKeys [][]byte
	// KeyPath is the master key file: <data-dir>/master.key.
	KeyPath string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives rotations (key ids only); nil discards.
	Log *slog.Logger
}

// masterKey is one master key and its id: a hash prefix, safe to show.
type masterKey struct {
	id   string
	aead cipher.AEAD
	raw  []byte
}

// Service keeps secrets. It is safe for concurrent use.
type Service struct {
	st   Store
	path string // "" when the key is given by configuration
	now  func() time.Time
	log  *slog.Logger

	// mu guards ring: ring[0] wraps new data keys; every entry unwraps.
	// Creating a data key holds it for reading, so a rotation switching
	// the ring sees every key created before the switch in the store.
	mu   sync.RWMutex
	ring []masterKey
	// rotating serialises rotations.
	rotating sync.Mutex
	// keys caches unwrapped data keys by tenant: a rotation re-wraps a
	// data key but never changes it.
	cache sync.Map // tenant -> cipher.AEAD
}

// New returns a Service, creating the master key file if needed and
// re-wrapping any data key an older master key still wraps.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Store == nil {
		return nil, errors.New("secrets: Options need a Store")
	}
	s := &Service{st: o.Store, now: o.Now, log: o.Log}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var raws [][]byte
	if o.MasterKey != nil {
		raws = append([][]byte{o.MasterKey}, o.PreviousMasterKeys...)
	} else {
		if o.KeyPath == "" {
			return nil, errors.New("secrets: Options need a MasterKey or a KeyPath")
		}
		s.path = o.KeyPath
		var err error
		if raws, err = loadKeyFile(o.KeyPath); err != nil {
			return nil, err
		}
	}
	for _, raw := range raws {
		k, err := newMasterKey(raw)
		if err != nil {
			return nil, err
		}
		s.ring = append(s.ring, k)
	}
	if err := s.rewrapAll(ctx); err != nil {
		return nil, err
	}
	if s.path != "" && len(s.ring) > 1 {
		// A rotation was interrupted: it is complete now.
		if err := writeKeyFile(s.path, s.ring[:1]); err != nil {
			return nil, err
		}
		s.ring = s.ring[:1]
	}
	return s, nil
}

// ParseKey decodes a master key given as base64 (SORTIE_MASTER_KEY).
func ParseKey(b64 string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, errors.New("the master key is not base64")
	}
	if len(raw) != KeySize {
		return nil, fmt.Errorf("the master key is %d bytes, want %d (openssl rand -base64 32)", len(raw), KeySize)
	}
	return raw, nil
}

// NewKey returns a new random master key, base64-encoded.
func NewKey() string {
	return base64.StdEncoding.EncodeToString(randomBytes(KeySize))
}

func newMasterKey(raw []byte) (masterKey, error) {
	if len(raw) != KeySize {
		return masterKey{}, fmt.Errorf("secrets: a master key is %d bytes, want %d", len(raw), KeySize)
	}
	a, err := newAEAD(raw)
	if err != nil {
		return masterKey{}, err
	}
	sum := sha256.Sum256(raw)
	return masterKey{id: hex.EncodeToString(sum[:8]), aead: a, raw: bytes.Clone(raw)}, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	return cipher.NewGCM(b)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return b
}

// seal returns nonce || ciphertext.
func seal(a cipher.AEAD, plain, ad []byte) []byte {
	nonce := randomBytes(a.NonceSize())
	return a.Seal(nonce, nonce, plain, ad)
}

func open(a cipher.AEAD, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < a.NonceSize() {
		return nil, errors.New("ciphertext too short")
	}
	return a.Open(nil, sealed[:a.NonceSize()], sealed[a.NonceSize():], ad)
}

func dataKeyAD(tenant string) []byte { return []byte("sortie data key\x00" + tenant) }

// secretAD binds a secret to its row and to its allowed hosts: a store
// row whose restriction was taken away does not open. A secret without
// allowed hosts has the additional data secrets had before them.
func secretAD(tenant, name string, allowedHosts []string) []byte {
	ad := "sortie secret\x00" + tenant + "\x00" + name
	if len(allowedHosts) > 0 {
		ad += "\x00allowed hosts\x00" + strings.Join(allowedHosts, "\x00")
	}
	return []byte(ad)
}

// loadKeyFile reads the master key file (base64 keys, one a line, the
// current first), creating it with a new key when it does not exist.
func loadKeyFile(path string) ([][]byte, error) {
	info, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		k, err := newMasterKey(randomBytes(KeySize))
		if err != nil {
			return nil, err
		}
		if err := writeKeyFile(path, []masterKey{k}); err != nil {
			return nil, err
		}
		return [][]byte{k.raw}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("secrets: master key file: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secrets: master key file %s is readable by others (mode %v); chmod 600 it", path, info.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secrets: master key file: %w", err)
	}
	var raws [][]byte
	for i, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		raw, err := ParseKey(line)
		if err != nil {
			return nil, fmt.Errorf("secrets: master key file %s, line %d: %w", path, i+1, err)
		}
		raws = append(raws, raw)
	}
	if len(raws) == 0 {
		return nil, fmt.Errorf("secrets: master key file %s holds no key", path)
	}
	return raws, nil
}

// writeKeyFile replaces the key file atomically, readable by its owner
// only.
func writeKeyFile(path string, ring []masterKey) error {
	var b strings.Builder
	b.WriteString("# Sortie master key: the first line wraps; the others only unwrap until a rotation ends.\n")
	for _, k := range ring {
		b.WriteString(base64.StdEncoding.EncodeToString(k.raw) + "\n")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("secrets: master key file: %w", err)
	}
	if err := atomicfile.WritePrivate(path, []byte(b.String())); err != nil {
		return fmt.Errorf("secrets: write master key file: %w", err)
	}
	return nil
}

// unwrap opens a wrapped data key with the ring's key of its id.
func (s *Service) unwrap(k store.DataKey) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, m := range s.ring {
		if m.id == k.MasterKeyID {
			key, err := open(m.aead, k.Wrapped, dataKeyAD(k.Tenant))
			if err != nil {
				return nil, fmt.Errorf("secrets: the data key of tenant %s does not open with master key %s", k.Tenant, m.id)
			}
			return key, nil
		}
	}
	return nil, fmt.Errorf("secrets: the data key of tenant %s is wrapped by master key %s, which this server does not have", k.Tenant, k.MasterKeyID)
}

// dataKey returns tenant's data key, creating it when create is set.
func (s *Service) dataKey(ctx context.Context, tenant string, create bool) (cipher.AEAD, error) {
	if a, ok := s.cache.Load(tenant); ok {
		return a.(cipher.AEAD), nil
	}
	for {
		k, err := s.st.GetDataKey(ctx, tenant)
		if errors.Is(err, store.ErrNotFound) && create {
			err = s.createDataKey(ctx, tenant)
			if err == nil || errors.Is(err, store.ErrConflict) {
				continue // read back the key that won
			}
		}
		if err != nil {
			return nil, err
		}
		raw, err := s.unwrap(*k)
		if err != nil {
			return nil, err
		}
		a, err := newAEAD(raw)
		if err != nil {
			return nil, err
		}
		s.cache.Store(tenant, a)
		return a, nil
	}
}

func (s *Service) createDataKey(ctx context.Context, tenant string) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m := s.ring[0]
	return s.st.CreateDataKey(ctx, store.DataKey{
		Tenant: tenant, MasterKeyID: m.id, Wrapped: seal(m.aead, randomBytes(KeySize), dataKeyAD(tenant)), CreatedAt: s.now(),
	})
}

// Put encrypts and stores a secret of tenant, replacing the value of any
// of that name. allowedHosts, when not empty, are the only hosts a request
// carrying the secret may go to (egress.MatchHost patterns); an empty,
// non-nil list means any host; nil keeps the hosts the secret had, so a new
// value does not drop a restriction by omission.
func (s *Service) Put(ctx context.Context, tenant, name, value string, allowedHosts []string) (store.Secret, error) {
	for _, h := range allowedHosts {
		if err := egress.ValidateHost(h); err != nil {
			return store.Secret{}, err
		}
	}
	if allowedHosts == nil {
		old, err := s.st.GetSecret(ctx, tenant, name)
		switch {
		case err == nil:
			allowedHosts = old.AllowedHosts
		case !errors.Is(err, store.ErrNotFound):
			return store.Secret{}, err
		}
	}
	if len(allowedHosts) == 0 {
		allowedHosts = nil
	}
	a, err := s.dataKey(ctx, tenant, true)
	if err != nil {
		return store.Secret{}, err
	}
	sec := store.Secret{Tenant: tenant, Name: name, Ciphertext: seal(a, []byte(value), secretAD(tenant, name, allowedHosts)), AllowedHosts: allowedHosts, UpdatedAt: s.now().UTC()}
	if err := s.st.PutSecret(ctx, sec); err != nil {
		return store.Secret{}, err
	}
	sec.Ciphertext = nil
	return sec, nil
}

// List returns tenant's secrets: names, allowed hosts and times, no value.
func (s *Service) List(ctx context.Context, tenant string) ([]store.Secret, error) {
	return s.st.ListSecrets(ctx, tenant)
}

// Delete deletes a secret of tenant.
func (s *Service) Delete(ctx context.Context, tenant, name string) error {
	return s.st.DeleteSecret(ctx, tenant, name)
}

// Secret implements webhook.SecretResolver: the value and the allowed
// hosts (nil: any). A secret that is not set is a
// *webhook.SecretNotSetError.
func (s *Service) Secret(ctx context.Context, tenant, name string) (string, []string, error) {
	sec, err := s.st.GetSecret(ctx, tenant, name)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil, &webhook.SecretNotSetError{Name: name}
	}
	if err != nil {
		return "", nil, err
	}
	a, err := s.dataKey(ctx, tenant, false)
	if err != nil {
		return "", nil, err
	}
	plain, err := open(a, sec.Ciphertext, secretAD(tenant, name, sec.AllowedHosts))
	if err != nil {
		return "", nil, fmt.Errorf("secrets: secret %s of tenant %s does not decrypt", name, tenant)
	}
	return string(plain), sec.AllowedHosts, nil
}

// ErrKeyFromConfig refuses a rotation of a master key the server was given.
var ErrKeyFromConfig = errors.New("the master key comes from SORTIE_MASTER_KEY: restart the server with the new key in SORTIE_MASTER_KEY and the old one in SORTIE_PREVIOUS_MASTER_KEYS")

// RotateMasterKey makes a new master key and re-wraps every data key with
// it, without stopping anything: until it returns, every key unwraps. It
// returns the new key's id.
func (s *Service) RotateMasterKey(ctx context.Context) (string, error) {
	if s.path == "" {
		return "", ErrKeyFromConfig
	}
	s.rotating.Lock()
	defer s.rotating.Unlock()
	next, err := newMasterKey(randomBytes(KeySize))
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	ring := append([]masterKey{next}, s.ring...)
	// The new key is on disk, beside the old, before it wraps anything.
	if err := writeKeyFile(s.path, ring); err != nil {
		s.mu.Unlock()
		return "", err
	}
	s.ring = ring
	s.mu.Unlock()
	if err := s.rewrapAll(ctx); err != nil {
		return "", err // the file keeps both keys: the next start finishes
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := writeKeyFile(s.path, s.ring[:1]); err != nil {
		return "", err
	}
	s.ring = s.ring[:1]
	s.log.Info("master key rotated", "master_key", next.id)
	return next.id, nil
}

// rewrapAll re-wraps with ring[0] every data key another key wraps.
func (s *Service) rewrapAll(ctx context.Context) error {
	keys, err := s.st.ListDataKeys(ctx)
	if err != nil {
		return fmt.Errorf("secrets: re-wrap data keys: %w", err)
	}
	s.mu.RLock()
	current := s.ring[0]
	s.mu.RUnlock()
	for _, k := range keys {
		if k.MasterKeyID == current.id {
			continue
		}
		raw, err := s.unwrap(k)
		if err != nil {
			return err
		}
		next := store.DataKey{Tenant: k.Tenant, MasterKeyID: current.id, Wrapped: seal(current.aead, raw, dataKeyAD(k.Tenant)), CreatedAt: k.CreatedAt}
		if err := s.st.ReplaceDataKey(ctx, k, next); err != nil {
			return fmt.Errorf("secrets: re-wrap the data key of %s: %w", k.Tenant, err)
		}
	}
	return nil
}

// DerivedKey returns a 32-byte key for purpose, derived (HKDF-SHA256) from
// the current master key: a server key (such as the action links' HMAC
// key) that needs no file of its own. A master key rotation changes it.
func (s *Service) DerivedKey(purpose string) ([]byte, error) {
	s.mu.RLock()
	raw := s.ring[0].raw
	s.mu.RUnlock()
	return hkdf.Key(sha256.New, raw, nil, "sortie "+purpose, KeySize)
}

// internalAD binds a value the server seals for itself to its purpose.
func internalAD(purpose string) []byte { return []byte("sortie internal\x00" + purpose) }

// Seal seals a value of the server's own (the token signing keys, which
// servers sharing a database keep there) under tenant main's data key,
// bound to purpose: a master-key rotation re-wraps that key, so what was
// sealed stays readable.
func (s *Service) Seal(ctx context.Context, purpose string, plain []byte) ([]byte, error) {
	a, err := s.dataKey(ctx, store.DefaultTenant, true)
	if err != nil {
		return nil, fmt.Errorf("secrets: seal %s: %w", purpose, err)
	}
	return seal(a, plain, internalAD(purpose)), nil
}

// Open is Seal's reverse.
func (s *Service) Open(ctx context.Context, purpose string, sealed []byte) ([]byte, error) {
	a, err := s.dataKey(ctx, store.DefaultTenant, true)
	if err != nil {
		return nil, fmt.Errorf("secrets: open %s: %w", purpose, err)
	}
	b, err := open(a, sealed, internalAD(purpose))
	if err != nil {
		return nil, fmt.Errorf("secrets: open %s: it was sealed under another master key, or changed", purpose)
	}
	return b, nil
}
