-- 0009: leases. Each unfinished pipeline is driven by the replica named in
-- owner until lease_until (nanoseconds, UTC; 0 with no owner); epoch is the
-- fencing number, increased by every takeover, which every save must carry.
-- A single SQLite server holds them all, but the semantics are the same as
-- PostgreSQL's. replicas says which servers are live, for the fair share.
ALTER TABLE pipelines ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE pipelines ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pipelines ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;

CREATE TABLE replicas (
	id         TEXT    NOT NULL PRIMARY KEY,
	live_until INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- What a claim scans: the unfinished pipelines by lease expiry.
CREATE INDEX pipelines_leases ON pipelines (lease_until, created_at) WHERE terminal = 0;
