-- vset quick start: track a table, watch the outbox, fill on a read miss.
-- Run with psql against a database where `make install-pg` installed the extension.
CREATE EXTENSION IF NOT EXISTS vset;

CREATE TABLE users (
    id            bigint PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    name          text,
    password_hash text
);

-- Cache key public.users:{id}; the payload leaves the password hash out.
SELECT vset.track('users', columns => ARRAY['id', 'email', 'name']);

INSERT INTO users VALUES (42, 'ann@example.com', 'Ann', 'x');
UPDATE users SET password_hash = 'y' WHERE id = 42;   -- no payload column changed: no record
UPDATE users SET name = 'Ann B.' WHERE id = 42;       -- set
UPDATE users SET id = 43 WHERE id = 42;               -- del public.users:42, set public.users:43

SELECT id, cache_key, op, version, payload FROM vset.outbox ORDER BY id;
SELECT * FROM vset.status();

-- Read miss on public.users:43: the application runs this, then
-- VSET public.users:43 <version> <payload>   (or nothing when no row comes back).
SELECT * FROM vset.fill('users', '43');

-- A bulk job that should only invalidate.
BEGIN;
SET LOCAL vset.mode = 'invalidate';
UPDATE users SET name = upper(name);
COMMIT;

-- Cache keyed by the other unique key instead (any UNIQUE NOT NULL key works). The
-- keys cached under the old template get a del each (a NOTICE says how many), so none
-- of them stays behind, stale.
SELECT vset.track('users', key_template => 'user-by-email:{email}', replace => true);
