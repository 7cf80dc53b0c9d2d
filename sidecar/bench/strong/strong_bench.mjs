// One node-redis connection, IN_FLIGHT requests always in flight, for SECONDS: strong SETs
// (or GETs, or INCRs) of distinct keys, or INCRs of one key (incr1). Prints ops/s, p50 and
// p99 per command in ms.
import { createClient } from 'redis';
const [port, seconds = '5', inflight = '32', op = 'set', prefix = 's:bench:'] = process.argv.slice(2);
const c = createClient({ socket: { host: '127.0.0.1', port: Number(port) } });
c.on('error', (e) => { console.error('client error', e.message); });
await c.connect();
const lat = [];
let errors = 0, n = 0;
const end = Date.now() + Number(seconds) * 1000;
async function worker(w) {
  while (Date.now() < end) {
    const key = prefix + w + ':' + (n++ % 1000);
    const t = process.hrtime.bigint();
    try {
      if (op === 'get') await c.get(key);
      else if (op === 'incr') await c.incr(prefix + 'c' + w);
      else if (op === 'incr1') await c.incr(prefix + 'hot');
      else await c.set(key, 'v' + n);
    } catch (e) { if (!errors) console.error("first error:", e.message); errors++; }
    lat.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
}
const t0 = Date.now();
await Promise.all(Array.from({ length: Number(inflight) }, (_, i) => worker(i)));
const secs = (Date.now() - t0) / 1000;
lat.sort((a, b) => a - b);
const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(1);
console.log(JSON.stringify({ op, inflight: Number(inflight), ops: lat.length, ops_per_s: Math.round(lat.length / secs), p50_ms: Number(q(0.5)), p99_ms: Number(q(0.99)), errors }));
await c.quit();
