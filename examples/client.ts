/**
 * Use the client against a running cluster (`npx quorate up`): writes are applied once
 * however often they are retried, reads are linearizable unless asked otherwise, and a
 * failed compare-and-set shows what is there. Endpoints come from the command line.
 */
import { QuorateClient, QuorateError } from 'quorate/client';

const endpoints = (process.argv[2] ?? 'http://127.0.0.1:2379').split(',');
const client = new QuorateClient({ endpoints, timeoutMs: 5000 });

const put = await client.put('examples/greeting', 'hello');
const got = await client.get('examples/greeting');
const swap = await client.cas('examples/greeting', 'not what is there', 'ignored');
const listed = await client.list('examples/');
let missing = 'none';
try {
  await client.status('http://127.0.0.1:1');
} catch (err) {
  if (err instanceof QuorateError) missing = err.code;
}
console.log(
  JSON.stringify({
    revision: put.revision,
    value: got.entry?.value,
    casApplied: swap.ok,
    casSaw: swap.entry?.value,
    keys: listed.entries.map((e) => e.key),
    unreachable: missing,
  }),
);
