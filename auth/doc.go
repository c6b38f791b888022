// Package auth authenticates callers of Sortie's server: machine client
// credentials exchanged for short-lived signed tokens, and the Principal
// those tokens carry into every request.
//
// # What it provides
//
//   - Client secrets: NewCredential makes a random client id and secret and
//     keeps only an argon2id hash of the secret; VerifySecret compares in
//     constant time.
//   - Signing keys: LoadKeys keeps Ed25519 keys in <data-dir>/keys, one
//     PEM file per key named by its key id (kid). The newest key signs;
//     every key in the set verifies, so adding a key rotates without
//     logging anyone out.
//   - Service: the OAuth 2.0 token endpoint (client-credentials grant, form
//     or HTTP Basic client authentication), rate-limited per remote address
//     (IPv6 by /64) and failures per (client id or user, address), so no one
//     locks another out, and with at most MaxHashes argon2id computations
//     at once (429 beyond, never a queue); Issue and Verify of the JWTs (EdDSA; claims tenant,
//     sub, name, roles, iss, aud, exp, iat, jti); and Middleware, which
//     requires a bearer token and puts the Principal in the context.
//   - Users: local accounts per tenant with an argon2id password hash,
//     logged in by the token endpoint's password grant; each login also
//     gets a refresh token (stored as a SHA-256 hash, used once and
//     replaced, revoked by RevokeHandler, a new password or the user's
//     deletion). Tokens of users have sub "user:<username>".
//   - Single sign-on (SSO, Identity): users of an OpenID Connect provider,
//     provisioned just in time with the roles their groups map to; the
//     device flow is proxied (DeviceAuthorizationHandler, the device-code
//     grant), the browser's code flow completes in package sso.
//   - Roles: SystemRoles and GrantsOf say what grants roles give; Covers is
//     the subset rule package api applies to every change of a principal.
//   - StreamLimit caps the event streams one principal holds open at
//     once (the API's and the console's together).
//   - Revocation: Revoke(ctx, tenant, subject) refuses the principal's tokens
//     issued until then (Verify answers ErrTokenRevoked) and ends every
//     stream opened with one. Stream gives each long-lived stream (event
//     streams, agents' gRPC streams) a context that ends at its token's
//     expiry (a timer at the deadline) or at the revocation, so no stream
//     outlives its token or its credential. Deleting a credential or a
//     user, a new password and new roles (also from single sign-on) revoke.
//     Verify checks revocations in memory; Options.Revocations (the store)
//     keeps them as long as a token lives, read back at start
//     (SyncRevocations) and every few seconds (FollowRevocations), so a
//     restart forgets none and every replica learns the others'.
//     EndStreams ends the streams of a custom role's holders when the role
//     is redefined or deleted (their tokens stay good: grants are read per
//     request).
//   - Bootstrap gives a new server its first admin credential and writes it
//     to <data-dir>/admin-credentials.json (mode 0600).
//
// # What it must not do
//
// Never log, return or store a client secret, a token or a private key in
// clear (the one exception is the secret shown once to whoever created the
// credential, and the bootstrap file). Never trust a token's header to pick
// the algorithm: only EdDSA is accepted. It knows nothing of pipelines or
// of the REST API's routes; package api decides which roles a route needs.
package auth
