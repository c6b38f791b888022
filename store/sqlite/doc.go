// Package sqlite is the store.Store of a single Sortie server: one SQLite
// file, through the pure-Go driver modernc.org/sqlite and database/sql.
//
// # What it provides
//
// Open opens or creates the file, applies the embedded migrations
// (migrations/NNNN_name.sql, recorded in schema_migrations, each once, in
// order, in one transaction; a database with a newer schema is refused) and
// returns a Store that passes store/storetest.
//
// The database runs in WAL mode with foreign keys on and synchronous=FULL,
// so that a save that returned survives a power cut and not only a crash of
// the process: the engine acts on a transition only once it is saved.
// Writes go through one connection whose transactions begin IMMEDIATE,
// taking SQLite's single write lock up front; that is what makes admission
// (read the unfinished pipelines of an application, decide, insert) atomic,
// within this process and against another process on the same file, which
// waits up to Options.BusyTimeout. Reads use a separate pool and, in WAL
// mode, never wait for the writer.
//
// # Schema
//
// migrations/0001_init.sql documents every table. In short: tenants;
// pipelines (the query columns beside the engine's State as JSON, a
// version for optimistic concurrency, the last event's seq);
// pipeline_sources (the submitted file and manifests, written once and
// never read by lists); events (seq from 1 per pipeline); deployments (the
// index behind DeployedBefore); credentials (hashed secrets). Every table
// has a tenant column and every query names the tenant, except the
// credential lookup by client id and the start-up scan of unfinished
// pipelines, which store.Store defines as cross-tenant. Times are int64
// nanoseconds in UTC, so they come back exactly (years 1678 to 2262; other
// times are refused, not altered).
//
// # What it must not do
//
// It interprets nothing of a pipeline's State beyond its status (and
// whether that status is terminal), never logs row contents, never holds a
// secret in clear, and reads no environment or flags: the caller passes
// everything in Options.
package sqlite
