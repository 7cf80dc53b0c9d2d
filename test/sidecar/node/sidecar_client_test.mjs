// Drives the Warp RESP sidecar with node-redis v5 (a real client from npm): plain commands,
// pipelining, counters from several connections, SCAN iteration, keyspace pub/sub, and
// RESP3 client-side caching that must stay coherent when another connection writes.
// Usage: node sidecar_client_test.mjs PORT
import { createClient } from 'redis';

const port = Number(process.argv[2]);
const url = `redis://127.0.0.1:${port}`;
let failures = 0;
function check(cond, what, detail = '') {
  if (cond) console.log(`ok - ${what}`);
  else {
    failures++;
    console.log(`FAIL - ${what} ${detail}`);
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function eventually(fn, ms = 5000) {
  const until = Date.now() + ms;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() > until) return false;
    await sleep(10);
  }
}

const writer = createClient({ url });
writer.on('error', (e) => console.log('writer error', e.message));
await writer.connect();
check((await writer.ping()) === 'PONG', 'PING');
await writer.flushDb();

// Pipelining: node-redis writes every command issued in the same tick in one batch.
const n = 2000;
await Promise.all(Array.from({ length: n }, (_, i) => writer.set(`n:${i}`, String(i))));
const values = await Promise.all(Array.from({ length: n }, (_, i) => writer.get(`n:${i}`)));
check(values.every((v, i) => v === String(i)), `${n} pipelined SET then GET`);
const piped = await writer.multi().set('a', '1').incr('ctr').incrBy('ctr', 5).get('a').mGet(['a', 'zz'])
  .execAsPipeline();
check(JSON.stringify(piped) === JSON.stringify(['OK', 1, 6, '1', ['1', null]]), 'execAsPipeline', JSON.stringify(piped));
check((await writer.set('ttl', 'x', { EX: 100 })) === 'OK', 'SET EX');
const ttl = await writer.ttl('ttl');
check(ttl === 100 || ttl === 99, 'TTL', String(ttl));
check((await writer.set('nx', '1', { NX: true })) === 'OK' && (await writer.set('nx', '2', { NX: true })) === null, 'SET NX');
check((await writer.dbSize()) === n + 4, 'DBSIZE', String(await writer.dbSize()));
let threw = false;
try {
  await writer.incr('a2');
  await writer.set('s', 'str');
  await writer.incr('s');
} catch (e) {
  threw = e.message === 'ERR value is not an integer or out of range';
}
check(threw, 'INCR on a string errors with Redis wording');

// Counters from several connections, all pipelined.
const clients = await Promise.all(Array.from({ length: 5 }, async () => {
  const c = createClient({ url });
  await c.connect();
  return c;
}));
await Promise.all(clients.map((c) => Promise.all(Array.from({ length: 400 }, () => c.incr('shared')))));
check((await writer.get('shared')) === '2000', 'INCR from 5 connections x 400');
await Promise.all(clients.map((c) => c.quit()));

// SCAN: the numeric cursor must survive JS number parsing and end at 0.
const seen = new Set();
for await (const keys of writer.scanIterator({ MATCH: 'n:*', COUNT: 100 })) for (const k of keys) seen.add(k);
check(seen.size === n, 'scanIterator MATCH n:*', String(seen.size));

// Keyspace notifications through SUBSCRIBE.
const sub = writer.duplicate();
await sub.connect();
const events = [];
await sub.subscribe('__keyspace@0__:watched', (message, channel) => events.push(`${channel}=${message}`));
await writer.set('watched', '1');
await writer.del('watched');
check(await eventually(() => events.length >= 2), 'keyspace messages arrive');
check(events.join(' ') === '__keyspace@0__:watched=set __keyspace@0__:watched=del', 'keyspace messages', events.join(' '));
await sub.unsubscribe();
await sub.quit();

// RESP3 client-side caching: reads are served from the client's cache until the sidecar
// pushes an invalidation for the key.
const cached = createClient({ url, RESP: 3, clientSideCache: { ttl: 0, maxEntries: 0 } });
cached.on('error', (e) => console.log('cached error', e.message));
await cached.connect();
await writer.set('csc:k', 'v1');
check((await cached.get('csc:k')) === 'v1', 'CSC first read');
check((await cached.get('csc:k')) === 'v1', 'CSC second read');
const stats1 = cached.clientSideCache.stats();
check(stats1.hitCount >= 1, 'CSC served a hit locally', JSON.stringify(stats1));
await writer.set('csc:k', 'v2');
check(await eventually(async () => (await cached.get('csc:k')) === 'v2'), 'CSC sees the new value after invalidation');
await writer.incr('csc:ctr');
check((await cached.get('csc:ctr')) === '1', 'CSC counter read');
await writer.incr('csc:ctr');
check(await eventually(async () => (await cached.get('csc:ctr')) === '2'), 'CSC counter invalidated');
await writer.flushDb();
check(await eventually(async () => (await cached.get('csc:ctr')) === null), 'FLUSHDB invalidates everything');

// Raw invalidation events (emitInvalidate) prove the push frames themselves.
const inv = createClient({ url, RESP: 3, emitInvalidate: true });
await inv.connect();
const invalidated = [];
inv.on('invalidate', (key) => invalidated.push(key === null ? null : key.toString()));
await inv.get('x');
await writer.set('x', '1');
check(await eventually(() => invalidated.includes('x')), 'invalidate push for x', JSON.stringify(invalidated));
await inv.quit();

// MULTI/EXEC: multi().exec() is a real transaction; WATCH aborts it with a WatchError.
const tx = await writer.multi().set('tx:a', '1').incr('tx:a').get('tx:a').exec();
check(JSON.stringify(tx) === JSON.stringify(['OK', 2, '2']), 'multi().exec()', JSON.stringify(tx));
const watcher = createClient({ url });
await watcher.connect();
await watcher.watch('tx:w');
await writer.set('tx:w', 'other');
let watchError = false;
try {
  await watcher.multi().set('tx:w', 'mine').exec();
} catch (e) {
  watchError = e.name === 'WatchError' || e.constructor.name === 'WatchError';
}
check(watchError, 'WATCH + change by another client -> WatchError');
check((await writer.get('tx:w')) === 'other', 'aborted transaction wrote nothing');
await watcher.watch('tx:w');
check(JSON.stringify(await watcher.multi().set('tx:w', 'mine').exec()) === '["OK"]', 'WATCH, no change -> EXEC runs');
await watcher.quit();

await cached.quit();
await writer.quit();
console.log(failures === 0 ? 'ALL PASSED' : `${failures} FAILED`);
process.exit(failures === 0 ? 0 : 1);
