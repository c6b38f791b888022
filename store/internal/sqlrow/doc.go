// Package sqlrow holds what store/sqlite and store/postgres share: the
// SQL of every table, and the reads of the pipelines (Tables, written with ?
// placeholders that a Dialect rebinds, and naming errors and constraint
// violations through it), turning store values into rows and back (times
// as int64 nanoseconds, JSON documents as text, the pipeline row's derived
// columns, each table's scan), and the loading of embedded NNNN_name.sql
// migrations. The pipelines' writes (admission locking, prepared
// statements, deployments from JSON) and the migrations themselves differ,
// and stay in each store.
//
// # What it must not do
//
// It must not open or migrate a database, or name a driver: the store
// hands it its *sql.DB pools and Dialect, so that it links neither
// modernc.org/sqlite nor pgx. It never logs row contents.
package sqlrow
