-- 0003: a secret may be restricted to destination hosts (a JSON array of
-- host patterns; empty means any host), set by an admin with the value.
ALTER TABLE secrets ADD COLUMN allowed_hosts TEXT NOT NULL DEFAULT '[]';
