// Package pgtest starts a real PostgreSQL server for tests: initdb into a
// temporary directory and postgres on a free loopback port, from the
// binaries Debian's postgresql package installs (on PATH, or under
// /usr/lib/postgresql/*/bin), through internal/pgserver. One server serves a whole test binary (Main,
// from TestMain); each test gets its own database (Database).
//
// When the tests run as root, as they do in CI containers, the server runs
// as the unprivileged user nobody (PostgreSQL refuses to run as root), and
// the data directory is given to that user.
//
// SORTIE_PGTEST_URL, when set, names a server to use instead of starting
// one (a child process of a test passes it on this way).
//
// # What it must not do
//
// It must not be imported outside tests: it runs programs, changes file
// ownership and trusts every local connection (initdb -A trust), which is
// right for a throwaway server and wrong anywhere else. It never touches a
// server it did not start, beyond creating and dropping the databases it
// hands out.
package pgtest
