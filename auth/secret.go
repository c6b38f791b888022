package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sortie-cd/sortie/store"
	"golang.org/x/crypto/argon2"
)

// Argon2id parameters: OWASP's minimum recommendation (19 MiB, 2 passes,
// 1 lane). The token endpoint is rate-limited, so the memory a burst of
// verifications takes stays bounded. The parameters are stored with every
// hash, so raising them later leaves existing secrets valid.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
	secretLen    = 32

	// SecretPrefix starts every client secret, so secret scanners and
	// people recognise one when it leaks into a log or a repository.
	SecretPrefix = "sortie_"
)

// NewCredential returns a new credential of tenant with a random client id
// and secret; the credential holds only the secret's hash, the secret itself
// is returned to be shown once.
func NewCredential(tenant, name string, roles []string, now time.Time) (store.Credential, string, error) {
	secret, err := newSecret()
	if err != nil {
		return store.Credential{}, "", err
	}
	c, err := credentialWith(tenant, strings.ToLower(rand.Text()), name, secret, roles, now)
	return c, secret, err
}

// credentialWith is the stored form of a credential whose client id and
// secret are known: the secret's hash only.
func credentialWith(tenant, clientID, name, secret string, roles []string, now time.Time) (store.Credential, error) {
	hash, err := HashSecret(secret)
	if err != nil {
		return store.Credential{}, err
	}
	return store.Credential{
		Tenant:     tenant,
		ClientID:   clientID,
		Name:       name,
		SecretHash: hash,
		Roles:      roles,
		CreatedAt:  now.UTC(),
	}, nil
}

func newSecret() (string, error) {
	b := make([]byte, secretLen)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: random secret: %w", err)
	}
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// HashSecret returns the PHC-style encoding of secret's argon2id hash:
// $argon2id$v=19$m=M,t=T,p=P$salt$hash (unpadded standard base64).
func HashSecret(secret string) ([]byte, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("auth: random salt: %w", err)
	}
	key := argon2.IDKey([]byte(secret), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Appendf(nil, "$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// VerifySecret reports whether secret matches hash, comparing in constant
// time. A malformed hash never matches.
func VerifySecret(hash []byte, secret string) bool {
	h, err := parseHash(hash)
	if err != nil {
		return false
	}
	key := argon2.IDKey([]byte(secret), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1
}

type argonHash struct {
	time, memory uint32
	threads      uint8
	salt, key    []byte
}

var errBadHash = errors.New("auth: malformed secret hash")

func parseHash(b []byte) (argonHash, error) {
	var h argonHash
	parts := bytes.Split(b, []byte("$"))
	if len(parts) != 6 || len(parts[0]) != 0 || string(parts[1]) != "argon2id" {
		return h, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(string(parts[2]), "v=%d", &version); err != nil || version != argon2.Version {
		return h, errBadHash
	}
	if _, err := fmt.Sscanf(string(parts[3]), "m=%d,t=%d,p=%d", &h.memory, &h.time, &h.threads); err != nil {
		return h, errBadHash
	}
	// Bounds keep a corrupted or planted row from making verification
	// allocate without limit.
	if h.time < 1 || h.time > 16 || h.memory < 1024 || h.memory > 1<<20 || h.threads < 1 {
		return h, errBadHash
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.DecodeString(string(parts[4])); err != nil || len(h.salt) < 8 {
		return h, errBadHash
	}
	if h.key, err = base64.RawStdEncoding.DecodeString(string(parts[5])); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return h, errBadHash
	}
	return h, nil
}

// dummyHash is verified against when a client id is unknown, so that an
// unknown id costs as much time as a wrong secret and ids cannot be probed.
// It is made on first use: the CLI links this package and must start fast.
var dummyHash = sync.OnceValue(func() []byte {
	h, err := HashSecret("sortie-dummy-secret")
	if err != nil {
		panic(err)
	}
	return h
})
