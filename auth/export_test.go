package auth

// SetHashHook makes s call f inside each hash slot, before hashing: a test
// holds slots taken by blocking in f.
func SetHashHook(s *Service, f func()) { s.inHash = f }
