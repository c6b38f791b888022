package auth

import (
	"errors"
	"net/http"
)

// DefaultMaxHashes is how many argon2id computations (19 MiB each) run at
// once unless Options.MaxHashes says otherwise: about 150 MiB at most.
const DefaultMaxHashes = 8

// ErrBusy is answered (429) when every hash slot is taken: the request
// would have had to hash a secret or password, and waits in no queue.
var ErrBusy = errors.New("the server is busy checking other secrets and passwords; retry in a second")

// hashing runs f, which hashes or verifies a secret, in one of the
// service's hash slots, or returns ErrBusy at once when none is free. This
// bounds the memory unauthenticated token requests can make the server
// spend, whatever their number or addresses.
func (s *Service) hashing(f func()) error {
	select {
	case s.slots <- struct{}{}:
	default:
		return ErrBusy
	}
	defer func() { <-s.slots }()
	if s.inHash != nil {
		s.inHash()
	}
	f()
	return nil
}

// busy answers a token request that found no free hash slot.
func busy(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	oauthError(w, http.StatusTooManyRequests, "temporarily_unavailable", ErrBusy.Error())
}

// verify checks secret against hash in a hash slot. When none is free it
// gives the failure limit's token back (nothing was tried), answers 429 and
// returns ok false.
func (s *Service) verify(w http.ResponseWriter, giveBack func(), hash []byte, secret string) (match, ok bool) {
	if err := s.hashing(func() { match = VerifySecret(hash, secret) }); err != nil {
		giveBack()
		busy(w)
		return false, false
	}
	return match, true
}
