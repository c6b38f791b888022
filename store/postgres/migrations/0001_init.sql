-- 0001: the whole schema of store/sqlite's migrations 0001 to 0004, in
-- PostgreSQL's types.
--
-- Conventions: times are BIGINT nanoseconds since the Unix epoch, UTC (NULL
-- where the Go value is the zero time), so that they come back to the
-- nanosecond as store.Store promises (timestamptz keeps microseconds); JSON
-- documents are TEXT, kept as written. Every row carries its tenant, and
-- every query names it, except the credential lookup by client id (the
-- token endpoint does not know the tenant yet), the refresh-token lookup by
-- id and the start-up scan of unfinished pipelines.

CREATE TABLE tenants (
	name TEXT NOT NULL PRIMARY KEY
);

INSERT INTO tenants (name) VALUES ('main');

-- One row per pipeline, rewritten by every save. The columns beside state
-- are what queries filter on; state is the engine's pipeline.State as JSON.
CREATE TABLE pipelines (
	tenant      TEXT    NOT NULL REFERENCES tenants (name),
	id          TEXT    NOT NULL,
	application TEXT    NOT NULL,
	status      TEXT    NOT NULL,
	-- terminal is pipeline.Status.Terminal(), so that SQL never needs the
	-- list of terminal statuses.
	terminal    BOOLEAN NOT NULL,
	created_at  BIGINT  NOT NULL,
	updated_at  BIGINT  NOT NULL,
	wake_at     BIGINT,
	started_by  TEXT    NOT NULL,
	-- version is the optimistic-concurrency counter: 1 at creation, plus one
	-- per save.
	version     BIGINT  NOT NULL,
	-- last_seq is the Seq of the pipeline's latest event.
	last_seq    BIGINT  NOT NULL,
	-- deployed is store.Pipeline.Deployed as a JSON array; the deployments
	-- table indexes it.
	deployed    TEXT    NOT NULL,
	state       TEXT    NOT NULL,
	PRIMARY KEY (tenant, id)
);

CREATE INDEX pipelines_by_created ON pipelines (tenant, created_at, id);
CREATE INDEX pipelines_by_application ON pipelines (tenant, application, created_at, id);
CREATE INDEX pipelines_by_status ON pipelines (tenant, status, created_at);
-- Unfinished pipelines, a small set however long the history: admission
-- and resume read only this index.
CREATE INDEX pipelines_unfinished ON pipelines (tenant, application, created_at, id) WHERE NOT terminal;
CREATE INDEX pipelines_by_wake ON pipelines (wake_at) WHERE wake_at IS NOT NULL;

-- What was submitted (store.Source as JSON): written once at creation.
CREATE TABLE pipeline_sources (
	tenant   TEXT NOT NULL,
	pipeline TEXT NOT NULL,
	source   TEXT NOT NULL,
	PRIMARY KEY (tenant, pipeline),
	FOREIGN KEY (tenant, pipeline) REFERENCES pipelines (tenant, id) ON DELETE CASCADE
);

-- The append-only event log; seq counts from 1 per pipeline.
CREATE TABLE events (
	tenant   TEXT   NOT NULL,
	pipeline TEXT   NOT NULL,
	seq      BIGINT NOT NULL,
	at       BIGINT NOT NULL,
	type     TEXT   NOT NULL,
	data     TEXT,
	PRIMARY KEY (tenant, pipeline, seq),
	FOREIGN KEY (tenant, pipeline) REFERENCES pipelines (tenant, id) ON DELETE CASCADE
);

-- Which pipelines put their version in place on which target, for
-- DeployedBefore.
CREATE TABLE deployments (
	tenant      TEXT NOT NULL,
	application TEXT NOT NULL,
	target      TEXT NOT NULL,
	pipeline    TEXT NOT NULL,
	PRIMARY KEY (tenant, application, target, pipeline),
	FOREIGN KEY (tenant, pipeline) REFERENCES pipelines (tenant, id) ON DELETE CASCADE
);
CREATE INDEX deployments_by_pipeline ON deployments (tenant, pipeline);

-- Machine client credentials; client_id is unique across tenants.
-- secret_hash is a hash, never the secret.
CREATE TABLE credentials (
	client_id   TEXT   NOT NULL PRIMARY KEY,
	tenant      TEXT   NOT NULL REFERENCES tenants (name),
	name        TEXT   NOT NULL,
	secret_hash BYTEA  NOT NULL,
	roles       TEXT   NOT NULL,
	created_at  BIGINT NOT NULL
);
CREATE INDEX credentials_by_tenant ON credentials (tenant, created_at, client_id);

-- Metric providers; config names secrets, never holds their values.
CREATE TABLE metric_providers (
	tenant     TEXT   NOT NULL REFERENCES tenants (name),
	name       TEXT   NOT NULL,
	type       TEXT   NOT NULL,
	config     TEXT   NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (tenant, name)
);

-- A tenant's data key, wrapped by the master key master_key_id names.
CREATE TABLE data_keys (
	tenant        TEXT   NOT NULL PRIMARY KEY REFERENCES tenants (name),
	master_key_id TEXT   NOT NULL,
	wrapped       BYTEA  NOT NULL,
	created_at    BIGINT NOT NULL
);

-- Secrets, sealed under their tenant's data key.
CREATE TABLE secrets (
	tenant     TEXT   NOT NULL REFERENCES tenants (name),
	name       TEXT   NOT NULL,
	ciphertext BYTEA  NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (tenant, name)
);

-- Custom roles and their grants (a JSON array of grant names).
CREATE TABLE roles (
	tenant     TEXT   NOT NULL REFERENCES tenants (name),
	name       TEXT   NOT NULL,
	grants     TEXT   NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (tenant, name)
);

-- The audit log. objects is a JSON array of ids, never values.
-- Append-only: the triggers refuse any change.
CREATE TABLE audit (
	seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	tenant    TEXT   NOT NULL REFERENCES tenants (name),
	at        BIGINT NOT NULL,
	actor     TEXT   NOT NULL,
	client_id TEXT   NOT NULL,
	remote    TEXT   NOT NULL,
	action    TEXT   NOT NULL,
	objects   TEXT   NOT NULL
);
CREATE INDEX audit_by_tenant ON audit (tenant, at);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- Users, unique by username within a tenant. password_hash is an argon2id
-- hash (empty: no local password).
CREATE TABLE users (
	tenant        TEXT   NOT NULL REFERENCES tenants (name),
	username      TEXT   NOT NULL,
	name          TEXT   NOT NULL,
	password_hash BYTEA  NOT NULL,
	roles         TEXT   NOT NULL,
	issuer        TEXT   NOT NULL,
	subject       TEXT   NOT NULL,
	created_at    BIGINT NOT NULL,
	updated_at    BIGINT NOT NULL,
	PRIMARY KEY (tenant, username)
);

-- Refresh tokens: id is the token's public half, hash the SHA-256 of its
-- secret half.
CREATE TABLE refresh_tokens (
	id         TEXT   NOT NULL PRIMARY KEY,
	hash       BYTEA  NOT NULL,
	tenant     TEXT   NOT NULL,
	username   TEXT   NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	FOREIGN KEY (tenant, username) REFERENCES users (tenant, username) ON DELETE CASCADE
);
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (tenant, username);
