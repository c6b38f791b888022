package client

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// Identity is who a token says its holder is: what `sortie login` shows.
type Identity struct {
	ClientID string   `json:"sub"`
	Name     string   `json:"name,omitempty"`
	Tenant   string   `json:"tenant"`
	Roles    []string `json:"roles"`
}

// IdentityOf reads a token's claims without verifying its signature (the
// server does that); it is for display only, never for a decision.
func IdentityOf(t Token) (Identity, error) {
	parts := strings.Split(t.AccessToken, ".")
	if len(parts) != 3 {
		return Identity{}, errors.New("the token is not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Identity{}, errors.New("the token's claims are not base64url")
	}
	var id Identity
	if err := json.Unmarshal(b, &id); err != nil {
		return Identity{}, errors.New("the token's claims are not JSON")
	}
	return id, nil
}
