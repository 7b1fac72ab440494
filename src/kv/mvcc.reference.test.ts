import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { imageOf, type KvOp, KvStateMachine } from './machine.ts';
import { MvccStore } from './mvcc.ts';
import type {
  Compare,
  DeleteRangeRequest,
  KeyValue,
  KvEvent,
  PutRequest,
  RangeRequest,
  RequestOp,
  ResponseOp,
  TxnRequest,
} from './ops.ts';
import { hasDuplicateKey } from './range.ts';

/**
 * A naive reference for the MVCC store: a full copy of the state at every revision, each op
 * applied by scanning everything. Its only cleverness is none; the store must agree with it
 * on every range, at every revision, after random writes, txns, leases, compactions and
 * snapshot/restore.
 */
class Reference {
  states: Map<string, KeyValue>[] = [new Map()];
  events: KvEvent[][] = [[]];
  compacted = 0;
  leases = new Map<number, number>();
  leaseHigh = 0;

  get rev(): number {
    return this.states.length - 1;
  }

  at(rev: number): Map<string, KeyValue> {
    return this.states[rev]!;
  }

  apply(op: KvOp): void {
    switch (op.f) {
      case 'put':
      case 'deleteRange':
        this.txn({ f: 'txn', compare: [], success: [op], failure: [] });
        return;
      case 'txn':
        this.txn(op);
        return;
      case 'compact':
        if (op.revision > this.compacted && op.revision <= this.rev) this.compacted = op.revision;
        return;
      case 'leaseGrant': {
        if (this.leases.has(op.id)) return;
        let id = op.id;
        if (id === 0) {
          id = this.leaseHigh + 1;
          while (this.leases.has(id)) id++;
        }
        this.leases.set(id, op.ttl);
        this.leaseHigh = Math.max(this.leaseHigh, id);
        return;
      }
      case 'leaseRevoke': {
        if (!this.leases.has(op.id)) return;
        this.leases.delete(op.id);
        const next = new Map(this.at(this.rev));
        const events: KvEvent[] = [];
        for (const key of [...next.keys()].sort()) {
          const kv = next.get(key)!;
          if (kv.lease !== op.id) continue;
          next.delete(key);
          events.push({ type: 'delete', kv: tomb(key, this.rev + 1), prevKv: kv });
        }
        if (events.length > 0) this.commit(next, events);
        return;
      }
      default:
        throw new Error(`reference has no ${op.f}`);
    }
  }

  /** The state after a txn, or unchanged when it is refused. */
  txn(t: TxnRequest): void {
    if (hasDuplicateKey(t.success) || hasDuplicateKey(t.failure)) return;
    const before = this.at(this.rev);
    const plan = this.plan(before, t);
    if (plan === undefined) return;
    const next = new Map(before);
    const events: KvEvent[] = [];
    for (const op of plan) {
      const rev = this.rev + 1;
      if (op.f === 'put') {
        const prev = next.get(op.key) ?? null;
        const kv: KeyValue = {
          key: op.key,
          value: op.ignoreValue === true ? prev!.value : op.value,
          createRevision: prev?.createRevision ?? rev,
          modRevision: rev,
          version: (prev?.version ?? 0) + 1,
          lease: op.ignoreLease === true ? prev!.lease : (op.lease ?? 0),
        };
        next.set(op.key, kv);
        events.push({ type: 'put', kv, prevKv: prev });
      } else {
        for (const key of [...next.keys()].sort()) {
          if (!within(op, key)) continue;
          events.push({ type: 'delete', kv: tomb(key, rev), prevKv: next.get(key)! });
          next.delete(key);
        }
      }
    }
    if (events.length > 0) this.commit(next, events);
  }

  /** The writes a txn makes, flattened, or undefined if any of its chosen ops is refused. */
  plan(
    state: Map<string, KeyValue>,
    t: TxnRequest,
  ): (PutRequest | DeleteRangeRequest)[] | undefined {
    const ok = t.compare.every((c) => compareHolds(state, c));
    const out: (PutRequest | DeleteRangeRequest)[] = [];
    for (const op of ok ? t.success : t.failure) {
      if (op.f === 'txn') {
        const inner = this.plan(state, op);
        if (inner === undefined) return undefined;
        out.push(...inner);
      } else if (op.f === 'put') {
        const lease = op.lease ?? 0;
        if (op.ignoreValue === true && op.value !== '') return undefined;
        if (op.ignoreLease === true && lease !== 0) return undefined;
        if ((op.ignoreValue === true || op.ignoreLease === true) && !state.has(op.key)) {
          return undefined;
        }
        if (lease !== 0 && !this.leases.has(lease)) return undefined;
        out.push(op);
      } else if (op.f === 'deleteRange') {
        out.push(op);
      } else if (
        (op.revision ?? 0) > this.rev ||
        ((op.revision ?? 0) > 0 && op.revision! < this.compacted)
      ) {
        return undefined;
      }
    }
    return out;
  }

  commit(next: Map<string, KeyValue>, events: KvEvent[]): void {
    this.states.push(next);
    this.events.push(events);
  }

  range(req: RangeRequest): { kvs: KeyValue[]; more: boolean; count: number } {
    const rev = (req.revision ?? 0) === 0 ? this.rev : req.revision!;
    const all = [...this.at(rev).values()]
      .filter((kv) => within(req, kv.key))
      .sort((a, b) => (a.key < b.key ? -1 : 1));
    let kvs = all.filter(
      (kv) =>
        (!req.minModRevision || kv.modRevision >= req.minModRevision) &&
        (!req.maxModRevision || kv.modRevision <= req.maxModRevision) &&
        (!req.minCreateRevision || kv.createRevision >= req.minCreateRevision) &&
        (!req.maxCreateRevision || kv.createRevision <= req.maxCreateRevision),
    );
    const target = req.sortTarget ?? 'key';
    const order = req.sortOrder ?? 'none';
    if (order !== 'none' || target !== 'key') {
      const get = (kv: KeyValue) =>
        target === 'key'
          ? kv.key
          : target === 'value'
            ? kv.value
            : target === 'version'
              ? kv.version
              : target === 'create'
                ? kv.createRevision
                : kv.modRevision;
      const sign = order === 'descend' ? -1 : 1;
      // Insertion sort: stable, and nothing like the store's code.
      const sorted: KeyValue[] = [];
      for (const kv of kvs) {
        let i = sorted.length;
        while (i > 0 && sign * cmp(get(sorted[i - 1]!), get(kv)) > 0) i--;
        sorted.splice(i, 0, kv);
      }
      kvs = sorted;
    }
    const limit = req.limit ?? 0;
    const more = limit > 0 && kvs.length > limit;
    if (more) kvs = kvs.slice(0, limit);
    if (req.keysOnly === true) kvs = kvs.map((kv) => ({ ...kv, value: '' }));
    if (req.countOnly === true) return { kvs: [], more: false, count: all.length };
    return { kvs, more, count: all.length };
  }
}

function cmp(a: string | number, b: string | number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function tomb(key: string, rev: number): KeyValue {
  return { key, value: '', createRevision: 0, modRevision: rev, version: 0, lease: 0 };
}

function within(r: { key: string; rangeEnd?: string }, key: string): boolean {
  if (r.rangeEnd === undefined || r.rangeEnd === '') return key === r.key;
  return key >= r.key && (r.rangeEnd === '\0' || key < r.rangeEnd);
}

function compareHolds(state: Map<string, KeyValue>, c: Compare): boolean {
  const kvs = [...state.values()].filter((kv) => within(c, kv.key));
  if (kvs.length === 0 && c.target === 'value') return false;
  const zero: KeyValue = tomb('', 0);
  return (kvs.length === 0 ? [zero] : kvs).every((kv) => {
    const [x, y] =
      c.target === 'value'
        ? [kv.value, c.value]
        : c.target === 'version'
          ? [kv.version, c.version]
          : c.target === 'create'
            ? [kv.createRevision, c.createRevision]
            : c.target === 'mod'
              ? [kv.modRevision, c.modRevision]
              : [kv.lease, c.lease];
    const o = cmp(x, y);
    return c.result === 'equal'
      ? o === 0
      : c.result === 'notEqual'
        ? o !== 0
        : c.result === 'greater'
          ? o > 0
          : o < 0;
  });
}

// Byte-string keys around the edges of byte order: "\0", "\xff", a prefix and its extensions.
const keys = ['\x00', 'a', 'a\x00', 'a\xff', 'ab', 'b', '\xff', '\xff\xff'];
const key = fc.constantFrom(...keys);
const rangeEnd = fc.option(fc.constantFrom('', '\x00', 'a\xff', 'b', '\xff', 'c'), {
  nil: undefined,
});
const value = fc.oneof(fc.constantFrom('', 'x', '\x00\xff'), fc.string({ maxLength: 3 }));
const lease = fc.constantFrom(0, 0, 1, 2, 7);

const put: fc.Arbitrary<PutRequest> = fc.record(
  {
    f: fc.constant('put' as const),
    key,
    value,
    lease,
    prevKv: fc.boolean(),
    ignoreValue: fc.boolean(),
    ignoreLease: fc.boolean(),
  },
  { requiredKeys: ['f', 'key', 'value'] },
) as fc.Arbitrary<PutRequest>;
const del: fc.Arbitrary<DeleteRangeRequest> = fc.record(
  { f: fc.constant('deleteRange' as const), key, rangeEnd, prevKv: fc.boolean() },
  { requiredKeys: ['f', 'key'] },
) as fc.Arbitrary<never>;
const rangeReq: fc.Arbitrary<RangeRequest> = fc.record(
  {
    f: fc.constant('range' as const),
    key,
    rangeEnd,
    limit: fc.nat(4),
    sortOrder: fc.constantFrom('none' as const, 'ascend' as const, 'descend' as const),
    sortTarget: fc.constantFrom(
      'key' as const,
      'version' as const,
      'create' as const,
      'mod' as const,
      'value' as const,
    ),
    keysOnly: fc.boolean(),
    countOnly: fc.boolean(),
    minModRevision: fc.nat(12),
    maxModRevision: fc.nat(12),
    minCreateRevision: fc.nat(12),
    maxCreateRevision: fc.nat(12),
  },
  { requiredKeys: ['f', 'key'] },
) as fc.Arbitrary<never>;
const compare: fc.Arbitrary<Compare> = fc
  .oneof(
    fc.record({
      key,
      result: fc.constantFrom(
        'equal' as const,
        'notEqual' as const,
        'greater' as const,
        'less' as const,
      ),
      target: fc.constant('version' as const),
      version: fc.nat(3),
    }),
    fc.record({
      key,
      result: fc.constantFrom('equal' as const, 'less' as const),
      target: fc.constant('value' as const),
      value,
    }),
    fc.record({
      key,
      rangeEnd: fc.constantFrom('\x00', 'b'),
      result: fc.constantFrom('greater' as const, 'less' as const),
      target: fc.constant('mod' as const),
      modRevision: fc.nat(10),
    }),
    fc.record({
      key,
      result: fc.constantFrom('equal' as const, 'notEqual' as const),
      target: fc.constant('create' as const),
      createRevision: fc.nat(10),
    }),
    fc.record({
      key,
      result: fc.constantFrom('equal' as const, 'notEqual' as const),
      target: fc.constant('lease' as const),
      lease,
    }),
  )
  .map((c) => {
    const { rangeEnd: end, ...rest } = c as Compare & { rangeEnd?: string };
    return (end === undefined ? rest : { ...rest, rangeEnd: end }) as Compare;
  });
const { txn } = fc.letrec<{ txn: TxnRequest; op: RequestOp }>((tie) => ({
  txn: fc.record({
    f: fc.constant('txn' as const),
    compare: fc.array(compare, { maxLength: 2 }),
    success: fc.array(tie('op'), { maxLength: 3 }),
    failure: fc.array(tie('op'), { maxLength: 3 }),
  }),
  op: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    put as fc.Arbitrary<PutRequest>,
    del as fc.Arbitrary<DeleteRangeRequest>,
    rangeReq as fc.Arbitrary<RangeRequest>,
    tie('txn'),
  ),
}));

type Step = { kind: 'op'; op: KvOp } | { kind: 'restore' } | { kind: 'compactBack'; back: number };
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: put.map((op) => ({ kind: 'op' as const, op })) },
  { weight: 2, arbitrary: del.map((op) => ({ kind: 'op' as const, op })) },
  { weight: 3, arbitrary: txn.map((op) => ({ kind: 'op' as const, op })) },
  {
    weight: 1,
    arbitrary: fc
      .record({
        f: fc.constant('leaseGrant' as const),
        id: fc.constantFrom(0, 1, 2, 7),
        ttl: fc.integer({ min: 1, max: 9 }),
      })
      .map((op) => ({ kind: 'op' as const, op })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ f: fc.constant('leaseRevoke' as const), id: fc.constantFrom(1, 2, 3, 7) })
      .map((op) => ({ kind: 'op' as const, op })),
  },
  { weight: 1, arbitrary: fc.nat(4).map((back) => ({ kind: 'compactBack' as const, back })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restore' as const }) },
);

const probes: RangeRequest[] = [
  { f: 'range', key: '\x00', rangeEnd: '\x00' },
  { f: 'range', key: 'a', rangeEnd: 'b' },
  { f: 'range', key: 'a' },
  { f: 'range', key: '\xff', rangeEnd: '\x00', sortOrder: 'descend', sortTarget: 'mod' },
  { f: 'range', key: '\x00', rangeEnd: '\x00', limit: 2, sortTarget: 'value' },
];

function strip(r: ResponseOp): unknown {
  if (r.f !== 'range') return r;
  return { kvs: r.kvs, more: r.more, count: r.count };
}

describe('MvccStore against a state-per-revision reference', () => {
  it('agrees on every range at every retained revision, through compactions and restores', () => {
    fc.assert(
      fc.property(
        fc.array(step, { maxLength: 40 }),
        fc.array(rangeReq, { maxLength: 4 }),
        (steps, extra) => {
          const limits = { sessionsMax: 4, changesMax: 1000, listMax: 10 };
          let kv = new KvStateMachine(limits);
          const ref = new Reference();
          let index = 0;
          for (const s of steps) {
            if (s.kind === 'restore') {
              kv = KvStateMachine.restore(
                JSON.parse(JSON.stringify(imageOf(kv.snapshot()))),
                limits,
              );
              continue;
            }
            const op: KvOp =
              s.kind === 'op' ? s.op : { f: 'compact', revision: Math.max(1, ref.rev - s.back) };
            const result = kv.apply(++index, { session: 0, seq: 0, op });
            ref.apply(op);
            expect(kv.currentRevision).toBe(ref.rev);
            expect(kv.compactRevision).toBe(ref.compacted);
            if (op.f === 'txn' && result.f === 'txn') {
              // Ranges inside a txn see the txn's own writes: check them against the reference too.
              for (const [i, r] of result.responses.entries()) {
                const branch = result.succeeded ? op.success : op.failure;
                const asked = branch[i]!;
                // The reference keeps states between txns only: check ranges after the last write.
                const lastWrite = branch.findLastIndex((o) => o.f !== 'range');
                if (
                  asked.f === 'range' &&
                  i > lastWrite &&
                  (asked.revision ?? 0) === 0 &&
                  r.f === 'range'
                ) {
                  expect(strip(r)).toEqual(ref.range(asked));
                }
              }
            }
          }
          for (let rev = Math.max(1, ref.compacted); rev <= ref.rev; rev++) {
            for (const p of [...probes, ...extra]) {
              const got = kv.read({ ...p, revision: rev });
              expect(got.f).toBe('range');
              expect(strip(got as ResponseOp)).toEqual(ref.range({ ...p, revision: rev }));
            }
          }
          // Below the compaction: etcd's error, not an answer.
          if (ref.compacted > 1) {
            expect(kv.read({ f: 'range', key: 'a', revision: ref.compacted - 1 })).toMatchObject({
              f: 'error',
              code: 'compacted',
            });
          }
          expect(kv.read({ f: 'range', key: 'a', revision: ref.rev + 1 })).toMatchObject({
            f: 'error',
            code: 'futureRevision',
          });
          // The change feed: every event from the compaction on, in revision order.
          const from = Math.max(1, ref.compacted);
          const feed = kv.eventsSince(from);
          expect(feed).toEqual({ ok: true, events: ref.events.slice(from).flat() });
          if (ref.compacted > 1) {
            expect(kv.eventsSince(ref.compacted - 1)).toEqual({
              ok: false,
              compactRevision: ref.compacted,
            });
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('MvccStore.base', () => {
  // A delete at the compaction revision itself leaves nothing in the index, but it opens the
  // log, so base must still hold the key's state before it (a restore rebuilds the delete's
  // previous state from it, and every replica must encode the same snapshot).
  it('holds a key deleted at the compaction revision, also when written again after it', () => {
    const put = (s: MvccStore, key: string, value: string) => {
      s.begin();
      s.put({ f: 'put', key, value });
      s.end();
    };
    const del = (s: MvccStore, key: string) => {
      s.begin();
      s.deleteRange({ f: 'deleteRange', key });
      s.end();
    };
    const a = new MvccStore();
    put(a, 'k', 'v1');
    put(a, 'j', 'w1');
    del(a, 'k');
    a.compact(3);
    const before = {
      key: 'k',
      value: 'v1',
      createRevision: 1,
      modRevision: 1,
      version: 1,
      lease: 0,
    };
    const j = { key: 'j', value: 'w1', createRevision: 2, modRevision: 2, version: 1, lease: 0 };
    expect(a.base()).toEqual([j, before]);
    put(a, 'k', 'v2');
    expect(a.base()).toEqual([j, before]);
  });
});
