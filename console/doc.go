// Package console is Sortie's web console, served by `sortie server` at "/"
// next to the REST API (Mount keeps /api/v1, /oauth/token, /healthz,
// /readyz and /metrics for the API).
//
// # What it provides
//
// Server-rendered pages (html/template) with a small script, all embedded
// with go:embed, no build step and no external asset: the deployments list
// (filters, search), the pipeline view (an SVG graph laid out on the server
// by waves of dependsOn, the selected target's steps, weights, pod counts,
// messages, analysis runs against their limits, webhook calls as sent,
// the Kubernetes objects written and the timeline), the stored source with
// a line diff (Myers) against the previous pipeline of the application,
// the Delivery page (the DORA measures of GET /api/v1/dora per application
// and target over a chosen period), and the configuration: agents, client credentials, secrets (write-only),
// metric providers, notifications (subscriptions, a form that adds one
// through the API's checks, and recent deliveries), users and roles, the audit log, and the tenant switch of organization
// admins. A notification's approve or roll back link (/links/{token})
// opens, after login, a page that only asks; its confirmation posts the
// link to the API's approve or rollback route as the session's principal. Pages update live: the
// script listens to /console/events (Server-Sent Events backed by
// Deployments.Subscribe and Events, replayed after Last-Event-ID) and
// fetches the affected HTML fragment again.
//
// Sessions: the login form exchanges a client id and secret at the
// server's own token endpoint (in process, with its rate limits), or takes
// a pasted token; the session is an HttpOnly, SameSite=Strict cookie (Secure
// over TLS, and with Options.SecureCookies behind a TLS proxy) holding that short-lived JWT, verified on every request, so a
// session ends when its token does, or is revoked (its user deleted or
// changed), and the user is asked to log in again; its event streams end
// then too, saying "event: expired".
// Every POST carries a CSRF token derived from the session's JWT (a
// one-way hash a cross-site page can neither read nor compute), and a
// cross-origin Origin header is refused as well.
//
// Reads of deployments go to api.Deployments directly (they are the hot
// path). Every write (approve, skip, roll back, cancel, redeploy,
// credentials and their roles, secrets, providers, deploy windows and
// freezes) and every read of
// configuration goes through the REST API's own handler in process, with
// the session's token and the browser's address: the API's route table
// checks the grant and records the audit entry, so a click is refused and
// audited exactly as the same call from the CLI. Buttons are disabled, with
// the reason shown, when the principal's roles or the state do not allow
// them, using the API's grants (auth.SystemRoles) and the gate's
// requiresRoles. A tenant switch asks the token endpoint for a token of
// the other tenant (organization admins only), with the client secret
// typed again: the console keeps no secret.
//
// # What it must not do
//
// Keep state of its own, write anything but through the REST API (or the
// token endpoint, to log in), show a secret's value, show anything of
// another tenant (every call passes the session's tenant), put a token or
// secret in a URL or a log line, or render any text from a deployment
// unescaped: step and webhook messages go through Markdown, which escapes
// everything and adds only its own tags; analysis queries and webhook
// requests are shown as text.
package console
