// Package pge2e holds tests of server.Run on PostgreSQL (Config.DatabaseURL)
// against a real server that store/postgres/pgtest starts. It has no code
// of its own.
//
// It must not be imported.
package pge2e
