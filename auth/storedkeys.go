package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sortie-cd/sortie/store"
)

// KeyRefresh is how often a KeySet from StoredKeys reads the keys again
// before signing, so that a key another server added signs here too.
const KeyRefresh = time.Minute

// KeyStore keeps the signing keys of the servers sharing a database
// (store.Store does).
type KeyStore interface {
	PutSigningKey(ctx context.Context, k store.SigningKey) error
	ListSigningKeys(ctx context.Context) ([]store.SigningKey, error)
}

// Sealer seals the private keys before the store sees them and opens
// them again (secrets.Service does, under the master key, which every
// server on the database must share).
type Sealer interface {
	Seal(ctx context.Context, purpose string, plain []byte) ([]byte, error)
	Open(ctx context.Context, purpose string, sealed []byte) ([]byte, error)
}

// keyPurpose binds a sealed key to its use.
const keyPurpose = "token signing key"

type storedKeys struct {
	st   KeyStore
	seal Sealer
	now  func() time.Time

	mu   sync.Mutex
	read time.Time // when the keys were last read
}

func (s *storedKeys) stale(d time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now().Sub(s.read) >= d
}

// StoredKeys returns the signing keys kept in st (a first one is made
// when there is none), as several servers on one database share them: a
// token one signed, every other verifies. A key that does not open (sealed
// under another master key) is refused, naming it: the servers' master
// keys differ.
func StoredKeys(ctx context.Context, st KeyStore, seal Sealer, now func() time.Time) (*KeySet, error) {
	if now == nil {
		now = time.Now
	}
	ks := &KeySet{private: map[string]ed25519.PrivateKey{}, stored: &storedKeys{st: st, seal: seal, now: now}}
	if err := ks.load(ctx); err != nil {
		return nil, err
	}
	if len(ks.kids) == 0 {
		if _, err := AddStoredKey(ctx, st, seal, now()); err != nil {
			return nil, err
		}
		if err := ks.load(ctx); err != nil {
			return nil, err
		}
	}
	return ks, nil
}

// AddStoredKey makes a new signing key and stores it sealed: every server
// on the database signs with it within KeyRefresh, and verifies its tokens
// at once. Old keys stay (they verify tokens still alive).
func AddStoredKey(ctx context.Context, st KeyStore, seal Sealer, now time.Time) (string, error) {
	kid, der, err := newKey(now)
	if err != nil {
		return "", err
	}
	sealed, err := seal.Seal(ctx, keyPurpose+" "+kid, der)
	if err != nil {
		return "", fmt.Errorf("auth: new key: %w", err)
	}
	if err := st.PutSigningKey(ctx, store.SigningKey{ID: kid, Sealed: sealed, CreatedAt: now}); err != nil {
		return "", fmt.Errorf("auth: new key: %w", err)
	}
	return kid, nil
}

// load reads every stored key.
func (ks *KeySet) load(ctx context.Context) error {
	s := ks.stored
	s.mu.Lock()
	s.read = s.now()
	s.mu.Unlock()
	list, err := s.st.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("auth: signing keys: %w", err)
	}
	private := map[string]ed25519.PrivateKey{}
	var kids []string
	for _, k := range list {
		der, err := s.seal.Open(ctx, keyPurpose+" "+k.ID, k.Sealed)
		if err != nil {
			return fmt.Errorf("auth: signing key %s: %w (every server on the database needs the same master key)", k.ID, err)
		}
		pk, err := x509.ParsePKCS8PrivateKey(der)
		ed, ok := pk.(ed25519.PrivateKey)
		if err != nil || !ok {
			return fmt.Errorf("auth: signing key %s: %w", k.ID, errors.Join(err, errors.New("not an Ed25519 key")))
		}
		private[k.ID] = ed
		kids = append(kids, k.ID)
	}
	slices.Sort(kids)
	if len(kids) == 0 {
		return nil
	}
	ks.mu.Lock()
	ks.kids, ks.private = kids, private
	ks.mu.Unlock()
	return nil
}

// reload is load when a request needs it: on failure the keys known stay
// (and the next need tries again after the same pause).
func (ks *KeySet) reload() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = ks.load(ctx)
}
