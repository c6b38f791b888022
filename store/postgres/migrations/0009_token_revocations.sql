-- 0009: revoked principals (a deleted or changed credential or user), so
-- that a restarted server, or another replica, refuses the tokens issued
-- to them before (package auth). A row is needed only until every such
-- token has expired (expires_at, nanoseconds); later ones are pruned.
CREATE TABLE token_revocations (
	tenant     TEXT   NOT NULL,
	subject    TEXT   NOT NULL,
	revoked_at BIGINT NOT NULL, -- unix second: tokens issued in or before it are refused
	expires_at BIGINT NOT NULL,
	PRIMARY KEY (tenant, subject)
);
CREATE INDEX token_revocations_expiry ON token_revocations (expires_at);
