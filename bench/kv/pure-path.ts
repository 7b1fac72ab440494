/**
 * CPU per operation of the pure path of a checkout: 3 Raft KV nodes (the replica alone, or
 * the call router in front of it as real nodes run it) in one process, joined by an
 * in-memory queue, no I/O, persist dropped, closed-loop clients on the leader or spread over
 * every member (followers forward). It takes another checkout's sources (a worktree of an
 * older commit) so two can be compared; process CPU time per op is far less sensitive to a
 * loaded machine than bench:kv's throughput. Snapshots every 10,000 entries as `quorate node`.
 *
 *   npx tsx bench/kv/pure-path.ts <checkout> <router|replica> <put|get> <clients> <leader|spread> [ops]
 */
import { resolve } from 'node:path';

const [given, mode, op, cS, where, opsS = '60000'] = process.argv.slice(2);
// Imported by absolute path: a relative one would resolve against this file, not the shell.
const root = given === undefined ? undefined : resolve(given);
if (root === undefined || mode === undefined || op === undefined || where === undefined) {
  throw new Error(
    'usage: pure-path.ts <checkout> <router|replica> <put|get> <clients> <leader|spread> [ops]',
  );
}
const C = Number(cS);
const { RaftKvReplica, defaultReplicaOptions } = await import(`${root}/src/replica/raft-kv.ts`);
const { defaultRaftOptions } = await import(`${root}/src/raft/config.ts`);
const { initialDurableState } = await import(`${root}/src/raft/durable.ts`);
const { Rng } = await import(`${root}/src/kernel/rng.ts`);
const routed = mode === 'router';
const R = routed ? await import(`${root}/src/replica/router.ts`) : undefined;
const B = routed ? await import(`${root}/src/replica/bindings.ts`) : undefined;
const ids = [1, 2, 3];
const raftOptions = { ...defaultRaftOptions(() => 150), commitHints: 'origin' };
interface Sent {
  readonly to: number;
  readonly msg: unknown;
}
interface Answer {
  readonly client: number;
  readonly reply: unknown;
}
interface Batch {
  readonly early: readonly Sent[];
  readonly messages: readonly Sent[];
  readonly earlyReplies: readonly Answer[];
  readonly replies: readonly Answer[];
}
type AnyCore = {
  ready(): Batch | undefined;
  advance(): void;
  receive(now: number, from: number, m: unknown): void;
  request(now: number, c: number, r: unknown): void;
  tick(now: number): void;
};
const cores = new Map<number, AnyCore>();
for (const id of ids) {
  const replica = RaftKvReplica.restore(
    id,
    initialDurableState({ voters: ids, learners: [] }),
    raftOptions,
    Rng.fromSeed(id),
    { ...defaultReplicaOptions, snapshotEveryEntries: Number(process.env.SNAP ?? 10000) },
  );
  cores.set(
    id,
    routed
      ? new R.Router(
          replica,
          B.raftKvBinding((r: unknown) => r),
          { ...R.defaultRouterOptions, peers: ids },
        )
      : replica,
  );
}
let now = 1;
const queue: { from: number; to: number; msg: unknown }[] = [];
const waiting = new Map<string, number>(); // node:client -> load client index
let done = 0;
let failed = 0;
const next: number[] = [];
const seqs = new Array(C).fill(0);
function onReply(id: number, client: number, raw: unknown): void {
  const reply = raw as { type?: string; answer?: { type?: string } };
  const k = `${id}:${client}`;
  const who = waiting.get(k);
  if (who === undefined) return;
  waiting.delete(k);
  const ok = routed
    ? reply.type === 'answer' && reply.answer?.type === 'result'
    : reply.type === 'result';
  if (ok) done++;
  else failed++;
  next.push(who);
}
function pumpAll(): void {
  for (let moved = true; moved; ) {
    moved = false;
    for (const id of ids) {
      const core = cores.get(id) as AnyCore;
      for (let rd = core.ready(); rd !== undefined; rd = core.ready()) {
        moved = true;
        for (const m of rd.early) queue.push({ from: id, to: m.to, msg: m.msg });
        for (const r of rd.earlyReplies) onReply(id, r.client, r.reply);
        for (const m of rd.messages) queue.push({ from: id, to: m.to, msg: m.msg });
        for (const r of rd.replies) onReply(id, r.client, r.reply);
        core.advance();
      }
    }
    for (let i = 0; i < queue.length; i++) {
      const q = queue[i] as (typeof queue)[number];
      cores.get(q.to)?.receive(now, q.from, q.msg);
      moved = true;
    }
    queue.length = 0;
  }
}
const campaign = { type: 'campaign', id: 1 };
(cores.get(1) as AnyCore).request(now, 1, routed ? { type: 'replica', req: campaign } : campaign);
pumpAll();
let nextClient = 10;
function issue(i: number): void {
  const node = where === 'spread' ? (ids[i % 3] as number) : 1;
  const key = `key-${(i * 7919 + seqs[i]) % 10000}`;
  const kvop = op === 'put' ? { f: 'put', key, value: 'x'.repeat(100) } : { f: 'get', key };
  const session = op === 'put' ? 1000 + i : 0;
  const seq = op === 'put' ? ++seqs[i] : 0;
  if (op !== 'put') seqs[i]++;
  const client = nextClient++;
  waiting.set(`${node}:${client}`, i);
  const req = routed
    ? {
        type: 'call',
        id: client,
        kind: op === 'put' ? 'write' : 'read',
        session,
        seq,
        op: kvop,
        timeoutMs: 5000,
        forward: true,
      }
    : { type: 'kv', id: client, session, seq, op: kvop };
  (cores.get(node) as AnyCore).request(now, client, req);
}
// Fill for reads.
if (op === 'get') {
  const fillOp = (k: number) => ({ f: 'put', key: `key-${k}`, value: 'x'.repeat(100) });
  for (let k = 0; k < 10000; k++) {
    const client = nextClient++;
    const req = routed
      ? {
          type: 'call',
          id: client,
          kind: 'write',
          session: 0,
          seq: 0,
          op: fillOp(k),
          timeoutMs: 5000,
          forward: true,
        }
      : { type: 'kv', id: client, session: 0, seq: 0, op: fillOp(k) };
    (cores.get(1) as AnyCore).request(now, client, req);
    if (k % 64 === 63) {
      pumpAll();
      now += 1;
      for (const id of ids) (cores.get(id) as AnyCore).tick(now);
      pumpAll();
    }
  }
  pumpAll();
}
function run(ops: number): number {
  const start = done + failed;
  for (let i = 0; i < C; i++) issue(i);
  while (done + failed - start < ops) {
    pumpAll();
    now += 1;
    for (const id of ids) (cores.get(id) as AnyCore).tick(now);
    const ready = next.splice(0);
    for (const i of ready) issue(i);
  }
  pumpAll();
  return done + failed - start;
}
run(Number(opsS) / 2); // warm-up (JIT)
const t0 = process.cpuUsage();
const w0 = performance.now();
const n = run(Number(opsS));
const t1 = process.cpuUsage(t0);
const wall = performance.now() - w0;
console.log(
  `${root.split('/').pop()} ${mode} ${op} C=${C} ${where}: ${((t1.user + t1.system) / n).toFixed(2)} us cpu/op, ${((wall * 1000) / n).toFixed(2)} us wall/op, ops ${n} failed ${failed}`,
);
