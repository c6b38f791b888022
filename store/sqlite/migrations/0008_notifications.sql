-- 0007: notifications. Subscriptions name a sink whose settings name
-- secrets, never hold them. The outbox holds every message owed to a sink
-- and the record of its delivery; notify_cursors says, per pipeline, up to
-- which event messages were made, so a restart neither loses nor repeats
-- one. action_link_uses makes each approve or roll back link usable once.
CREATE TABLE notification_subscriptions (
	tenant      TEXT    NOT NULL REFERENCES tenants (name),
	id          TEXT    NOT NULL,
	application TEXT    NOT NULL,
	target      TEXT    NOT NULL,
	events      TEXT    NOT NULL,
	sink_type   TEXT    NOT NULL,
	sink        TEXT    NOT NULL,
	created_by  TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,
	PRIMARY KEY (tenant, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE notification_outbox (
	id           INTEGER PRIMARY KEY,
	tenant       TEXT    NOT NULL REFERENCES tenants (name),
	key          TEXT    NOT NULL,
	subscription TEXT    NOT NULL,
	pipeline     TEXT    NOT NULL,
	kind         TEXT    NOT NULL,
	payload      TEXT    NOT NULL,
	status       TEXT    NOT NULL,
	attempts     INTEGER NOT NULL,
	next_attempt INTEGER NOT NULL,
	last_error   TEXT    NOT NULL,
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	UNIQUE (tenant, key)
) STRICT;
CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt) WHERE status = 'pending';
CREATE INDEX notification_outbox_tenant ON notification_outbox (tenant, subscription, id);

CREATE TABLE notify_cursors (
	tenant   TEXT    NOT NULL,
	pipeline TEXT    NOT NULL,
	seq      INTEGER NOT NULL,
	PRIMARY KEY (tenant, pipeline),
	FOREIGN KEY (tenant, pipeline) REFERENCES pipelines (tenant, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE INDEX pipelines_updated ON pipelines (updated_at);

CREATE TABLE action_link_uses (
	tenant  TEXT    NOT NULL REFERENCES tenants (name),
	nonce   TEXT    NOT NULL,
	used_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, nonce)
) STRICT, WITHOUT ROWID;
