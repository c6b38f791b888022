-- 0010: HTTP calls relayed through an agent whose stream another server
-- holds (package replicas). The server making the call (owner) writes it,
-- sealed (its headers and body may carry secrets); the server holding the
-- agent's stream claims it (claimed_by: a call is sent to the agent at
-- most once, since a webhook's POST need not be idempotent), relays it
-- and writes the answer, sealed too; the owner reads and deletes it. A row
-- its owner never came back for is pruned after its deadline.
CREATE TABLE agent_relays (
	tenant     TEXT   NOT NULL REFERENCES tenants (name),
	id         TEXT   NOT NULL,
	agent      TEXT   NOT NULL,
	owner      TEXT   NOT NULL,
	call       BYTEA  NOT NULL,
	deadline   BIGINT NOT NULL,
	claimed_by TEXT,
	answer     BYTEA,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (tenant, id)
);
CREATE INDEX agent_relays_unclaimed ON agent_relays (tenant, agent) WHERE claimed_by IS NULL;
CREATE INDEX agent_relays_deadline ON agent_relays (deadline);
