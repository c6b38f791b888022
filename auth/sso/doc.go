// Package sso is Sortie's single sign-on with an OpenID Connect provider:
// discovery, the browser's authorization code flow with PKCE, the device
// flow Sortie proxies for the CLI, verification of ID tokens (signature by
// the provider's published keys, issuer, audience, expiry, nonce), and the
// mapping of the provider's groups to a tenant and roles.
//
// It is the one package that talks to the provider (with
// github.com/coreos/go-oidc and golang.org/x/oauth2): it returns an
// auth.Identity, and package auth provisions the user and issues the
// tokens.
//
// # What it must not do
//
// Issue Sortie tokens, keep users, or log an ID token, a code or the client
// secret.
package sso
