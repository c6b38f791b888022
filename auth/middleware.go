package auth

import (
	"errors"
	"net/http"
	"strings"
)

// Middleware lets a request through to next only with a valid bearer token,
// and puts its Principal in the request's context (PrincipalFrom). Other
// requests get 401 with a WWW-Authenticate challenge (RFC 6750 §3); deny
// writes their body (nil: a plain-text message). err is ErrNoToken,
// ErrTokenExpired, ErrTokenRevoked or ErrTokenInvalid, whose texts are fit
// for the caller.
func (s *Service) Middleware(next http.Handler, deny func(w http.ResponseWriter, r *http.Request, err error)) http.Handler {
	if deny == nil {
		deny = func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, err.Error(), http.StatusUnauthorized)
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.Authenticate(r)
		if err != nil {
			challenge := `Bearer realm="sortie"`
			if !errors.Is(err, ErrNoToken) {
				// The sentinel's text only: never the parser's details.
				switch {
				case errors.Is(err, ErrTokenExpired):
					err = ErrTokenExpired
				case errors.Is(err, ErrTokenRevoked):
					err = ErrTokenRevoked
				default:
					err = ErrTokenInvalid
				}
				desc := err.Error()
				challenge += `, error="invalid_token", error_description="` + desc + `"`
			}
			w.Header().Set("WWW-Authenticate", challenge)
			deny(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// Authenticate returns the principal of r's bearer token.
func (s *Service) Authenticate(r *http.Request) (Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Principal{}, ErrNoToken
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return Principal{}, ErrTokenInvalid
	}
	return s.Verify(strings.TrimSpace(token))
}
