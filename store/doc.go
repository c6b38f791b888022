// Package store is the contract of Sortie's persistence: pipelines (their
// spec, state and submitted source), their append-only event log, tenants,
// client credentials, users, metric providers, secrets, roles, the audit log,
// the deploy windows and freezes admins set, the previous versions kept warm
// until their removal, and notifications
// (subscriptions, the outbox with its per-pipeline cursor, the uses of
// action links), and the token revocations package auth reads back at
// start and from other replicas (Revocations). Implementations live in sub-packages (store/sqlite
// now, store/postgres later) and all pass the conformance suite in
// store/storetest.
//
// Every row carries its tenant and every query is scoped to one, except the
// few calls the server makes for itself at start-up (ResumablePipelines, NotifyBacklog, ClaimOutbox,
// ListRevocations, PruneRevocations, ListWarm).
// Implementations must not interpret pipeline state beyond the columns
// declared here, log row contents, or hold secrets in clear.
package store
