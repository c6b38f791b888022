package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
)

func testUsers(t *testing.T, open Opener) {
	s, reopen := open(t)
	ctx := t.Context()
	createTenant(t, s, "acme")
	alice := store.User{Tenant: store.DefaultTenant, Username: "alice", Name: "Alice A.", PasswordHash: []byte("$argon2id$..."),
		Roles: []string{pipeline.RoleDeployer}, CreatedAt: t0, UpdatedAt: t0}
	bob := store.User{Tenant: store.DefaultTenant, Username: "bob", Roles: []string{pipeline.RoleViewer, "qa"},
		Issuer: "https://idp.example", Subject: "b-123", CreatedAt: t0, UpdatedAt: t0}
	acmeAlice := store.User{Tenant: "acme", Username: "alice", PasswordHash: []byte("other"), Roles: []string{pipeline.RoleTenantAdmin}, CreatedAt: t0, UpdatedAt: t0}
	for _, u := range []store.User{bob, alice, acmeAlice} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser %s/%s: %v", u.Tenant, u.Username, err)
		}
	}
	wantErr(t, "CreateUser of a username taken in its tenant", s.CreateUser(ctx, alice), store.ErrConflict)
	wantErr(t, "CreateUser in an unknown tenant", s.CreateUser(ctx, store.User{Tenant: "nobody", Username: "x"}), store.ErrNotFound)

	got, err := s.GetUser(ctx, store.DefaultTenant, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(alice, *got, opts); diff != "" {
		t.Errorf("GetUser (-want +got):\n%s", diff)
	}
	_, err = s.GetUser(ctx, "acme", "bob")
	wantErr(t, "GetUser of another tenant's username", err, store.ErrNotFound)
	list, err := s.ListUsers(ctx, store.DefaultTenant)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.User{alice, bob}, list, opts); diff != "" {
		t.Errorf("ListUsers(main), by username (-want +got):\n%s", diff)
	}

	wantErr(t, "SetUserRoles of another tenant's username", s.SetUserRoles(ctx, "acme", "bob", []string{"viewer"}), store.ErrNotFound)
	if err := s.SetUserRoles(ctx, store.DefaultTenant, "bob", []string{pipeline.RoleDeployer}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetUser(ctx, store.DefaultTenant, "bob"); err != nil || !slices.Equal(got.Roles, []string{pipeline.RoleDeployer}) {
		t.Errorf("bob after SetUserRoles: %+v, %v", got, err)
	}

	// Refresh tokens: used once, revoked with the user's password or the
	// user.
	rt := func(id, username string) store.RefreshToken {
		return store.RefreshToken{ID: id, Hash: []byte("h-" + id), Tenant: store.DefaultTenant, Username: username, CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
	}
	for _, tok := range []store.RefreshToken{rt("a1", "alice"), rt("a2", "alice"), rt("a3", "alice"), rt("b1", "bob")} {
		if err := s.CreateRefreshToken(ctx, tok); err != nil {
			t.Fatalf("CreateRefreshToken %s: %v", tok.ID, err)
		}
	}
	wantErr(t, "CreateRefreshToken of an unknown user", s.CreateRefreshToken(ctx, rt("x1", "nobody")), store.ErrNotFound)
	wantErr(t, "CreateRefreshToken with a taken id", s.CreateRefreshToken(ctx, rt("a1", "alice")), store.ErrConflict)
	c, err := s.ConsumeRefreshToken(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rt("a1", "alice"), *c, opts); diff != "" {
		t.Errorf("ConsumeRefreshToken (-want +got):\n%s", diff)
	}
	_, err = s.ConsumeRefreshToken(ctx, "a1")
	wantErr(t, "ConsumeRefreshToken twice", err, store.ErrNotFound)

	if err := s.SetUserPassword(ctx, store.DefaultTenant, "alice", []byte("new-hash")); err != nil {
		t.Fatal(err)
	}
	_, err = s.ConsumeRefreshToken(ctx, "a2")
	wantErr(t, "ConsumeRefreshToken after a new password", err, store.ErrNotFound)
	wantErr(t, "SetUserPassword of another tenant's username", s.SetUserPassword(ctx, "acme", "bob", []byte("h")), store.ErrNotFound)
	if got, err := s.GetUser(ctx, store.DefaultTenant, "alice"); err != nil || string(got.PasswordHash) != "new-hash" {
		t.Errorf("alice after SetUserPassword: %+v, %v", got, err)
	}

	if err := s.CreateRefreshToken(ctx, rt("a4", "alice")); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeRefreshTokens(ctx, store.DefaultTenant, "alice"); err != nil {
		t.Fatal(err)
	}
	_, err = s.ConsumeRefreshToken(ctx, "a4")
	wantErr(t, "ConsumeRefreshToken after RevokeRefreshTokens", err, store.ErrNotFound)

	wantErr(t, "DeleteUser of another tenant's username", s.DeleteUser(ctx, "acme", "bob"), store.ErrNotFound)
	if err := s.DeleteUser(ctx, store.DefaultTenant, "bob"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteUser twice", s.DeleteUser(ctx, store.DefaultTenant, "bob"), store.ErrNotFound)
	_, err = s.ConsumeRefreshToken(ctx, "b1")
	wantErr(t, "ConsumeRefreshToken of a deleted user", err, store.ErrNotFound)
	// A deleted username may be created again, without the old tokens.
	if err := s.CreateUser(ctx, bob); err != nil {
		t.Errorf("CreateUser of a deleted username: %v", err)
	}

	s2 := reopen(t)
	if got, err := s2.GetUser(ctx, "acme", "alice"); err != nil || !cmp.Equal(acmeAlice, *got, opts) {
		t.Errorf("after reopening, acme's alice: %+v, %v", got, err)
	}
}
