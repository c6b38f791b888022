package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

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
	existing, err := creds.ListCredentials(ctx, store.DefaultTenant)
	if err != nil {
		return "", fmt.Errorf("auth: bootstrap: %w", err)
	}
	if len(existing) > 0 {
		return "", nil
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
