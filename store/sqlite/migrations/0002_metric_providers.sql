-- 0002: metric providers, per tenant, for analysis steps. config is the
-- provider's settings as JSON: it names secrets, never holds their values.

CREATE TABLE metric_providers (
	tenant     TEXT    NOT NULL REFERENCES tenants (name),
	name       TEXT    NOT NULL,
	type       TEXT    NOT NULL,
	config     TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, name)
) STRICT, WITHOUT ROWID;
