-- 0002: an agent identifier belongs to the credential that first
-- registered it in its tenant; deleting that credential releases it.
CREATE TABLE agent_bindings (
	tenant     TEXT   NOT NULL REFERENCES tenants (name),
	agent_id   TEXT   NOT NULL,
	client_id  TEXT   NOT NULL REFERENCES credentials (client_id) ON DELETE CASCADE,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (tenant, agent_id)
);
