package auth

import (
	"context"
	"fmt"

	"github.com/sortie-cd/sortie/store"
)

// CreateCredential makes a credential of tenant, stores it and returns it
// with its secret, which nothing keeps: show it once.
func (s *Service) CreateCredential(ctx context.Context, tenant, name string, roles []string) (store.Credential, string, error) {
	var (
		c      store.Credential
		secret string
		err    error
	)
	if busy := s.hashing(func() { c, secret, err = NewCredential(tenant, name, roles, s.now()) }); busy != nil {
		return store.Credential{}, "", busy
	}
	if err != nil {
		return store.Credential{}, "", err
	}
	if err := s.creds.CreateCredential(ctx, c); err != nil {
		return store.Credential{}, "", fmt.Errorf("auth: store credential: %w", err)
	}
	return c, secret, nil
}

// hash is HashSecret in a hash slot (ErrBusy when none is free).
func (s *Service) hash(secret string) ([]byte, error) {
	var (
		h   []byte
		err error
	)
	if busy := s.hashing(func() { h, err = HashSecret(secret) }); busy != nil {
		return nil, busy
	}
	return h, err
}

// ListCredentials returns tenant's credentials.
func (s *Service) ListCredentials(ctx context.Context, tenant string) ([]store.Credential, error) {
	return s.creds.ListCredentials(ctx, tenant)
}

// DeleteCredential deletes a credential of tenant and revokes it (Revoke):
// the tokens already issued to it are refused and its streams end.
func (s *Service) DeleteCredential(ctx context.Context, tenant, clientID string) error {
	if err := s.creds.DeleteCredential(ctx, tenant, clientID); err != nil {
		return err
	}
	return s.Revoke(ctx, tenant, clientID)
}

// GetCredential returns a credential of tenant; another tenant's answers
// store.ErrNotFound, as an unknown id does.
func (s *Service) GetCredential(ctx context.Context, tenant, clientID string) (*store.Credential, error) {
	c, err := s.creds.GetCredential(ctx, clientID)
	if err != nil {
		return nil, err
	}
	if c.Tenant != tenant {
		return nil, store.ErrNotFound
	}
	return c, nil
}
