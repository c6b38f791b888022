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
// Every save also matches the lease epoch (store.ErrFenced when a takeover
// moved it on); claims take free leases with FOR UPDATE SKIP LOCKED, so
// replicas claiming at once each get a share rather than one all; the
// notifiers' claims of due outbox messages do the same.
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
// environment or flags: the caller passes the URL and Options. It keeps
// the leases (store.Leases) but never decides who should hold one beyond
// the fair share a claim is bounded by: the runner decides when to claim,
// renew and let go. It does not decide where a command goes or who
// delivers it: it keeps the rows (agent_commands, agent_command_reports,
// agent_streams, signing_keys), sends the notifications (a trigger on
// events; pg_notify with each command, report and result) and listens
// (Listen), and package replicas does the routing on top of it.
package postgres
