'use strict';
// The read path of a Node.js API on a vset cache.
//
//   hit:  VGET key                                   -> serve the cached JSON
//   miss: SELECT * FROM vset.fill(table, VARIADIC k) -> (cache_key, version, payload)
//         VSET cache_key version payload             -> stored only if newer
//         serve payload
//
// Why this cannot leave a stale entry: vset.fill draws `version` while it holds a
// share lock on the row, so any write that commits after the fill read the row has a
// larger version. If the relay has already applied that write, the module rejects the
// fill's VSET (reply 0); if not, the relay's later VSET replaces the fill's value.
// Either way the newest committed row wins. Nothing here deletes or overwrites a key
// with plain SET/DEL, which is what makes the classic "read-miss fill races a write"
// bug impossible.

const FILL_SQL =
  'SELECT cache_key, version, payload FROM vset.fill($1::regclass, VARIADIC $2::text[])';

class ReadPath {
  /**
   * @param {object} opts
   * @param {import('ioredis').Redis} opts.redis  a client of the Redis that has the vset module
   * @param {import('pg').Pool} opts.pg           a pool of the PostgreSQL that has the extension
   * @param {number} [opts.ttlSeconds]            optional expiry of filled entries (VSET ... EX)
   * @param {(fill: {cache_key: string, version: string, payload: string}) => Promise<void>} [opts.beforeCacheWrite]
   *        called between the fill and its VSET; tests use it to force a write into
   *        that window, production code leaves it out
   */
  constructor({ redis, pg, ttlSeconds, beforeCacheWrite }) {
    if (!redis || !pg) throw new TypeError('ReadPath needs both `redis` and `pg` clients');
    if (ttlSeconds !== undefined && !(Number.isInteger(ttlSeconds) && ttlSeconds > 0)) {
      throw new RangeError(`ttlSeconds must be a positive integer, got ${ttlSeconds}`);
    }
    this.redis = redis;
    this.pg = pg;
    this.expiry = ttlSeconds === undefined ? [] : ['EX', String(ttlSeconds)];
    this.beforeCacheWrite = beforeCacheWrite;
  }

  /**
   * The cache key vset.track() uses by default: `<schema>.<table>:<key>`, e.g.
   * `public.users:42` (composite keys joined with ':').
   */
  static cacheKey(table, keyParts) {
    return `${table}:${keyParts.join(':')}`;
  }

  /**
   * Reads one row as the JSON text vset caches for it.
   *
   * @param {string} table  schema-qualified table name, as in the cache key (`public.users`)
   * @param {string|number|Array<string|number>} key  the row's key (parts of a composite key in order)
   * @returns {Promise<{value: string|null, source: 'cache'|'db', cacheKey: string,
   *                    stored?: boolean, cacheError?: Error}>}
   *          `value` is null when the row does not exist; `stored` says whether the
   *          fill's VSET was accepted (false when a newer version is already cached
   *          or the module is cold); `cacheError` is set when Redis failed and the
   *          row was served from PostgreSQL alone.
   */
  async get(table, key) {
    const keyParts = (Array.isArray(key) ? key : [key]).map(String);
    if (keyParts.length === 0) throw new RangeError('key must have at least one part');
    const cacheKey = ReadPath.cacheKey(table, keyParts);

    let cacheError;
    try {
      const hit = await this.redis.call('VGET', cacheKey);
      if (hit !== null) return { value: hit, source: 'cache', cacheKey };
    } catch (err) {
      // The cache is an optimisation: when Redis is down, serve from the database.
      cacheError = err;
    }

    const { rows } = await this.pg.query(FILL_SQL, [table, keyParts]);
    if (rows.length === 0) return { value: null, source: 'db', cacheKey, cacheError };
    const fill = rows[0];

    if (cacheError) return { value: fill.payload, source: 'db', cacheKey: fill.cache_key, cacheError };
    if (this.beforeCacheWrite) await this.beforeCacheWrite(fill);
    let stored = false;
    try {
      // `version` is a bigint that node-pg hands over as a decimal string; it goes to
      // Redis untouched. Converting it to a JS number would round versions >= 2^53.
      const reply = await this.redis.call(
        'VSET', fill.cache_key, fill.version, fill.payload, ...this.expiry);
      stored = reply === 1;
    } catch (err) {
      cacheError = err;
    }
    return { value: fill.payload, source: 'db', cacheKey: fill.cache_key, stored, cacheError };
  }
}

module.exports = { ReadPath, FILL_SQL };
