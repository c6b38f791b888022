package auth

import (
	"context"
	"slices"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
)

// Principal is who makes a request: the identity a verified token carries.
type Principal struct {
	// Tenant scopes everything the principal may see or do.
	Tenant string `json:"tenant"`
	// Name is the credential's (or, later, the user's) display name.
	Name string `json:"name"`
	// ClientID is the token's subject.
	ClientID string   `json:"clientId"`
	Roles    []string `json:"roles"`
	// IssuedAt and ExpiresAt are the times of the token that carries the
	// principal (zero for one no token carries): Stream ends at ExpiresAt.
	IssuedAt  time.Time `json:"-"`
	ExpiresAt time.Time `json:"-"`
}

// HasAnyRole reports whether p holds one of roles.
func (p Principal) HasAnyRole(roles ...string) bool {
	for _, r := range p.Roles {
		if slices.Contains(roles, r) {
			return true
		}
	}
	return false
}

// Engine returns p as the deployment engine records it in a pipeline's
// history and checks it against an approval's requiresRoles.
func (p Principal) Engine() pipeline.Principal {
	name := p.Name
	if name == "" {
		name = p.ClientID
	}
	return pipeline.Principal{Name: name, Roles: slices.Clone(p.Roles)}
}

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal Middleware put in ctx.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
