// A list-based job queue and leaderboard, the way Node.js code written for Redis does it,
// with both popular clients from npm (node-redis v5 and ioredis): producers LPUSH jobs in
// a MULTI with a counter, workers RPOP them (and peek with LRANGE), a sorted-set
// leaderboard is updated with ZADD/ZINCRBY and read with ZRANGE REV WITHSCORES, and a
// hash holds per-job state. Every check runs against the server given on the command line.
// Usage: node job_queue_test.mjs PORT
import { createClient } from 'redis';
import Redis from 'ioredis';

const port = Number(process.argv[2]);
let failures = 0;
function check(cond, what, detail = '') {
  if (cond) console.log(`ok - ${what}`);
  else {
    failures++;
    console.log(`FAIL - ${what} ${detail}`);
  }
}
const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// -- node-redis --------------------------------------------------------------------------
{
  const c = createClient({ url: `redis://127.0.0.1:${port}` });
  c.on('error', (e) => console.log('node-redis error', e.message));
  await c.connect();
  await c.del(['nr:jobs', 'nr:enqueued', 'nr:board', 'nr:job:1']);
  for (let i = 1; i <= 50; i++) {
    const r = await c.multi().lPush('nr:jobs', `job-${i}`).incr('nr:enqueued').exec();
    check(r[0] === i && r[1] === i, `node-redis multi LPUSH+INCR #${i}`, JSON.stringify(r));
    if (r[0] !== i) break;
  }
  check(eq(await c.lRange('nr:jobs', -3, -1), ['job-3', 'job-2', 'job-1']), 'node-redis LRANGE peek');
  const done = [];
  for (;;) {
    const job = await c.rPop('nr:jobs');
    if (job === null) break;
    done.push(job);
  }
  check(done.length === 50 && done[0] === 'job-1' && done[49] === 'job-50', 'node-redis FIFO via RPOP',
        JSON.stringify(done.slice(0, 3)));
  check((await c.lLen('nr:jobs')) === 0 && (await c.exists('nr:jobs')) === 0, 'node-redis empty queue is gone');
  check((await c.type('nr:enqueued')) === 'string', 'node-redis TYPE string');

  await c.zAdd('nr:board', [{ score: 10, value: 'ann' }, { score: 20, value: 'bob' }]);
  await c.zIncrBy('nr:board', 15, 'ann');
  const top = await c.zRangeWithScores('nr:board', 0, -1, { REV: true });
  check(eq(top, [{ value: 'ann', score: 25 }, { value: 'bob', score: 20 }]), 'node-redis leaderboard', JSON.stringify(top));
  check((await c.type('nr:board')) === 'zset', 'node-redis TYPE zset');
  check((await c.zRank('nr:board', 'bob')) === 0, 'node-redis ZRANK');

  const hs = await c.multi().hSet('nr:job:1', { state: 'running', tries: '0' }).hIncrBy('nr:job:1', 'tries', 1)
    .hGetAll('nr:job:1').exec();
  check(hs[0] === 2 && hs[1] === 1 && hs[2].state === 'running' && hs[2].tries === '1', 'node-redis hash in MULTI',
        JSON.stringify(hs));
  try {
    await c.lPush('nr:board', 'x');
    check(false, 'node-redis WRONGTYPE');
  } catch (e) {
    check(String(e.message).startsWith('WRONGTYPE'), 'node-redis WRONGTYPE', e.message);
  }
  await c.quit();
}

// -- ioredis -----------------------------------------------------------------------------
{
  const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, lazyConnect: true });
  c.on('error', (e) => console.log('ioredis error', e.message));
  await c.connect();
  await c.del('io:jobs', 'io:enqueued', 'io:board', 'io:seen');
  for (let i = 1; i <= 50; i++) {
    const r = await c.multi().lpush('io:jobs', `job-${i}`).incr('io:enqueued').exec();
    check(eq(r, [[null, i], [null, i]]), `ioredis multi LPUSH+INCR #${i}`, JSON.stringify(r));
    if (!eq(r, [[null, i], [null, i]])) break;
  }
  const batch = await c.rpop('io:jobs', 10);
  check(batch.length === 10 && batch[0] === 'job-1' && batch[9] === 'job-10', 'ioredis RPOP count', JSON.stringify(batch));
  check(eq(await c.lrange('io:jobs', 0, 1), ['job-50', 'job-49']), 'ioredis LRANGE');
  // Workers racing for the same queue: every job is taken exactly once.
  const workers = Array.from({ length: 4 }, () => new Redis({ port, host: '127.0.0.1' }));
  const taken = await Promise.all(workers.map(async (w) => {
    const mine = [];
    for (;;) {
      const job = await w.rpop('io:jobs');
      if (job === null) return mine;
      mine.push(job);
      await w.sadd('io:seen', job);
    }
  }));
  const all = taken.flat();
  check(all.length === 40 && new Set(all).size === 40, 'ioredis 4 workers take each job once', `${all.length}`);
  check((await c.scard('io:seen')) === 40, 'ioredis SCARD');
  for (const w of workers) w.disconnect();

  const tx = await c.multi().zadd('io:board', 5, 'x', 7, 'y').zincrby('io:board', 3, 'x')
    .zrange('io:board', 0, -1, 'WITHSCORES').zpopmax('io:board').exec();
  check(eq(tx, [[null, 2], [null, '8'], [null, ['y', '7', 'x', '8']], [null, ['x', '8']]]), 'ioredis zset in MULTI',
        JSON.stringify(tx));
  check((await c.type('io:board')) === 'zset' && (await c.type('io:seen')) === 'set', 'ioredis TYPE');
  // A runtime error inside EXEC is that command's entry; the others still run.
  const mixed = await c.multi().set('io:board', 'x', 'GET').lpush('io:other', 'a').exec();
  check(mixed[0][0] && String(mixed[0][0].message).startsWith('WRONGTYPE') && eq(mixed[1], [null, 1]),
        'ioredis WRONGTYPE inside MULTI', JSON.stringify(mixed));
  await c.del('io:other');
  c.disconnect();
}

console.log(failures === 0 ? 'ALL PASSED' : `${failures} FAILED`);
process.exit(failures === 0 ? 0 : 1);
