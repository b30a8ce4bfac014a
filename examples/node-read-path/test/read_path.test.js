'use strict';
// Runs the read path against a real PostgreSQL (with the vset extension) and a real
// redis-server (with the vset module). The servers are private to this run: the Rust
// test examples/e2e/tests/node_read_path.rs starts them and passes their URLs in
// VSET_TEST_POSTGRES_URL / VSET_TEST_REDIS_URL (`make test-examples` runs it).
//
// Relay work is done inline (`applyOutbox`, the same claim -> VSET/VDEL -> COMMIT a
// relay does) so each test decides exactly when a committed write reaches Redis.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const Redis = require('ioredis');
const { Pool } = require('pg');
const { ReadPath } = require('../read_path');

const POSTGRES_URL = process.env.VSET_TEST_POSTGRES_URL;
const REDIS_URL = process.env.VSET_TEST_REDIS_URL;
if (!POSTGRES_URL || !REDIS_URL) {
  throw new Error(
    'VSET_TEST_POSTGRES_URL and VSET_TEST_REDIS_URL must point at private test servers; ' +
      'run `make test-examples`, which starts them');
}

const TABLE = 'public.users';
let pg;
let redis;

/** What a relay does, inline: claim committed changes, apply them, ack by COMMIT. */
async function applyOutbox() {
  const c = await pg.connect();
  try {
    await c.query('BEGIN');
    const { rows } = await c.query('SELECT cache_key, op, version, payload FROM vset.claim(1000)');
    for (const r of rows) {
      if (r.op === 'set') await redis.call('VSET', r.cache_key, r.version, r.payload);
      else await redis.call('VDEL', r.cache_key, r.version);
    }
    await c.query('COMMIT');
    return rows.length;
  } catch (err) {
    await c.query('ROLLBACK');
    throw err;
  } finally {
    c.release();
  }
}

async function drainOutbox() {
  while ((await applyOutbox()) > 0);
}

const nameOf = (json) => (json === null ? null : JSON.parse(json).name);

before(async () => {
  pg = new Pool({ connectionString: POSTGRES_URL, max: 8 });
  redis = new Redis(REDIS_URL);
  await pg.query('CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL)');
  await pg.query("SELECT vset.track('users')");
  await pg.query("INSERT INTO users SELECT g, 'user' || g FROM generate_series(1, 50) g");
});

after(async () => {
  await pg?.end();
  redis?.disconnect();
});

const floorInfo = async () => {
  const flat = await redis.call('VFLOOR');
  const info = {};
  for (let i = 0; i < flat.length; i += 2) info[flat[i]] = flat[i + 1];
  return info;
};

test('a cold module rejects the fill but the row is still served from PostgreSQL', async () => {
  assert.equal((await floorInfo()).cold, 1, 'a freshly started module must be cold');
  const reads = new ReadPath({ redis, pg });
  const r = await reads.get(TABLE, 1);
  assert.equal(r.source, 'db');
  assert.equal(nameOf(r.value), 'user1');
  assert.equal(r.stored, false, 'a cold module must refuse every VSET');
  assert.equal(await redis.exists('public.users:1'), 0);

  // What a relay does when it connects and finds the module cold.
  const { rows } = await pg.query('SELECT vset.current_version() AS v');
  assert.equal(await redis.call('VFLOOR', rows[0].v), 'OK');
  assert.equal((await floorInfo()).cold, 0);
  await drainOutbox(); // the INSERTs' versions are at or below the floor: all rejected
  assert.equal(await redis.dbsize(), 0);
});

test('miss fills the cache with vset.fill + VSET, the next read is a hit', async () => {
  const reads = new ReadPath({ redis, pg });
  const first = await reads.get(TABLE, 2);
  assert.deepEqual(
    { source: first.source, stored: first.stored, cacheKey: first.cacheKey },
    { source: 'db', stored: true, cacheKey: 'public.users:2' });
  assert.deepEqual(JSON.parse(first.value), { id: 2, name: 'user2' });

  const second = await reads.get(TABLE, '2');
  assert.equal(second.source, 'cache');
  assert.equal(second.value, first.value);
});

test('a committed update reaches readers through the relay', async () => {
  const reads = new ReadPath({ redis, pg });
  await reads.get(TABLE, 3); // cached
  await pg.query("UPDATE users SET name = 'renamed3' WHERE id = 3");
  await drainOutbox();
  const r = await reads.get(TABLE, 3);
  assert.equal(r.source, 'cache');
  assert.equal(nameOf(r.value), 'renamed3');
});

test('a fill racing an update that the relay applied first leaves no stale entry', async () => {
  let fillVersion;
  const reads = new ReadPath({
    redis,
    pg,
    // The race window: the fill has read the old row; before its VSET lands, a
    // writer commits and the relay applies the newer version.
    beforeCacheWrite: async (fill) => {
      fillVersion = BigInt(fill.version);
      await pg.query("UPDATE users SET name = 'after-race' WHERE id = 4");
      assert.equal(await applyOutbox(), 1);
    },
  });
  const r = await reads.get(TABLE, 4);
  assert.equal(nameOf(r.value), 'user4', 'the fill serves the row it read');
  assert.equal(r.stored, false, 'the late, older fill must be rejected');

  const [value, version] = await redis.call('VGET', 'public.users:4', 'WITHVERSION');
  assert.equal(nameOf(value), 'after-race');
  assert.ok(BigInt(version) > fillVersion, `cached version ${version} must be newer than the fill's ${fillVersion}`);
  const next = await new ReadPath({ redis, pg }).get(TABLE, 4);
  assert.deepEqual([next.source, nameOf(next.value)], ['cache', 'after-race']);
});

test('a fill racing an update that the relay applies later converges to the update', async () => {
  const reads = new ReadPath({
    redis,
    pg,
    beforeCacheWrite: async () => {
      await pg.query("UPDATE users SET name = 'late-relay' WHERE id = 5");
    },
  });
  const r = await reads.get(TABLE, 5);
  assert.equal(r.stored, true, 'nothing newer is cached yet, so the fill is stored');
  assert.equal(nameOf(await redis.call('VGET', 'public.users:5')), 'user5');
  await drainOutbox();
  assert.equal(nameOf(await redis.call('VGET', 'public.users:5')), 'late-relay');
});

test('a fill racing a delete does not resurrect the row', async () => {
  const reads = new ReadPath({
    redis,
    pg,
    beforeCacheWrite: async () => {
      await pg.query('DELETE FROM users WHERE id = 6');
      assert.equal(await applyOutbox(), 1); // VDEL: a versioned tombstone
    },
  });
  const r = await reads.get(TABLE, 6);
  assert.equal(r.stored, false);
  assert.equal(await redis.call('VGET', 'public.users:6'), null);
  const again = await new ReadPath({ redis, pg }).get(TABLE, 6);
  assert.deepEqual([again.value, again.source], [null, 'db']);
});

test('a missing row is served as null and caches nothing', async () => {
  const r = await new ReadPath({ redis, pg }).get(TABLE, 999);
  assert.equal(r.value, null);
  assert.equal(r.source, 'db');
  assert.equal(await redis.exists('public.users:999'), 0);
});

test('an unknown table is a clear error and writes nothing', async () => {
  const before = await redis.dbsize();
  await assert.rejects(new ReadPath({ redis, pg }).get('public.no_such_table', 1), /no_such_table/);
  assert.equal(await redis.dbsize(), before);
});

test('bad options are refused', () => {
  assert.throws(() => new ReadPath({ redis }), /needs both/);
  assert.throws(() => new ReadPath({ redis, pg, ttlSeconds: 0 }), /ttlSeconds/);
});

test('ttlSeconds puts an expiry on filled entries', async () => {
  const r = await new ReadPath({ redis, pg, ttlSeconds: 300 }).get(TABLE, 7);
  assert.equal(r.stored, true);
  const ttl = await redis.ttl('public.users:7');
  assert.ok(ttl > 0 && ttl <= 300, `TTL ${ttl} must be in (0, 300]`);
});

test('when Redis is unreachable the row is served from PostgreSQL', async () => {
  // A closed port, no reconnect queue: every command fails at once.
  const down = new Redis({ port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  down.on('error', () => {}); // the refused connection is the point of this test
  try {
    const r = await new ReadPath({ redis: down, pg }).get(TABLE, 8);
    assert.equal(r.source, 'db');
    assert.equal(nameOf(r.value), 'user8');
    assert.ok(r.cacheError instanceof Error);
  } finally {
    down.disconnect();
  }
});

test('concurrent readers, writers and a relay converge: every cached row equals the database', async () => {
  const reads = new ReadPath({ redis, pg });
  const ids = Array.from({ length: 20 }, (_, i) => 20 + i);
  const rounds = 30;
  let relayDone = false;

  const writer = async () => {
    for (let round = 0; round < rounds; round++) {
      for (const id of ids) {
        if (id % 7 === round % 7) {
          await pg.query('DELETE FROM users WHERE id = $1', [id]);
        } else {
          await pg.query(
            'INSERT INTO users VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name',
            [id, `w${round}-${id}`]);
        }
      }
    }
  };
  const reader = async () => {
    for (let round = 0; round < rounds; round++) {
      await Promise.all(ids.map((id) => reads.get(TABLE, id)));
    }
  };
  const relay = async () => {
    while (!relayDone) {
      if ((await applyOutbox()) === 0) await new Promise((r) => setTimeout(r, 5));
    }
  };

  const relayRun = relay();
  await Promise.all([writer(), reader(), reader()]);
  relayDone = true;
  await relayRun;
  await drainOutbox();

  let cachedRows = 0;
  for (const id of ids) {
    const cached = await redis.call('VGET', `public.users:${id}`);
    const { rows } = await pg.query('SELECT payload FROM vset.fill($1::regclass, $2::text)', [TABLE, String(id)]);
    const truth = rows.length === 0 ? null : rows[0].payload;
    // The relay applied every row's last change (nothing raised a floor here), so an
    // existing row must be cached with exactly its current payload and a deleted row
    // must read as a miss (its tombstone), never as an older value.
    if (truth === null) {
      assert.equal(cached, null, `deleted row ${id} must not be served from the cache`);
    } else {
      assert.notEqual(cached, null, `row ${id} must be cached after the relay drained`);
      assert.deepEqual(JSON.parse(cached), JSON.parse(truth), `stale entry for id ${id}`);
      cachedRows++;
    }
  }
  assert.equal(cachedRows, ids.filter((id) => id % 7 !== (rounds - 1) % 7).length);
});
