// Package api is the HTTP edge of `sortie server`: the REST API under
// /api/v1, its Server-Sent Event streams, the OAuth token endpoint (served
// by package auth), /healthz, /readyz and /metrics.
//
// # What it provides
//
// New builds one http.Handler from a single route table (Routes), which
// registers the standard library's mux and is what the test comparing the
// routes with docs/openapi.yaml reads. Every /api/v1 route needs a bearer
// token; the grants of its roles decide the rest: viewer reads, deployer
// also starts and acts, tenant-admin and organization-admin also manage
// credentials. Every route that makes, changes or removes a principal or a
// role applies the subset rule (authority.go): the caller acts only on
// principals, and assigns or defines only roles, whose grants it holds.
// Whether a principal may approve a given gate (requiresRoles) is the
// engine's call: the API passes the principal along in the event.
//
// Errors are mapped to HTTP statuses here and only here: deployment-file
// problems 400 (one entry each, with file, line and column), the engine's
// codes (invalid 400, not_found 404, forbidden 403, conflict 409),
// store.ErrNotFound 404, store.ErrConflict 409, *Error its own status, and
// anything else 500 with a generic message, the error itself logged under
// the error_id the caller gets.
//
// Deploy windows and freezes (controls.go) are read by any reading role
// and written by admins, audited; a scope travels URL-escaped in the path
// ("application%20web"). A start refused by a window or a freeze is 409
// with the error code held, so clients tell it from another deployment in
// flight; a break-glass start is audited once more as pipeline.break-glass.
// Notifications: subscriptions (read for readers; create, delete, test
// and the deliveries for admins, audited), and the link field of approve
// and rollback: a notification's signed link, verified (signature, expiry,
// tenant, pipeline, action, unused), checked against the engine for the
// caller, then spent once, before the action; the route's grant applies
// first, so a link gives its reader nothing the reader lacks.
//
// Event streams subscribe first, then replay stored events after the
// client's cursor (?after= or Last-Event-ID), then go live, dropping by
// per-pipeline seq what the replay already sent and reading back from the
// store what a slow subscription dropped. A stream ends when the token it
// was opened with expires, its principal is revoked (auth's
// Service.Stream) or a custom role it holds is redefined, and the client
// reconnects with a good token, checked against the grants of now.
//
// # What it must not do
//
// Run or persist deployments (the runner behind Deployments does), decide
// an approval's roles, let a principal make, change or become one with a
// grant it lacks, read configuration or the environment, or show
// anything of another tenant: every call passes the caller's tenant, and
// another tenant's ids answer 404. Never return internals in an error body,
// a client secret other than once at creation, or a secret's hash.
package api
