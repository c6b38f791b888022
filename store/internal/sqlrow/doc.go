// Package sqlrow holds what store/sqlite and store/postgres share about
// turning store values into rows and back: times as int64 nanoseconds,
// JSON documents as text, the pipeline row's derived columns, the scans of
// each table's columns, and the loading of embedded NNNN_name.sql
// migrations. The SQL itself, which differs between the two, stays in each.
//
// # What it must not do
//
// It must not open a database, run a statement it was not handed, or name
// a driver: it works on database/sql's Rows and Row through the Scanner
// interface, so that it links neither modernc.org/sqlite nor pgx.
package sqlrow
