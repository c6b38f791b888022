// Package pgserver starts a throwaway PostgreSQL server from the binaries
// Debian's postgresql package installs (on PATH, or under
// /usr/lib/postgresql/*/bin): initdb into a temporary directory and
// postgres on a free loopback port, durability off unless asked for. When the calling
// process is root, the server runs as the unprivileged user nobody
// (PostgreSQL refuses to run as root), and the data directory is given to
// that user. It is what the tests' server (store/postgres/pgtest) and the
// scale benchmark (bench) share.
//
// # What it must not do
//
// It must not be linked by the product (cmd/sortie, server, cli): it runs
// programs, changes file ownership and trusts every local connection
// (initdb -A trust), which is right for a throwaway server and wrong
// anywhere else. It must not depend on any package of the module, and it
// never touches a server it did not start.
package pgserver
