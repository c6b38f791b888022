-- 0010: token signing keys in the database, so that every server on it
-- signs and verifies with the same keys. The private key is sealed under
-- the master key, never stored in clear.
CREATE TABLE signing_keys (
	id         TEXT    NOT NULL PRIMARY KEY,
	sealed     BLOB    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
