// Package pge2e holds tests of server.Run on PostgreSQL (Config.DatabaseURL)
// against a real server that store/postgres/pgtest starts, and of several
// `sortie dev` replicas (internal/proctest processes) sharing one database
// and the test cluster (kubetest), killed with SIGKILL while a canary runs.
// It has no code of its own.
//
// It must not be imported.
package pge2e
