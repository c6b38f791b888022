// Package ssotest runs a real OpenID Connect provider for tests: the
// example server of github.com/zitadel/oidc/v3 (tools/oidc of this
// repository, its own module), built once from the module proxy into the
// test cache (~/.cache/sortie/oidc-provider-<hash>) and started on
// loopback. It is no fake: discovery, the authorization code flow with
// PKCE, the device flow and the signed ID tokens are the OP library's.
//
// # What it must not do
//
// Be imported outside tests.
package ssotest
