package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sortie-cd/sortie/store"
)

// ErrTokenRevoked is Verify's error for a token issued before its
// principal was revoked, and the cause of a stream context ended by the
// revocation. Its text is fit to show the caller.
var ErrTokenRevoked = errors.New("the access token was revoked (its credential or user was deleted or changed); get a new one")

// ErrRoleRedefined is the cause of a stream context ended by EndStreams:
// a role its principal holds gives other grants now. The token is still
// good; a new stream is checked against the new grants.
var ErrRoleRedefined = errors.New("a role of this principal was redefined or deleted; open the stream again")

// subjectKey is a tenant and a token subject: one principal.
type subjectKey struct{ tenant, subject string }

// RevocationStore keeps revocations where a restarted server, and every
// replica, reads them (store.Store has it).
type RevocationStore interface {
	PutRevocation(ctx context.Context, r store.Revocation) error
	ListRevocations(ctx context.Context, now time.Time) ([]store.Revocation, error)
	PruneRevocations(ctx context.Context, now time.Time) error
}

// revocations keeps, per principal, the second of its last revocation
// (its tokens issued in it or before are refused) and the cancel
// functions of its live streams. Verify reads only this memory; the
// store (Options.Revocations) is what fills it at start (SyncRevocations)
// and from other replicas (FollowRevocations).
type revocations struct {
	mu      sync.Mutex
	before  map[subjectKey]int64 // unix second of the last revocation
	next    uint64
	streams map[subjectKey]map[uint64]liveStream
}

// liveStream is one stream of Stream.
type liveStream struct {
	roles []string
	// issued is the unix second its token was issued (0: none).
	issued int64
	cancel context.CancelCauseFunc
}

func newRevocations() *revocations {
	return &revocations{before: map[subjectKey]int64{}, streams: map[subjectKey]map[uint64]liveStream{}}
}

// keep is how long a revocation matters: past a token lifetime and
// Verify's leeway no token issued before it is good anyway.
func (s *Service) keep() time.Duration { return s.ttl + verifyLeeway + time.Second }

// prune forgets the revocations older than keep at now. Call it with r.mu
// held.
func (r *revocations) prune(now int64, keep time.Duration) {
	for pk, at := range r.before {
		if now-at > int64(keep/time.Second) {
			delete(r.before, pk)
		}
	}
}

// Revoke ends the principal subject of tenant: every token issued to it
// until now is refused from now on, and every stream opened with one
// (Stream) ends, its context's cause ErrTokenRevoked. Its next token works.
// Call it when a credential or a user is deleted or its roles change, and
// when a user's password is set. The revocation takes effect here at once,
// then is stored (Options.Revocations), so that a restart and the other
// replicas refuse those tokens too; the error is the store's.
func (s *Service) Revoke(ctx context.Context, tenant, subject string) error {
	now := s.now().Unix()
	k := subjectKey{tenant, subject}
	r := s.revoked
	r.mu.Lock()
	r.prune(now, s.keep())
	at := now
	if prev, ok := r.before[k]; ok && prev >= at {
		// Tokens issued since the last revocation, in its second, are
		// dated from the next (issuedAt): this one covers them too.
		at = prev + 1
	}
	r.before[k] = at
	for _, ls := range r.streams[k] {
		ls.cancel(ErrTokenRevoked)
	}
	r.mu.Unlock()
	if s.peers != nil {
		s.peers.Revoked(tenant, subject, at)
	}
	if s.revStore == nil {
		return nil
	}
	rev := store.Revocation{Tenant: tenant, Subject: subject, At: at, Expires: time.Unix(at, 0).Add(s.keep())}
	if err := s.revStore.PutRevocation(ctx, rev); err != nil {
		return fmt.Errorf("auth: store the revocation of %s: %w", subject, err)
	}
	if err := s.revStore.PruneRevocations(ctx, s.now()); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	return nil
}

// SyncRevocations reads the stored revocations (Options.Revocations) into
// the memory Verify checks, and ends the streams of tokens they refuse:
// the server calls it before it serves (a restart forgets nothing) and
// FollowRevocations calls it again and again (what other replicas
// revoked). Without a store it does nothing.
func (s *Service) SyncRevocations(ctx context.Context) error {
	if s.revStore == nil {
		return nil
	}
	now := s.now()
	list, err := s.revStore.ListRevocations(ctx, now)
	if err != nil {
		return fmt.Errorf("auth: read revocations: %w", err)
	}
	r := s.revoked
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prune(now.Unix(), s.keep())
	for _, rev := range list {
		k := subjectKey{rev.Tenant, rev.Subject}
		if prev, ok := r.before[k]; ok && prev >= rev.At {
			continue
		}
		r.before[k] = rev.At
		for _, ls := range r.streams[k] {
			if ls.issued <= rev.At {
				ls.cancel(ErrTokenRevoked)
			}
		}
	}
	return nil
}

// FollowRevocations runs SyncRevocations every interval until ctx ends, so
// that a revocation another replica stored refuses its tokens here too
// within an interval, and logs (never returns) its errors: the memory
// keeps what it had.
func (s *Service) FollowRevocations(ctx context.Context, every time.Duration) {
	if s.revStore == nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.SyncRevocations(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("revocations not read from the store", "err", err)
		}
	}
}

// RevokeBefore applies another server's revocation: tokens of the
// principal issued at or before the unix second before are refused here
// too, and its streams here end. Unlike Revoke it tells no peer.
func (s *Service) RevokeBefore(tenant, subject string, before int64) {
	k := subjectKey{tenant, subject}
	r := s.revoked
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.before[k]; ok && prev >= before {
		return
	}
	r.before[k] = before
	for _, ls := range r.streams[k] {
		ls.cancel(ErrTokenRevoked)
	}
}

// EndStreams ends the streams of tenant's principals that hold role, whose
// grants changed (redefined or deleted), with the cause ErrRoleRedefined. A
// stream checked its grants when it opened; its client opens it again and
// is checked against the new ones. Their tokens stay good: requests read
// custom roles' grants each time.
func (s *Service) EndStreams(tenant, role string) {
	s.EndStreamsHere(tenant, role)
	if s.peers != nil {
		s.peers.StreamsEnded(tenant, role)
	}
}

// EndStreamsHere is EndStreams for another server's redefinition of a
// role: it tells no peer.
func (s *Service) EndStreamsHere(tenant, role string) {
	r := s.revoked
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, streams := range r.streams {
		if k.tenant != tenant {
			continue
		}
		for _, ls := range streams {
			if slices.Contains(ls.roles, role) {
				ls.cancel(ErrRoleRedefined)
			}
		}
	}
}

// revokedToken reports whether a token of tenant and subject issued at
// iat (a unix second) was issued before a revocation of its principal.
func (r *revocations) revokedToken(tenant, subject string, iat int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.before[subjectKey{tenant, subject}]
	return ok && iat <= at
}

// issuedAt is the iat of a token of tenant and subject issued at now. A
// token's iat counts whole seconds, so one issued in the second of a
// revocation of its principal, after it, is dated from the next second:
// the revocation then refuses every token issued before it and none
// after. Verify allows a token's iat that much ahead of its clock (up to
// its leeway: as many revocations of one principal in one second).
func (r *revocations) issuedAt(tenant, subject string, now time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if at, ok := r.before[subjectKey{tenant, subject}]; ok && at >= now.Unix() {
		return time.Unix(at+1, 0)
	}
	return now
}

// Stream returns the context of a long-lived stream (an event stream, an
// agent's) that p opens: it ends when ctx does, when p's token expires
// (context.Cause is ErrTokenExpired), when p is revoked (Revoke; the
// cause is ErrTokenRevoked) and when a role p holds is redefined
// (EndStreams), so no stream outlives the token it was opened with or the
// grants it was checked against. The expiry is a timer at the token's
// deadline; a p no token carries (zero ExpiresAt) has none. Call done when
// the stream ends.
func (s *Service) Stream(ctx context.Context, p Principal) (_ context.Context, done func()) {
	sctx, cancel := context.WithCancelCause(ctx)
	stop := func() {}
	if !p.ExpiresAt.IsZero() {
		var c context.CancelFunc
		sctx, c = context.WithTimeoutCause(sctx, p.ExpiresAt.Sub(s.now()), ErrTokenExpired)
		stop = c
	}
	k := subjectKey{p.Tenant, p.ClientID}
	r := s.revoked
	r.mu.Lock()
	id := r.next
	r.next++
	if r.streams[k] == nil {
		r.streams[k] = map[uint64]liveStream{}
	}
	var issued int64
	if !p.IssuedAt.IsZero() {
		issued = p.IssuedAt.Unix()
	}
	r.streams[k][id] = liveStream{roles: p.Roles, issued: issued, cancel: cancel}
	// Revoked between Verify and now: end at once.
	if at, ok := r.before[k]; ok && !p.IssuedAt.IsZero() && p.IssuedAt.Unix() <= at {
		cancel(ErrTokenRevoked)
	}
	r.mu.Unlock()
	return sctx, func() {
		r.mu.Lock()
		delete(r.streams[k], id)
		if len(r.streams[k]) == 0 {
			delete(r.streams, k)
		}
		r.mu.Unlock()
		stop()
		cancel(context.Canceled)
	}
}
