// Produces Debezium-shaped change events with kafkajs, as a Debezium connector (through
// Kafka Connect) would: key = {"id": N} (the row's primary key), value = {schema, payload}
// or the raw text of a deliberately malformed event, or null (a tombstone).
//
//   node cdc_producer.mjs BROKERS TOPIC EVENTS.json
// EVENTS.json: [{"op":"c|u|d|r", "before":{...}|null, "after":{...}|null}
//               | {"raw":"text"} | {"tombstone": {"id":N}}, ...]
// Prints "PRODUCED n" and exits 0 once the broker acknowledged every event (acks=-1).
import { readFileSync } from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';

const [brokers, topic, file] = process.argv.slice(2);
const events = JSON.parse(readFileSync(file, 'utf8'));
const kafka = new Kafka({ clientId: 'debezium-like', brokers: brokers.split(','),
                          logLevel: logLevel.ERROR, retry: { retries: 10 } });
const producer = kafka.producer({ allowAutoTopicCreation: false });

const schema = { type: 'struct', name: 'dbserver1.public.users.Envelope', optional: false };
const source = { version: '2.4.0.Final', connector: 'postgresql', name: 'dbserver1',
                 db: 'app', schema: 'public', table: 'users' };

let lsn = 1000;
const messages = events.map((e) => {
  if (e.raw !== undefined) return { key: JSON.stringify({ id: 0 }), value: e.raw };
  if (e.tombstone) return { key: JSON.stringify(e.tombstone), value: null };
  const row = e.after ?? e.before;
  lsn += 8;
  const payload = { before: e.before ?? null, after: e.after ?? null,
                    source: { ...source, ts_ms: Date.now(), lsn }, op: e.op, ts_ms: Date.now() };
  return { key: JSON.stringify({ id: row.id }), value: JSON.stringify({ schema, payload }) };
});

try {
  await producer.connect();
  // One send per event, in order: per-key order is what the cache relies on.
  for (const m of messages) await producer.send({ topic, acks: -1, messages: [m] });
  console.log(`PRODUCED ${messages.length}`);
  await producer.disconnect();
  process.exit(0);
} catch (err) {
  console.error('kafkajs failed:', err);
  process.exit(1);
}
