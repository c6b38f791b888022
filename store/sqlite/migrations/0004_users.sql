-- 0004: user accounts (local ones with a password hash, and those single
-- sign-on provisions) and their refresh tokens.

-- Users, unique by username within a tenant. password_hash is an argon2id
-- hash (empty: no local password); issuer and subject name the identity
-- provider's user of a single sign-on account (empty: a local account).
CREATE TABLE users (
	tenant        TEXT    NOT NULL REFERENCES tenants (name),
	username      TEXT    NOT NULL,
	name          TEXT    NOT NULL,
	password_hash BLOB    NOT NULL,
	roles         TEXT    NOT NULL,
	issuer        TEXT    NOT NULL,
	subject       TEXT    NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	PRIMARY KEY (tenant, username)
) STRICT, WITHOUT ROWID;

-- Refresh tokens: id is the token's public half, hash the SHA-256 of its
-- secret half. A row is deleted when its token is used (rotation), when
-- its user is deleted or changes password, and on revocation.
CREATE TABLE refresh_tokens (
	id         TEXT    NOT NULL PRIMARY KEY,
	hash       BLOB    NOT NULL,
	tenant     TEXT    NOT NULL,
	username   TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	FOREIGN KEY (tenant, username) REFERENCES users (tenant, username) ON DELETE CASCADE
) STRICT;
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (tenant, username);
