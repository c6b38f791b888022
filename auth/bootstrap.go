package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/sortie-cd/sortie/atomicfile"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

// AdminCredentialsFile is the file, in the data directory, where Bootstrap
// writes the first admin credential.
const AdminCredentialsFile = "admin-credentials.json"

// AdminCredentialName names the credential Bootstrap creates.
const AdminCredentialName = "bootstrap admin"

// CredentialsFile is the content of admin-credentials.json, which
// `sortie login --credentials-file` reads.
type CredentialsFile struct {
	Server       string `json:"server"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// Bootstrap gives a new server its first credential: when tenant main has
// none, it creates one with the organization-admin role and writes it to
// <dataDir>/admin-credentials.json (mode 0600), returning that path for the
// server to print (never print the secret). When main already has a
// credential it does nothing and returns "".
//
// The file is written before the credential is stored, so a crash between
// the two leaves a file with a secret nobody can use, and the next start,
// finding no credential, writes it again; never a credential whose secret
// is lost.
func Bootstrap(ctx context.Context, creds CredentialStore, dataDir, serverURL string) (string, error) {
	if seeded, err := mainHasCredential(ctx, creds); err != nil || seeded {
		return "", err
	}
	c, secret, err := NewCredential(store.DefaultTenant, AdminCredentialName, []string{pipeline.RoleOrganizationAdmin}, time.Now())
	if err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(CredentialsFile{Server: serverURL, ClientID: c.ClientID, ClientSecret: secret}, "", "  ")
	if err != nil {
		return "", fmt.Errorf("auth: bootstrap: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("auth: bootstrap: %w", err)
	}
	path := filepath.Join(dataDir, AdminCredentialsFile)
	if err := atomicfile.WritePrivate(path, append(b, '\n')); err != nil {
		return "", fmt.Errorf("auth: bootstrap: %w", err)
	}
	if err := creds.CreateCredential(ctx, c); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("auth: bootstrap: store credential: %w", err)
	}
	return path, nil
}

// Given is a first admin credential the operator supplies instead of the
// one Bootstrap makes up: a Kubernetes Secret mounted as a directory
// (the Helm chart's bootstrap Secret), so the secret is known before the
// server first starts and never written to the data directory.
type Given struct {
	ClientID     string
	ClientSecret string
}

// The files of a Given credential's directory.
const (
	GivenClientIDFile     = "client-id"
	GivenClientSecretFile = "client-secret"
)

var givenClientID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{2,62}$`)

// minGivenSecretLen is the shortest client secret accepted from an
// operator: as long as the 32 random bytes of a generated one, encoded.
const minGivenSecretLen = 32

// ReadGiven reads a Given credential from dir's client-id and client-secret
// files (surrounding white space trimmed). The secret never appears in an
// error.
func ReadGiven(dir string) (*Given, error) {
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "", fmt.Errorf("auth: bootstrap credential: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	id, err := read(GivenClientIDFile)
	if err != nil {
		return nil, err
	}
	secret, err := read(GivenClientSecretFile)
	if err != nil {
		return nil, err
	}
	g, err := ParseGiven(id, secret)
	if err != nil {
		return nil, fmt.Errorf("auth: bootstrap credential in %s: %w", dir, err)
	}
	return g, nil
}

// ParseGiven checks a Given credential's client id and secret. The secret
// never appears in an error.
func ParseGiven(clientID, secret string) (*Given, error) {
	if !givenClientID.MatchString(clientID) {
		return nil, fmt.Errorf("%s %q: want 3 to 63 lower-case letters, digits and dashes", GivenClientIDFile, clientID)
	}
	if len(secret) < minGivenSecretLen || strings.ContainsFunc(secret, unicode.IsSpace) {
		return nil, fmt.Errorf("%s: want at least %d characters without white space", GivenClientSecretFile, minGivenSecretLen)
	}
	return &Given{ClientID: clientID, ClientSecret: secret}, nil
}

// BootstrapGiven gives a new server the operator's first credential: when
// tenant main has none, it stores g with the organization-admin role
// (its hash only) and returns true. When main already has a credential it
// does nothing and returns false: the given credential seeds the first
// start only, later ones are managed through the API.
func BootstrapGiven(ctx context.Context, creds CredentialStore, g Given) (bool, error) {
	if seeded, err := mainHasCredential(ctx, creds); err != nil || seeded {
		return false, err
	}
	c, err := credentialWith(store.DefaultTenant, g.ClientID, AdminCredentialName, g.ClientSecret, []string{pipeline.RoleOrganizationAdmin}, time.Now())
	if err != nil {
		return false, err
	}
	if err := creds.CreateCredential(ctx, c); err != nil {
		return false, fmt.Errorf("auth: bootstrap: store credential: %w", err)
	}
	return true, nil
}

// mainHasCredential reports whether tenant main has a credential already,
// which is when there is nothing to bootstrap.
func mainHasCredential(ctx context.Context, creds CredentialStore) (bool, error) {
	existing, err := creds.ListCredentials(ctx, store.DefaultTenant)
	if err != nil {
		return false, fmt.Errorf("auth: bootstrap: %w", err)
	}
	return len(existing) > 0, nil
}
