/**
 * Merkle anti-entropy cost (src/gossip/antientropy), measured in lockstep (MerkleLockstep:
 * every wave delivers all messages in flight, so waves / 2 are round trips and bytes are
 * exact under the wire model of src/gossip/antientropy/wire.ts).
 *
 * - Two replicas hold the same N keys (default 1 000 000; keys `key-<i>`, values of
 *   VALUE_BYTES = 100 bytes). For d = 1, 10, 100, 1 000 keys rewritten on one replica,
 *   one repair: bytes, messages and round trips, against sending the full state (every
 *   entry in the same wire model). Each d is repeated REPEATS times with fresh keys; medians.
 * - Cost of keeping the tree per write: CPU (MerkleNode put, and MerkleTree.set alone
 *   against a plain Map.set of the same entries) and heap per key (with --expose-gc).
 *
 *     npm run bench:merkle               # writes bench-results/merkle.json
 *     MERKLE_BENCH_KEYS=100000 npm run bench:merkle
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { utf8 } from '../src/gossip/antientropy/hash.ts';
import {
  type Entry,
  entryHash,
  MERKLE_TREE_DEFAULTS,
  MerkleTree,
  slotOf,
} from '../src/gossip/antientropy/merkle.ts';
import {
  MERKLE_DEFAULTS,
  type MerkleConfig,
  type MerkleDurable,
  MerkleNode,
} from '../src/gossip/antientropy/node.ts';
import { MerkleLockstep } from '../src/gossip/antientropy/testing.ts';
import { entryBytes } from '../src/gossip/antientropy/wire.ts';
import type { NodeId } from '../src/kernel/ids.ts';
import { Rng } from '../src/kernel/rng.ts';

const KEYS = Number(process.env.MERKLE_BENCH_KEYS ?? 1_000_000);
const VALUE_BYTES = 100;
const DIFFS = [1, 10, 100, 1_000];
const REPEATS = 3;
const T0 = 1_700_000_000_000;

const gc = (globalThis as { gc?: () => void }).gc;
function heap(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function value(i: number, salt: number): Uint8Array {
  const v = new Uint8Array(VALUE_BYTES);
  for (let j = 0; j < VALUE_BYTES; j++) v[j] = (i * 31 + j * 7 + salt) & 0xff;
  return v;
}

function drain(node: MerkleNode): void {
  while (node.ready() !== undefined) node.advance();
}

function config(id: NodeId): MerkleConfig {
  return { ...MERKLE_DEFAULTS, id, members: [1, 2] };
}

function buildPrimary(): { a: MerkleNode; writeUs: number; heapPerKey: number } {
  const before = heap();
  const a = new MerkleNode(config(1), Rng.fromSeed(1));
  const start = process.hrtime.bigint();
  for (let i = 0; i < KEYS; i++) {
    a.request(T0, 1, { type: 'put', key: `key-${i}`, value: value(i, 0) });
    if (i % 1_000 === 999) drain(a);
  }
  drain(a);
  const ns = Number(process.hrtime.bigint() - start);
  const heapPerKey = (heap() - before) / KEYS;
  return { a, writeUs: ns / 1_000 / KEYS, heapPerKey };
}

/** The tree's own cost: MerkleTree.set against Map.set of the same prepared entries. */
function treeCost(): { treeSetUs: number; mapSetUs: number; treeHeapPerKey: number } {
  const n = Math.min(KEYS, 200_000);
  const entries: Entry[] = [];
  for (let i = 0; i < n; i++) {
    entries.push({
      key: `key-${i}`,
      version: { wall: T0, logical: i, node: 1 },
      value: value(i, 1),
    });
  }
  const mapBefore = heap();
  let t = process.hrtime.bigint();
  const map = new Map<string, Entry>();
  for (const e of entries) map.set(e.key, e);
  const mapSetUs = Number(process.hrtime.bigint() - t) / 1_000 / n;
  const mapHeap = heap() - mapBefore;
  const treeBefore = heap();
  t = process.hrtime.bigint();
  const tree = new MerkleTree(MERKLE_TREE_DEFAULTS);
  entries.forEach((e, i) => {
    const kb = utf8(e.key);
    tree.set({ ...e, slot: slotOf(e.key, kb), hash: entryHash(e, kb), storedSeq: i });
  });
  const treeSetUs = Number(process.hrtime.bigint() - t) / 1_000 / n;
  const treeHeap = heap() - treeBefore;
  tree.checkFull();
  return { treeSetUs, mapSetUs, treeHeapPerKey: (treeHeap - mapHeap) / n };
}

function main(): void {
  console.log(`building ${KEYS} keys...`);
  const { a, writeUs, heapPerKey } = buildPrimary();
  let fullStateBytes = 0;
  const entries = new Map<string, Entry>();
  for (const e of a.tree.values()) {
    fullStateBytes += entryBytes(e);
    entries.set(e.key, { key: e.key, version: e.version, value: e.value });
  }
  const durable: MerkleDurable = { clockBound: T0 + 10_000, entries };
  const b = new MerkleNode(config(2), Rng.fromSeed(2), durable);
  drain(b);
  const net = new MerkleLockstep(
    new Map([
      [1, a],
      [2, b],
    ]),
  );
  const rng = Rng.fromSeed(7);
  const points = [];
  let now = T0 + 1_000;
  for (const d of DIFFS) {
    const runs: { bytes: number; messages: number; roundTrips: number; ms: number }[] = [];
    for (let r = 0; r < REPEATS; r++) {
      now += 1_000;
      const keys = new Set<number>();
      while (keys.size < d) keys.add(rng.int(KEYS));
      for (const i of keys)
        b.request(now, 1, { type: 'put', key: `key-${i}`, value: value(i, 2 + r) });
      drain(b);
      net.resetCounts();
      const start = process.hrtime.bigint();
      a.repairWith(2);
      net.settle(now);
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      const ra = a.tree.rootSummary();
      const rb = b.tree.rootSummary();
      if (ra.hi !== rb.hi || ra.lo !== rb.lo) throw new Error(`d=${d}: roots differ after repair`);
      runs.push({ bytes: net.bytes, messages: net.messages, roundTrips: net.waves / 2, ms });
    }
    const bytes = median(runs.map((x) => x.bytes));
    const point = {
      differences: d,
      bytes,
      messages: median(runs.map((x) => x.messages)),
      roundTrips: median(runs.map((x) => x.roundTrips)),
      repairMs: median(runs.map((x) => x.ms)),
      percentOfFullState: (100 * bytes) / fullStateBytes,
      runs,
    };
    points.push(point);
    console.log(
      `d=${d}: ${bytes} B (${point.percentOfFullState.toFixed(4)} % of full state), ` +
        `${point.messages} messages, ${point.roundTrips} round trips, ${point.repairMs.toFixed(1)} ms`,
    );
  }
  const tree = treeCost();
  const result = {
    keys: KEYS,
    valueBytes: VALUE_BYTES,
    fullStateBytes,
    leaves: a.tree.leafCount,
    points,
    perWrite: {
      nodePutUs: writeUs,
      nodeHeapBytesPerKey: heapPerKey,
      ...tree,
      gcExposed: gc !== undefined,
    },
  };
  console.log(
    `full state ${fullStateBytes} B; ${a.tree.leafCount} leaves; put ${writeUs.toFixed(2)} us/write, ` +
      `heap ${heapPerKey.toFixed(0)} B/key; tree.set ${tree.treeSetUs.toFixed(2)} us vs Map.set ` +
      `${tree.mapSetUs.toFixed(2)} us; tree overhead ${tree.treeHeapPerKey.toFixed(0)} B/key`,
  );
  mkdirSync('bench-results', { recursive: true });
  writeFileSync('bench-results/merkle.json', `${JSON.stringify(result, null, 2)}\n`);
  console.log('wrote bench-results/merkle.json');
}

main();
