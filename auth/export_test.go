package auth

import "github.com/sortie-cd/sortie/store"

// SetHashHook makes s call f inside each hash slot, before hashing: a test
// holds slots taken by blocking in f.
func SetHashHook(s *Service, f func()) { s.inHash = f }

// IssueUser returns a token of user u, as a login does.
func IssueUser(s *Service, u *store.User) (Token, error) { return s.issueUser(u) }
