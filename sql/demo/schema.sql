-- The demo's application table: one row per user profile. `id` is the primary key,
-- so vset's default cache key is `public.users:<id>`.
CREATE EXTENSION IF NOT EXISTS vset;

CREATE TABLE public.users (
    id         int PRIMARY KEY,
    name       text NOT NULL,
    email      text NOT NULL,
    bio        text,
    rev        int  NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- From now on every committed INSERT/UPDATE/DELETE on users writes a versioned
-- change into vset.outbox, in the same transaction.
SELECT vset.track('public.users');
