// Package postgres is the store.Store of Sortie on PostgreSQL, through
// github.com/jackc/pgx/v5 (its database/sql adapter): the store for
// several servers sharing one database. It passes store/storetest like
// store/sqlite, and mirrors its schema and semantics.
//
// # What it provides
//
// Open connects to a postgres:// URL, applies the embedded migrations
// (migrations/NNNN_name.sql, recorded in schema_migrations, each once, in
// order, in one transaction taken under an advisory lock, so servers
// starting together take turns; a database with a newer schema is
// refused, naming both versions) and returns a Store.
//
// SavePipeline is optimistic: one UPDATE ... WHERE version = $n, which
// PostgreSQL's row lock makes atomic against any other server, appending
// the events with their seq (the row's last_seq) in the same transaction.
// CreatePipeline takes a transaction-scoped advisory lock on its tenant and
// application before it reads the others and runs admit, so two starts
// on any servers cannot both pass a one-in-flight rule; creations of other
// applications do not wait. Events reads in one REPEATABLE READ
// transaction, so "no events" and "no pipeline" are decided on one
// snapshot. The audit log is append-only: triggers refuse UPDATE, DELETE
// and TRUNCATE.
//
// # Schema
//
// migrations/0001_init.sql documents every table; they are store/sqlite's,
// with PostgreSQL's types. Every table has a tenant column and every query
// names the tenant, except the lookups store.Store defines as cross-tenant
// (credential by client id, refresh token by id, the start-up scan of
// unfinished pipelines). Times are BIGINT nanoseconds in UTC, so they come
// back exactly (years 1678 to 2262; other times are refused, not altered).
//
// # What it must not do
//
// It interprets nothing of a pipeline's State beyond its status (and
// whether that status is terminal), never logs row contents or the
// database URL's password, never holds a secret in clear, and reads no
// environment or flags: the caller passes the URL and Options. It does not
// (yet) hold leases or route commands between servers: that is the
// server's work on top of it (issue 15).
package postgres
