package store

import (
	"context"
	"time"
)

// Revocation says that the tokens of one principal (a tenant and a token
// subject: a client id or user:<name>) issued in or before the unix second
// At are refused. No such token is valid past Expires anyway (tokens live
// a token lifetime), so the revocation may be forgotten then.
type Revocation struct {
	Tenant  string
	Subject string
	At      int64
	Expires time.Time
}

// Revocations is the store's part for package auth: revoked principals
// kept where a restarted server, or another replica, reads them.
type Revocations interface {
	// PutRevocation records r. A principal has one revocation: the later
	// At (and its Expires) of r and the one stored is kept, so two
	// writers racing cannot move a revocation back.
	PutRevocation(ctx context.Context, r Revocation) error
	// ListRevocations returns the revocations whose Expires is after now,
	// by tenant and subject.
	ListRevocations(ctx context.Context, now time.Time) ([]Revocation, error)
	// PruneRevocations deletes the revocations whose Expires is at or
	// before now.
	PruneRevocations(ctx context.Context, now time.Time) error
}
