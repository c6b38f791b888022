// Package store is the contract of Sortie's persistence: pipelines (their
// spec, state and submitted source), their append-only event log, tenants and
// client credentials. Implementations live in sub-packages (store/sqlite
// now, store/postgres later) and all pass the conformance suite in
// store/storetest.
//
// Every row carries its tenant and every query is scoped to one, except the
// few calls the server makes for itself at start-up (ResumablePipelines).
// Implementations must not interpret pipeline state beyond the columns
// declared here, log row contents, or hold secrets in clear.
package store
