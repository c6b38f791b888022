-- 0008: previous versions kept warm after a target succeeded (keepPrevious),
-- until their removal at until (Unix nanoseconds): the runner arms a timer
-- at each row's until, also after a restart, and deletes the row once the
-- cluster removed the version.
CREATE TABLE warm_versions (
	tenant   TEXT    NOT NULL REFERENCES tenants (name),
	pipeline TEXT    NOT NULL,
	target   TEXT    NOT NULL,
	until    BIGINT  NOT NULL,
	PRIMARY KEY (tenant, pipeline, target)
);
