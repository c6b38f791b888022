-- 0003: tenant data keys and secrets (ciphertext only), custom roles, and
-- the audit log.

-- A tenant's data key, wrapped (AES-GCM) by the master key master_key_id
-- names. Rotating the master key rewrites wrapped and master_key_id; the
-- data key itself, and so every secret's ciphertext, stays.
CREATE TABLE data_keys (
	tenant        TEXT    NOT NULL PRIMARY KEY REFERENCES tenants (name),
	master_key_id TEXT    NOT NULL,
	wrapped       BLOB    NOT NULL,
	created_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Secrets, sealed under their tenant's data key: the store never holds a
-- value in clear.
CREATE TABLE secrets (
	tenant     TEXT    NOT NULL REFERENCES tenants (name),
	name       TEXT    NOT NULL,
	ciphertext BLOB    NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, name)
) STRICT, WITHOUT ROWID;

-- Custom roles and their grants (a JSON array of grant names).
CREATE TABLE roles (
	tenant     TEXT    NOT NULL REFERENCES tenants (name),
	name       TEXT    NOT NULL,
	grants     TEXT    NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, name)
) STRICT, WITHOUT ROWID;

-- The audit log: who did what, when, from where. objects is a JSON array
-- of ids, never values. Append-only: the triggers refuse any change.
CREATE TABLE audit (
	seq       INTEGER NOT NULL PRIMARY KEY, -- rowid: increasing, as nothing is deleted
	tenant    TEXT    NOT NULL REFERENCES tenants (name),
	at        INTEGER NOT NULL,
	actor     TEXT    NOT NULL,
	client_id TEXT    NOT NULL,
	remote    TEXT    NOT NULL,
	action    TEXT    NOT NULL,
	objects   TEXT    NOT NULL
) STRICT;
CREATE INDEX audit_by_tenant ON audit (tenant, at);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
