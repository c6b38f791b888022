-- 0006: deploy windows and freezes, set by admins per tenant, application
-- or target (scope: "tenant", "application NAME", "target NAME"). A window's
-- definition is pipeline.Window as JSON.
CREATE TABLE windows (
	tenant     TEXT    NOT NULL REFERENCES tenants (name),
	scope      TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	spec       TEXT    NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, scope, name)
) STRICT, WITHOUT ROWID;

-- One freeze per scope; until is 0 for a freeze without an end.
CREATE TABLE freezes (
	tenant     TEXT    NOT NULL REFERENCES tenants (name),
	scope      TEXT    NOT NULL,
	reason     TEXT    NOT NULL,
	until      INTEGER NOT NULL,
	set_by     TEXT    NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, scope)
) STRICT, WITHOUT ROWID;
