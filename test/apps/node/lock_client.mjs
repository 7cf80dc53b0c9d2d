// A Node.js service using Warp's locks through the sidecar (docs/coordination.md): a
// session lease kept alive while it runs, then ROUNDS times: WARP.LOCK, append
// "node <token>" to the shared log inside the critical section, a fenced write with the
// token, WARP.UNLOCK. Prints every token; exits non-zero on any error or a token that
// does not increase.
// Usage: node lock_client.mjs PORT LOCK LOGFILE ROUNDS
import { createClient } from 'redis';
import { appendFileSync } from 'node:fs';

const [port, lock, logfile, roundsText] = process.argv.slice(2);
const rounds = Number(roundsText ?? '5');
const client = createClient({ socket: { host: '127.0.0.1', port: Number(port) } });
client.on('error', (e) => console.error('client error', e.message));
await client.connect();

const lease = await client.sendCommand(['WARP.LEASE', 'GRANT', '10']);
const keeper = setInterval(() => {
  client.sendCommand(['WARP.LEASE', 'KEEPALIVE', String(lease)]).catch((e) => {
    console.error('keepalive failed', e.message);
  });
}, 2000);

let last = 0;
for (let i = 0; i < rounds; ++i) {
  const token = Number(await client.sendCommand(
      ['WARP.LOCK', lock, 'TIMEOUT', '20000', 'SESSION', String(lease)]));
  if (!(token > last)) {
    console.error(`token ${token} does not increase (last ${last})`);
    process.exit(2);
  }
  last = token;
  appendFileSync(logfile, `node ${token}\n`);
  const w = await client.sendCommand(['WARP.FENCEDSET', `${lock}:reg`, `node-${token}`, lock, String(token)]);
  if (w !== 'OK') {
    console.error(`fenced write with the current token refused: ${w}`);
    process.exit(3);
  }
  await new Promise((r) => setTimeout(r, 30));
  await client.sendCommand(['WARP.UNLOCK', lock, String(token), 'SESSION', String(lease)]);
  console.log(`token ${token}`);
}
clearInterval(keeper);
await client.sendCommand(['WARP.LEASE', 'REVOKE', String(lease)]);
await client.quit();
console.log('ALL PASSED');
