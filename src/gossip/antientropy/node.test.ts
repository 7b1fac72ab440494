import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvariantError } from '../../kernel/assert.ts';
import type { NodeId } from '../../kernel/ids.ts';
import { Rng } from '../../kernel/rng.ts';
import { utf8 } from './hash.ts';
import { compareHlc, type Hlc } from './hlc.ts';
import {
  applyMerklePersist,
  initialMerkleDurable,
  MERKLE_DEFAULTS,
  type MerkleConfig,
  type MerkleDurable,
  MerkleNode,
  type MerkleReply,
} from './node.ts';
import { collectTombstone } from './policy.ts';
import { MerkleLockstep } from './testing.ts';
import type { MerkleMsg } from './wire.ts';

const T0 = 1_700_000_000_000;

function config(id: NodeId, members: NodeId[], over: Partial<MerkleConfig> = {}): MerkleConfig {
  return { ...MERKLE_DEFAULTS, id, members, ...over };
}

function pair(over: Partial<MerkleConfig> = {}) {
  const a = new MerkleNode(config(1, [1, 2], over), Rng.fromSeed(1));
  const b = new MerkleNode(config(2, [1, 2], over), Rng.fromSeed(2));
  const net = new MerkleLockstep(
    new Map([
      [1, a],
      [2, b],
    ]),
  );
  return { a, b, net };
}

function repliesOf(node: MerkleNode): MerkleReply[] {
  const out: MerkleReply[] = [];
  for (;;) {
    const rd = node.ready();
    if (rd === undefined) return out;
    for (const r of rd.replies) out.push(r.reply);
    node.advance();
  }
}

function put(node: MerkleNode, now: number, key: string, value: string): void {
  node.request(now, 1, { type: 'put', key, value: utf8(value) });
}

function repair(net: MerkleLockstep, from: MerkleNode, to: NodeId, now: number): void {
  from.repairWith(to);
  net.settle(now);
}

function contents(node: MerkleNode): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of node.tree.values()) {
    m.set(e.key, e.value === undefined ? '<deleted>' : new TextDecoder().decode(e.value));
  }
  return m;
}

describe('MerkleNode writes', () => {
  it('refuses a key or value over its limit as too-large naming the limit, storing nothing', () => {
    const { a } = pair({ keyBytesMax: 8, valueBytesMax: 4 });
    put(a, T0, 'k'.repeat(9), 'v');
    put(a, T0, 'k', 'vvvvv');
    put(a, T0, 'ok', 'vvvv');
    const replies = repliesOf(a);
    expect(replies[0]).toMatchObject({
      type: 'refused',
      refusal: { type: 'too-large', limit: 'keyBytesMax', max: 8, bytes: 9 },
    });
    expect(replies[1]).toMatchObject({
      type: 'refused',
      refusal: { type: 'too-large', limit: 'valueBytesMax', max: 4, bytes: 5 },
    });
    expect(replies[2]).toMatchObject({ type: 'ok', key: 'ok' });
    expect([...contents(a).keys()]).toEqual(['ok']);
  });

  it('validates its limits at construction', () => {
    expect(() => new MerkleNode(config(1, [1], { valueBytesMax: 0 }), Rng.fromSeed(1))).toThrow(
      InvariantError,
    );
    expect(
      () => new MerkleNode(config(1, [1], { messageBytesMax: 1_000 }), Rng.fromSeed(1)),
    ).toThrow(/messageBytesMax/);
  });

  it('refuses a new key past entriesMax as full', () => {
    const { a } = pair({ entriesMax: 2 });
    put(a, T0, 'x', '1');
    put(a, T0, 'y', '1');
    put(a, T0, 'z', '1');
    put(a, T0, 'x', '2');
    const r = repliesOf(a);
    expect(r[2]).toMatchObject({ type: 'refused', refusal: { type: 'full', max: 2 } });
    expect(r[3]).toMatchObject({ type: 'ok' });
  });

  it('never reuses a version after a restart, even when the physical clock stepped back', () => {
    let durable: MerkleDurable = initialMerkleDurable();
    const versions: Hlc[] = [];
    let now = T0;
    for (let life = 0; life < 4; life++) {
      const node = new MerkleNode(config(1, [1, 2]), Rng.fromSeed(life), durable);
      for (let i = 0; i < 30; i++) {
        put(node, now, `k${i % 3}`, `${life}.${i}`);
        now += 1_000;
      }
      for (;;) {
        const rd = node.ready();
        if (rd === undefined) break;
        for (const p of rd.persist) durable = applyMerklePersist(durable, p);
        for (const r of rd.replies) if (r.reply.type === 'ok') versions.push(r.reply.version);
        node.advance();
      }
      now -= 50_000; // the wall clock steps back across the restart
    }
    for (let i = 1; i < versions.length; i++) {
      expect(compareHlc(versions[i] as Hlc, versions[i - 1] as Hlc)).toBe(1);
    }
  });
});

describe('Merkle repair', () => {
  it('two replicas with random divergent writes converge to equal roots after one repair', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            side: fc.constantFrom('a', 'b', 'both'),
            key: fc.string({ maxLength: 4 }),
            value: fc.string({ maxLength: 8 }),
            del: fc.boolean(),
            dt: fc.nat({ max: 5 }),
          }),
          { maxLength: 400 },
        ),
        fc.boolean(),
        (writes, bStarts) => {
          const { a, b, net } = pair({ leafKeysMax: 8, listKeysMax: 4 });
          let now = T0;
          for (const w of writes) {
            now += w.dt;
            for (const n of w.side === 'a' ? [a] : w.side === 'b' ? [b] : [a, b]) {
              if (w.del) n.request(now, 1, { type: 'delete', key: w.key });
              else put(n, now, w.key, w.value);
            }
          }
          net.collect();
          repair(net, bStarts ? b : a, bStarts ? 1 : 2, now);
          expect(a.tree.rootSummary()).toEqual(b.tree.rootSummary());
          expect(contents(a)).toEqual(contents(b));
          a.tree.checkFull();
          b.tree.checkFull();
        },
      ),
      { numRuns: 60 },
    );
  });

  it('last writer wins by HLC then node id on both replicas', () => {
    const { a, b, net } = pair();
    put(a, T0 + 10, 'k', 'from-a-later');
    put(b, T0, 'k', 'from-b-earlier');
    net.collect();
    repair(net, a, 2, T0 + 20);
    expect(contents(a).get('k')).toBe('from-a-later');
    expect(contents(b).get('k')).toBe('from-a-later');
    // Same wall and logical on fresh replicas: node 2 wins the tie.
    const fresh = pair();
    put(fresh.a, T0, 'tie', 'from-a');
    put(fresh.b, T0, 'tie', 'from-b');
    fresh.net.collect();
    repair(fresh.net, fresh.a, 2, T0 + 1);
    expect(contents(fresh.a).get('tie')).toBe('from-b');
    expect(contents(fresh.b).get('tie')).toBe('from-b');
  });

  it('bytes and round trips grow with the differences, not with the data size', () => {
    const cost = (n: number, d: number) => {
      const { a, b, net } = pair();
      for (let i = 0; i < n; i++) put(a, T0, `key-${i}`, `value-${i}`);
      net.collect();
      repair(net, b, 1, T0);
      for (let i = 0; i < d; i++) put(b, T0 + 1, `key-${i * 7}`, 'changed');
      net.collect();
      net.resetCounts();
      repair(net, a, 2, T0 + 2);
      expect(a.tree.rootSummary()).toEqual(b.tree.rootSummary());
      return { bytes: net.bytes, waves: net.waves };
    };
    const small = cost(2_000, 5);
    const large = cost(20_000, 5);
    const many = cost(20_000, 100);
    expect(large.bytes).toBeLessThan(small.bytes * 2.5);
    expect(large.waves).toBeLessThanOrEqual(small.waves + 2);
    expect(many.bytes).toBeGreaterThan(large.bytes * 5);
    expect(large.waves).toBeLessThanOrEqual(8);
    // The equal-data case costs one message each way.
    const same = cost(20_000, 0);
    expect(same.waves).toBe(2);
  });

  it('drops and counts malformed, oversized and future entries, storing none of them', () => {
    const { a } = pair({ valueBytesMax: 4 });
    const v = (wall: number): Hlc => ({ wall, logical: 0, node: 2 });
    a.receive(T0, 2, {
      type: 'values',
      session: 1,
      entries: [
        { key: 'big', version: v(T0), value: utf8('12345') },
        { key: 'future', version: v(T0 + 10 * 60_000), value: utf8('1') },
        { key: 'bad', version: { wall: -1, logical: 0, node: 2 }, value: utf8('1') },
        { key: 'ok', version: v(T0), value: utf8('1') },
      ],
      want: [],
    });
    a.receive(T0, 9, { type: 'in-sync', session: 1, root: { hi: 0, lo: 0, count: 0 } });
    a.receive(T0, 2, {
      type: 'hashes',
      session: 1,
      ranges: [{ bits: 3, prefix: 0, hi: 0, lo: 0, count: 0 }],
    });
    const junk = [
      { type: 'hashes', session: 1, ranges: 'x' },
      { type: 'values', session: 1, entries: [] },
      { type: 'nope', session: 1 },
      null,
    ];
    for (const m of junk) a.receive(T0, 2, m as unknown as MerkleMsg);
    expect([...contents(a).keys()]).toEqual(['ok']);
    expect(Object.fromEntries(a.dropped)).toEqual({
      'too-large': 1,
      future: 1,
      malformed: 6,
      'unknown-peer': 1,
    });
  });

  it('every message fits messageBytesMax even when one repair moves megabytes', () => {
    const { a, b, net } = pair({ messageBytesMax: 20_000, valueBytesMax: 4_096 });
    for (let i = 0; i < 500; i++) put(a, T0, `k${i}`, 'x'.repeat(4_000));
    net.collect();
    net.resetCounts();
    repair(net, b, 1, T0 + 1);
    expect(contents(b).size).toBe(500);
    expect(net.bytes).toBeGreaterThan(2_000_000);
    expect(net.messages).toBeGreaterThan(100);
  });
});

describe('tombstones', () => {
  const DAY = MERKLE_DEFAULTS.tombstoneTtlMs;

  it('collects only after the lifetime and once every live peer acknowledged it', () => {
    const agreed = new Map<NodeId, number>([
      [2, 10],
      [3, 4],
    ]);
    const t = { wall: T0, storedSeq: 5 };
    expect(collectTombstone(t, T0 + DAY - 1, DAY, [2], agreed)).toBe(false);
    expect(collectTombstone(t, T0 + DAY, DAY, [2], agreed)).toBe(true);
    expect(collectTombstone(t, T0 + DAY, DAY, [2, 3], agreed)).toBe(false);
    expect(collectTombstone(t, T0 + DAY, DAY, [2, 4], agreed)).toBe(false);
  });

  it('a deleted key never comes back: a replica that missed the delete is repaired first', () => {
    const a = new MerkleNode(config(1, [1, 2, 3]), Rng.fromSeed(1));
    const b = new MerkleNode(config(2, [1, 2, 3]), Rng.fromSeed(2));
    const c = new MerkleNode(config(3, [1, 2, 3]), Rng.fromSeed(3));
    const net = new MerkleLockstep(
      new Map([
        [1, a],
        [2, b],
        [3, c],
      ]),
    );
    for (const n of [a, b, c]) put(n, T0, 'gone', 'old');
    a.request(T0 + 1, 1, { type: 'delete', key: 'gone' });
    repair(net, a, 2, T0 + 2);
    // c missed the delete; a day later a has only b's acknowledgement: it keeps the tombstone.
    a.tick(T0 + DAY + 10);
    net.settle(T0 + DAY + 10);
    repair(net, a, 2, T0 + DAY + 10);
    a.tick(T0 + DAY + 2_000);
    expect(a.tree.get('gone')?.value).toBeUndefined();
    expect(a.tree.get('gone')).toBeDefined();
    // Repair with c (whatever direction) deletes there; then a may collect.
    repair(net, c, 1, T0 + DAY + 3_000);
    expect(c.tree.get('gone')?.value).toBeUndefined();
    repair(net, a, 3, T0 + DAY + 3_000);
    repair(net, a, 2, T0 + DAY + 3_000);
    a.tick(T0 + DAY + 5_000);
    net.collect();
    expect(a.tree.get('gone')).toBeUndefined();
    // b and c still hold the tombstone; repairing from them never brings 'old' back, only
    // the tombstone (which b and c need a's agreement on before they may collect it).
    repair(net, b, 1, T0 + DAY + 6_000);
    repair(net, c, 1, T0 + DAY + 6_000);
    expect(a.tree.get('gone')?.value).toBeUndefined();
    expect(contents(a).get('gone')).toBe('<deleted>');
  });
});

describe('MerkleNode admitted members (a real store: the gossip membership grows)', () => {
  it('drops repairs and authors it has not admitted, then takes them once admitted', () => {
    const a = new MerkleNode(config(1, [1]), Rng.fromSeed(1));
    const b = new MerkleNode(config(2, [2]), Rng.fromSeed(2));
    const net = new MerkleLockstep(
      new Map([
        [1, a],
        [2, b],
      ]),
    );
    put(b, T0, 'k', 'from-b');
    b.admit([1]);
    repair(net, b, 1, T0 + 1);
    // a has not admitted b: every message of b's is unknown-peer, nothing stored.
    expect(a.dropped.get('unknown-peer') ?? 0).toBeGreaterThan(0);
    expect(a.tree.get('k')).toBeUndefined();
    a.admit([2]);
    a.setLive([1, 2]);
    repair(net, b, 1, T0 + 2);
    expect(contents(a).get('k')).toBe('from-b');
    expect(a.tree.rootSummary()).toEqual(b.tree.rootSummary());
  });

  it('a restarted replica admits the authors of its durable entries', () => {
    const b = new MerkleNode(config(2, [1, 2]), Rng.fromSeed(2));
    put(b, T0, 'k', 'v');
    let d = initialMerkleDurable();
    for (;;) {
      const rd = b.ready();
      if (rd === undefined) break;
      for (const p of rd.persist) d = applyMerklePersist(d, p);
      b.advance();
    }
    // Node 3 restarts knowing only itself, holding b's entry: b may repair it at once.
    const c = new MerkleNode(config(3, [3]), Rng.fromSeed(3), d);
    expect(() => c.setLive([2, 3])).not.toThrow();
  });
});

describe('MerkleNode write rate (writeRatePerSecondMax)', () => {
  it('refuses writes above the rate with the time until the next token, stores nothing, and recovers', () => {
    const a = new MerkleNode(
      config(1, [1], { writeRatePerSecondMax: 10, writeBurstMax: 3 }),
      Rng.fromSeed(1),
    );
    for (let i = 0; i < 3; i++) put(a, T0, `k${i}`, 'v');
    put(a, T0, 'over', 'v');
    a.request(T0, 1, { type: 'delete', key: 'k0' });
    const replies = repliesOf(a);
    expect(replies.slice(0, 3).map((r) => r.type)).toEqual(['ok', 'ok', 'ok']);
    for (const r of replies.slice(3)) {
      expect(r).toMatchObject({
        type: 'refused',
        refusal: { type: 'rate-limited', retryAfterMs: 100, ratePerSecond: 10 },
      });
    }
    expect(a.tree.get('over')).toBeUndefined();
    expect(a.tree.get('k0')?.value).toBeDefined();
    // A refusal for size spends no token; 100 ms later one write fits again.
    a.request(T0 + 100, 1, { type: 'put', key: 'x'.repeat(300), value: utf8('v') });
    put(a, T0 + 100, 'later', 'v');
    put(a, T0 + 100, 'later2', 'v');
    const after = repliesOf(a).map((r) => (r.type === 'refused' ? r.refusal.type : r.type));
    expect(after).toEqual(['too-large', 'ok', 'rate-limited']);
  });

  it('without a rate, writes are never rate-limited', () => {
    const a = new MerkleNode(config(1, [1]), Rng.fromSeed(1));
    for (let i = 0; i < 500; i++) put(a, T0, `k${i}`, 'v');
    expect(repliesOf(a).every((r) => r.type === 'ok')).toBe(true);
  });
});
