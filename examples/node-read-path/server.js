'use strict';
// A minimal HTTP API on top of the read path: GET /<schema.table>/<key> -> the row's JSON.
//
//   VSET_POSTGRES_URL=postgres://... VSET_REDIS_URL=redis://... node server.js
//   curl localhost:3000/public.users/42
const http = require('node:http');
const Redis = require('ioredis');
const { Pool } = require('pg');
const { ReadPath } = require('./read_path');

const postgresUrl = process.env.VSET_POSTGRES_URL;
const redisUrl = process.env.VSET_REDIS_URL;
if (!postgresUrl || !redisUrl) {
  console.error('set VSET_POSTGRES_URL and VSET_REDIS_URL');
  process.exit(2);
}
const reads = new ReadPath({ redis: new Redis(redisUrl), pg: new Pool({ connectionString: postgresUrl }) });

http.createServer(async (req, res) => {
  const match = /^\/([A-Za-z0-9_.]+)\/([^/]+)$/.exec(req.url ?? '');
  if (req.method !== 'GET' || !match) {
    res.writeHead(404).end();
    return;
  }
  try {
    const { value, source } = await reads.get(match[1], decodeURIComponent(match[2]));
    if (value === null) {
      res.writeHead(404).end();
    } else {
      res.writeHead(200, { 'content-type': 'application/json', 'x-vset-source': source }).end(value);
    }
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`);
  }
}).listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
