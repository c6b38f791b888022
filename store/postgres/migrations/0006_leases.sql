-- 0006: leases, as store/sqlite's 0009. Each unfinished pipeline is driven
-- by the replica named in owner until lease_until (nanoseconds, UTC; 0 with
-- no owner); epoch is the fencing number, increased by every takeover,
-- which every save must carry. replicas says which servers are live (their
-- last claim or renewal plus the lease TTL), for each one's fair share.
ALTER TABLE pipelines ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE pipelines ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE pipelines ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;

-- What a claim scans: the unfinished pipelines by lease expiry.
CREATE INDEX pipelines_leases ON pipelines (lease_until, created_at) WHERE NOT terminal;

CREATE TABLE replicas (
	id         TEXT   NOT NULL PRIMARY KEY,
	live_until BIGINT NOT NULL
);
