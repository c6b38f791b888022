package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/store"
)

// verified issues a token for c and returns its principal as Verify does.
func (f *fixture) verified(t *testing.T, c *store.Credential) (auth.Principal, string) {
	t.Helper()
	tok, err := f.svc.Issue(c)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.svc.Verify(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	return p, tok.AccessToken
}

// two makes two credentials of tenant main and a token of each.
func (f *fixture) two(t *testing.T) (c, other store.Credential, p, q auth.Principal, ctok, otok string) {
	t.Helper()
	c, _ = f.credential(t, "main", "viewer")
	other, _ = f.credential(t, "main", "viewer")
	p, ctok = f.verified(t, &c)
	q, otok = f.verified(t, &other)
	return c, other, p, q, ctok, otok
}

func TestRevokeRefusesTheTokensIssuedBefore(t *testing.T) {
	f := newFixture(t, auth.Options{})
	c, other, _, _, old, others := f.two(t)

	f.svc.Revoke(t.Context(), "main", c.ClientID)
	if _, err := f.svc.Verify(old); !errors.Is(err, auth.ErrTokenRevoked) {
		t.Fatalf("a token issued before the revocation: %v, want ErrTokenRevoked", err)
	}
	if _, err := f.svc.Verify(others); err != nil {
		t.Errorf("another credential's token: %v", err)
	}
	// The same subject in another tenant is another principal.
	f.svc.Revoke(t.Context(), "other", other.ClientID)
	if _, err := f.svc.Verify(others); err != nil {
		t.Errorf("after revoking the subject in another tenant: %v", err)
	}
	// A token issued after the revocation works, even in the same second
	// (the fake clock has not moved).
	if _, fresh := f.verified(t, &c); fresh == old {
		t.Fatal("the same token twice")
	}
	// A second revocation in the same second refuses that token too, and
	// not the next one.
	_, fresh := f.verified(t, &c)
	f.svc.Revoke(t.Context(), "main", c.ClientID)
	if _, err := f.svc.Verify(fresh); !errors.Is(err, auth.ErrTokenRevoked) {
		t.Errorf("a token issued between two revocations in one second: %v, want ErrTokenRevoked", err)
	}
	f.verified(t, &c)
	f.clock.Advance(time.Minute)
	if _, err := f.svc.Verify(old); !errors.Is(err, auth.ErrTokenRevoked) {
		t.Errorf("a minute later, the old token: %v, want ErrTokenRevoked", err)
	}
}

// TestRevokeEndsStreams opens streams of two principals and revokes one:
// its stream ends with ErrTokenRevoked, the other's goes on.
func TestRevokeEndsStreams(t *testing.T) {
	f := newFixture(t, auth.Options{})
	c, _, p, q, _, _ := f.two(t)
	ctx, done := f.svc.Stream(t.Context(), p)
	defer done()
	octx, odone := f.svc.Stream(t.Context(), q)
	defer odone()

	f.svc.Revoke(t.Context(), "main", c.ClientID)
	<-ctx.Done()
	if cause := context.Cause(ctx); !errors.Is(cause, auth.ErrTokenRevoked) {
		t.Errorf("cause %v, want ErrTokenRevoked", cause)
	}
	if octx.Err() != nil {
		t.Errorf("another principal's stream ended: %v", context.Cause(octx))
	}
	// A stream opened with a token verified before the revocation (the
	// revocation came between Verify and Stream) ends at once.
	late, ldone := f.svc.Stream(t.Context(), p)
	defer ldone()
	if !errors.Is(context.Cause(late), auth.ErrTokenRevoked) {
		t.Errorf("a stream of a revoked token: %v, want ended by ErrTokenRevoked", context.Cause(late))
	}
	// done ends a stream and forgets it.
	odone()
	if !errors.Is(context.Cause(octx), context.Canceled) {
		t.Errorf("after done: %v", context.Cause(octx))
	}
}

// TestStreamEndsAtTokenExpiry runs the stream's timer on synctest's clock:
// the stream lives as long as its token, not a moment more.
func TestStreamEndsAtTokenExpiry(t *testing.T) {
	f := newFixture(t, auth.Options{})
	c, _ := f.credential(t, "main", "viewer")
	p, _ := f.verified(t, &c)
	synctest.Test(t, func(t *testing.T) {
		ctx, done := f.svc.Stream(context.Background(), p)
		defer done()
		time.Sleep(auth.DefaultTTL - time.Second)
		if ctx.Err() != nil {
			t.Fatalf("ended a second before the token expires: %v", context.Cause(ctx))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if cause := context.Cause(ctx); !errors.Is(cause, auth.ErrTokenExpired) {
			t.Errorf("at the token's expiry: %v, want ErrTokenExpired", cause)
		}
	})
}

// TestUserChangesRevoke: every change of a user that the API offers, and
// a single sign-on login with other roles, revokes the tokens the user
// holds and ends its streams.
func TestUserChangesRevoke(t *testing.T) {
	const pw = "correct horse battery"
	sso := auth.Identity{Issuer: "https://idp.test", Subject: "s-1", Username: "alice", Tenant: "main", Roles: []string{"viewer"}}
	for name, change := range map[string]func(f *fixture) error{
		"deleted":        func(f *fixture) error { return f.svc.DeleteUser(t.Context(), "main", "alice") },
		"roles changed":  func(f *fixture) error { return f.svc.SetUserRoles(t.Context(), "main", "alice", []string{"deployer"}) },
		"password reset": func(f *fixture) error { return f.svc.SetPassword(t.Context(), "main", "alice", pw+"!") },
		"password changed": func(f *fixture) error {
			return f.svc.ChangePassword(t.Context(), "main", "alice", pw, pw+"!")
		},
		"sso login with other roles": func(f *fixture) error {
			id := sso
			id.Roles = []string{"deployer"}
			_, err := f.svc.ProvisionUser(t.Context(), id)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := userFixture(t, auth.Options{})
			if strings.HasPrefix(name, "sso") {
				if _, err := f.svc.ProvisionUser(t.Context(), sso); err != nil {
					t.Fatal(err)
				}
			} else if _, err := f.svc.CreateUser(t.Context(), "main", "alice", "", pw, []string{"viewer"}); err != nil {
				t.Fatal(err)
			}
			u, err := f.svc.GetUser(t.Context(), "main", "alice")
			if err != nil {
				t.Fatal(err)
			}
			tok, err := auth.IssueUser(f.svc, u)
			if err != nil {
				t.Fatal(err)
			}
			p, err := f.svc.Verify(tok.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			ctx, done := f.svc.Stream(t.Context(), p)
			defer done()
			if strings.HasPrefix(name, "sso") {
				// A login with the same roles revokes nothing: the
				// user's other sessions go on.
				if _, err := f.svc.ProvisionUser(t.Context(), sso); err != nil {
					t.Fatal(err)
				}
				if _, err := f.svc.Verify(tok.AccessToken); err != nil || ctx.Err() != nil {
					t.Errorf("after a login with the same roles: token %v, stream %v", err, context.Cause(ctx))
				}
			}
			if err := change(f); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.Verify(tok.AccessToken); !errors.Is(err, auth.ErrTokenRevoked) {
				t.Errorf("the user's token after the change: %v, want ErrTokenRevoked", err)
			}
			if !errors.Is(context.Cause(ctx), auth.ErrTokenRevoked) {
				t.Errorf("the user's stream after the change: %v, want ended by ErrTokenRevoked", context.Cause(ctx))
			}
		})
	}
}

// TestEndStreamsOfARole: EndStreams ends the streams of the role's holders
// in its tenant only, and leaves their tokens good.
func TestEndStreamsOfARole(t *testing.T) {
	f := newFixture(t, auth.Options{})
	if err := f.store.CreateTenant(t.Context(), "other"); err != nil {
		t.Fatal(err)
	}
	ops, _ := f.credential(t, "main", "ops", "viewer")
	view, _ := f.credential(t, "main", "viewer")
	elsewhere, _ := f.credential(t, "other", "ops")
	var streams []context.Context
	var tokens []string
	for _, c := range []store.Credential{ops, view, elsewhere} {
		p, tok := f.verified(t, &c)
		ctx, done := f.svc.Stream(t.Context(), p)
		defer done()
		streams, tokens = append(streams, ctx), append(tokens, tok)
	}
	f.svc.EndStreams("main", "ops")
	<-streams[0].Done()
	if !errors.Is(context.Cause(streams[0]), auth.ErrRoleRedefined) {
		t.Errorf("the holder's stream: %v, want ErrRoleRedefined", context.Cause(streams[0]))
	}
	for i, what := range []string{"", "a principal without the role", "a holder in another tenant"} {
		if i > 0 && streams[i].Err() != nil {
			t.Errorf("%s: its stream ended: %v", what, context.Cause(streams[i]))
		}
		if _, err := f.svc.Verify(tokens[i]); err != nil {
			t.Errorf("token %d after EndStreams: %v", i, err)
		}
	}
}

// TestRevocationsOutliveARestartAndReachReplicas runs two services (two
// replicas) on one real store: a revocation made through one refuses the
// token there at once, and on the other from its next SyncRevocations,
// whose streams of older tokens end too; a service started afterwards (a
// restart) refuses it from its first SyncRevocations, and tokens issued
// after the revocation work everywhere. Once every token it refused has
// expired, the stored revocation is pruned.
func TestRevocationsOutliveARestartAndReachReplicas(t *testing.T) {
	f := newFixture(t, auth.Options{})
	replica := func() *auth.Service {
		t.Helper()
		ks, err := auth.LoadKeys(f.keys)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := auth.New(auth.Options{Credentials: f.store, Keys: ks, Issuer: issuer, Now: f.clock.Now, Revocations: f.store})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.SyncRevocations(t.Context()); err != nil {
			t.Fatal(err)
		}
		return svc
	}
	a, b := replica(), replica()
	c, _ := f.credential(t, "main", "viewer")
	other, _ := f.credential(t, "main", "viewer")
	tok, err := a.Issue(&c)
	if err != nil {
		t.Fatal(err)
	}
	otok, _ := a.Issue(&other)
	p, err := b.Verify(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	stream, done := b.Stream(t.Context(), p)
	defer done()

	if err := a.Revoke(t.Context(), "main", c.ClientID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(tok.AccessToken); !errors.Is(err, auth.ErrTokenRevoked) {
		t.Fatalf("the replica that revoked: %v, want ErrTokenRevoked", err)
	}
	if err := b.SyncRevocations(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(tok.AccessToken); !errors.Is(err, auth.ErrTokenRevoked) {
		t.Errorf("the other replica after its sync: %v, want ErrTokenRevoked", err)
	}
	if !errors.Is(context.Cause(stream), auth.ErrTokenRevoked) {
		t.Errorf("the other replica's stream of the revoked token: %v, want ended by ErrTokenRevoked", context.Cause(stream))
	}
	// A token the other replica issues now, in the same second, is dated
	// after the revocation: good on both, and its stream is not ended by a
	// later sync of the same revocation.
	fresh, _ := b.Issue(&c)
	for name, svc := range map[string]*auth.Service{"a": a, "b": b} {
		if _, err := svc.Verify(fresh.AccessToken); err != nil {
			t.Errorf("replica %s, a token issued after the revocation: %v", name, err)
		}
	}
	fp, _ := b.Verify(fresh.AccessToken)
	fstream, fdone := b.Stream(t.Context(), fp)
	defer fdone()
	if err := b.SyncRevocations(t.Context()); err != nil {
		t.Fatal(err)
	}
	if fstream.Err() != nil {
		t.Errorf("a stream of a token issued after the revocation ended at a sync: %v", context.Cause(fstream))
	}

	// A restart: a new service on the same store.
	restarted := replica()
	if _, err := restarted.Verify(tok.AccessToken); !errors.Is(err, auth.ErrTokenRevoked) {
		t.Errorf("after a restart, the revoked token: %v, want ErrTokenRevoked", err)
	}
	for name, tk := range map[string]string{"issued after the revocation": fresh.AccessToken, "of another credential": otok.AccessToken} {
		if _, err := restarted.Verify(tk); err != nil {
			t.Errorf("after a restart, a token %s: %v", name, err)
		}
	}

	// Past a token lifetime the revocation is no longer needed: the next
	// revocation prunes it from the store.
	f.clock.Advance(auth.DefaultTTL + time.Minute)
	if err := a.Revoke(t.Context(), "main", other.ClientID); err != nil {
		t.Fatal(err)
	}
	left, err := f.store.ListRevocations(t.Context(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Subject != other.ClientID {
		t.Errorf("stored revocations after the first expired: %+v, want only %s's", left, other.ClientID)
	}
}
