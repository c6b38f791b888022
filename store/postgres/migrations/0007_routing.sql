-- 0007: several servers on one database. Commands for agents travel through
-- agent_commands: the pipeline's owner writes one, the server holding the
-- agent's stream delivers it and writes the result (and the agent's reports
-- before it), the owner reads and deletes it. agent_streams says which
-- server holds which agent's stream (seen_at refreshed while it does).
-- Every insert of events notifies sortie_events, so each server pushes
-- other servers' events to its own subscribers.
CREATE TABLE agent_commands (
	tenant     TEXT    NOT NULL REFERENCES tenants (name),
	id         TEXT    NOT NULL,
	agent      TEXT    NOT NULL,
	owner      TEXT    NOT NULL,
	job        TEXT    NOT NULL,
	deadline   BIGINT  NOT NULL,
	cancelled  BOOLEAN NOT NULL DEFAULT false,
	result     TEXT,
	created_at BIGINT  NOT NULL,
	PRIMARY KEY (tenant, id)
);
CREATE INDEX agent_commands_pending ON agent_commands (tenant, agent) WHERE result IS NULL;

CREATE TABLE agent_command_reports (
	seq     BIGSERIAL PRIMARY KEY,
	tenant  TEXT NOT NULL,
	command TEXT NOT NULL,
	type    TEXT NOT NULL,
	data    TEXT,
	FOREIGN KEY (tenant, command) REFERENCES agent_commands (tenant, id) ON DELETE CASCADE
);
CREATE INDEX agent_command_reports_command ON agent_command_reports (tenant, command, seq);

CREATE TABLE agent_streams (
	tenant  TEXT   NOT NULL REFERENCES tenants (name),
	agent   TEXT   NOT NULL,
	replica TEXT   NOT NULL,
	info    TEXT   NOT NULL,
	seen_at BIGINT NOT NULL,
	PRIMARY KEY (tenant, agent, replica)
);

CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
	FOR r IN SELECT tenant, pipeline, min(seq) AS first, max(seq) AS last FROM inserted GROUP BY tenant, pipeline LOOP
		PERFORM pg_notify('sortie_events', r.tenant || ' ' || r.pipeline || ' ' || r.first || ' ' || r.last);
	END LOOP;
	RETURN NULL;
END $$;
CREATE TRIGGER events_notify AFTER INSERT ON events
	REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION events_notify();

-- Token signing keys, shared by every server on the database; the private
-- key is sealed under the master key, never stored in clear.
CREATE TABLE signing_keys (
	id         TEXT   NOT NULL PRIMARY KEY,
	sealed     BYTEA  NOT NULL,
	created_at BIGINT NOT NULL
);
