-- What a relay does, in any language: only SQL and the Redis commands VSET/VDEL/VFLOOR.
--
-- Once, with a role that may claim:
--   CREATE ROLE relay LOGIN;
--   GRANT USAGE ON SCHEMA vset TO relay;
--   GRANT SELECT, UPDATE, DELETE ON vset.outbox TO relay;
--
-- On (re)connect, when Redis is cold (no saved state): VFLOOR <this>
SELECT vset.current_version();

LISTEN vset;   -- wake-ups only; poll anyway (the outbox is the truth)

-- Each round:
BEGIN;
SELECT id, cache_key, op, version, payload FROM vset.claim(500);
--   for each row:  op = 'set' -> VSET cache_key version payload
--                  op = 'del' -> VDEL cache_key version
--   (replays and reordering are harmless: Redis keeps only newer versions)
COMMIT;   -- the claimed rows are gone; on any error ROLLBACK gives them back
