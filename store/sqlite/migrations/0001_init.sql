-- 0001: tenants, pipelines with their source, event log and deployments,
-- client credentials.
--
-- Conventions: every table is STRICT; times are INTEGER nanoseconds since
-- the Unix epoch, UTC (NULL where the Go value is the zero time); JSON
-- documents are TEXT. Every row carries its tenant, and every query names
-- it, except the credential lookup by client id (the token endpoint does
-- not know the tenant yet) and the start-up scan of unfinished pipelines.

CREATE TABLE tenants (
	name TEXT NOT NULL PRIMARY KEY
) STRICT, WITHOUT ROWID;

INSERT INTO tenants (name) VALUES ('main');

-- One row per pipeline, rewritten by every save. The columns beside state
-- are what queries filter on; state is the engine's pipeline.State as JSON
-- and the only thing a resume needs besides the source.
CREATE TABLE pipelines (
	tenant      TEXT    NOT NULL REFERENCES tenants (name),
	id          TEXT    NOT NULL,
	application TEXT    NOT NULL,
	status      TEXT    NOT NULL,
	-- terminal is 1 when status is terminal (pipeline.Status.Terminal), so
	-- that SQL never needs the list of terminal statuses.
	terminal    INTEGER NOT NULL CHECK (terminal IN (0, 1)),
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	wake_at     INTEGER,
	started_by  TEXT    NOT NULL,
	-- version is the optimistic-concurrency counter: 1 at creation, plus one
	-- per save.
	version     INTEGER NOT NULL,
	-- last_seq is the Seq of the pipeline's latest event.
	last_seq    INTEGER NOT NULL,
	-- deployed is store.Pipeline.Deployed as a JSON array; the deployments
	-- table indexes it.
	deployed    TEXT    NOT NULL,
	state       TEXT    NOT NULL,
	PRIMARY KEY (tenant, id)
) STRICT;

-- Listing, newest first, with or without an application.
CREATE INDEX pipelines_by_created ON pipelines (tenant, created_at, id);
CREATE INDEX pipelines_by_application ON pipelines (tenant, application, created_at, id);
-- Status filters.
CREATE INDEX pipelines_by_status ON pipelines (tenant, status, created_at);
-- Unfinished pipelines, a small set however long the history: admission
-- and resume read only this index.
CREATE INDEX pipelines_unfinished ON pipelines (tenant, application, created_at, id) WHERE terminal = 0;
-- Timers to arm.
CREATE INDEX pipelines_by_wake ON pipelines (wake_at) WHERE wake_at IS NOT NULL;

-- What was submitted (store.Source as JSON): written once at creation, never
-- rewritten by saves, and not read by lists.
CREATE TABLE pipeline_sources (
	tenant   TEXT NOT NULL,
	pipeline TEXT NOT NULL,
	source   TEXT NOT NULL,
	PRIMARY KEY (tenant, pipeline),
	FOREIGN KEY (tenant, pipeline) REFERENCES pipelines (tenant, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- The append-only event log; seq counts from 1 per pipeline.
CREATE TABLE events (
	tenant   TEXT    NOT NULL,
	pipeline TEXT    NOT NULL,
	seq      INTEGER NOT NULL,
	at       INTEGER NOT NULL,
	type     TEXT    NOT NULL,
	data     TEXT,
	PRIMARY KEY (tenant, pipeline, seq),
	FOREIGN KEY (tenant, pipeline) REFERENCES pipelines (tenant, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- Which pipelines put their version in place on which target, for
-- DeployedBefore (the first deployment to a target goes straight to 100 %).
CREATE TABLE deployments (
	tenant      TEXT NOT NULL,
	application TEXT NOT NULL,
	target      TEXT NOT NULL,
	pipeline    TEXT NOT NULL,
	PRIMARY KEY (tenant, application, target, pipeline),
	FOREIGN KEY (tenant, pipeline) REFERENCES pipelines (tenant, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX deployments_by_pipeline ON deployments (tenant, pipeline);

-- Machine client credentials. client_id is unique across tenants because the
-- token endpoint looks it up before it knows the tenant. secret_hash is a
-- hash, never the secret.
CREATE TABLE credentials (
	client_id   TEXT    NOT NULL PRIMARY KEY,
	tenant      TEXT    NOT NULL REFERENCES tenants (name),
	name        TEXT    NOT NULL,
	secret_hash BLOB    NOT NULL,
	roles       TEXT    NOT NULL,
	created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX credentials_by_tenant ON credentials (tenant, created_at, client_id);
