import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KvOp } from './machine.ts';
import { checkKvOp, isReadOp } from './validate.ts';

const count = fc.nat({ max: Number.MAX_SAFE_INTEGER });
const op: fc.Arbitrary<KvOp> = fc.oneof(
  fc.record({ f: fc.constant('get' as const), key: fc.string() }),
  fc.record({ f: fc.constant('put' as const), key: fc.string(), value: fc.string() }),
  fc.record({ f: fc.constant('delete' as const), key: fc.string() }),
  fc.record({
    f: fc.constant('cas' as const),
    key: fc.string(),
    expected: fc.option(fc.string(), { nil: null }),
    value: fc.string(),
  }),
  fc.record({
    f: fc.constant('casVersion' as const),
    key: fc.string(),
    expectedVersion: count,
    value: fc.string(),
  }),
  fc.record({
    f: fc.constant('list' as const),
    prefix: fc.string(),
    limit: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  }),
);

/** A value that is none of the types any op field takes where it is put. */
const foreign = fc.oneof(
  fc.constant(undefined),
  fc.constant(-1),
  fc.constant(1.5),
  fc.constant(Number.NaN),
  fc.constant(true),
  fc.constant([]),
  fc.constant({}),
  fc.constant(2n),
);

describe('checkKvOp', () => {
  it('accepts every op of the KvOp union as it is', () => {
    fc.assert(
      fc.property(op, (o) => {
        const checked = checkKvOp(o);
        expect(checked).toEqual({ ok: true, value: o });
      }),
    );
  });

  it('refuses an op with a field of the wrong type, a missing field or an extra one', () => {
    fc.assert(
      fc.property(op, foreign, fc.nat(), fc.string(), (o, bad, pick, extra) => {
        const fields = Object.keys(o).filter((k) => k !== 'f');
        const name = fields[pick % fields.length] as string;
        const retyped = { ...o, [name]: bad };
        // `expected: null` is legal for cas; every other foreign value is wrong everywhere.
        expect(checkKvOp(retyped).ok).toBe(false);
        const { [name]: _, ...missing } = o as unknown as Record<string, unknown>;
        expect(checkKvOp(missing).ok).toBe(false);
        const name2 = extra in o ? `${extra}_` : extra;
        expect(checkKvOp({ ...o, [name2]: 'x' }).ok).toBe(false);
      }),
    );
  });

  it('refuses what is not an op at all', () => {
    for (const v of [null, undefined, 'put', 3, [], [{ f: 'get', key: 'k' }], { key: 'k' }]) {
      expect(checkKvOp(v).ok).toBe(false);
    }
    expect(checkKvOp({ f: 'toString', key: 'k' }).ok).toBe(false);
    expect(checkKvOp({ f: 'list', prefix: '', limit: 0 }).ok).toBe(false);
    expect(checkKvOp({ f: 'casVersion', key: 'k', expectedVersion: -1, value: '' }).ok).toBe(false);
  });

  it('tells reads from writes', () => {
    fc.assert(
      fc.property(op, (o) => {
        expect(isReadOp(o)).toBe(o.f === 'get' || o.f === 'list');
      }),
    );
  });
});

describe('checkKvOp on etcd operations', () => {
  const txn = {
    f: 'txn',
    compare: [{ key: 'a', target: 'mod', result: 'less', modRevision: 3, rangeEnd: '\0' }],
    success: [
      { f: 'put', key: '\xff\x00', value: '\x80', lease: 1, prevKv: true },
      { f: 'range', key: 'a', rangeEnd: 'b', revision: 2, sortOrder: 'descend', sortTarget: 'mod' },
      { f: 'txn', compare: [], success: [{ f: 'deleteRange', key: 'z' }], failure: [] },
    ],
    failure: [],
  };

  it('accepts nested txns, ranges and lease ops with byte-string keys', () => {
    expect(checkKvOp(txn)).toEqual({ ok: true, value: txn });
    expect(isReadOp({ f: 'range', key: 'a', revision: 5 })).toBe(true);
    expect(isReadOp(txn as never)).toBe(false);
    for (const op of [
      { f: 'leaseGrant', id: 0, ttl: 10 },
      { f: 'leaseRevoke', id: 3 },
      { f: 'leaseCheckpoint', checkpoints: [{ id: 3, remainingTtl: 4 }] },
      { f: 'leaseTimeToLive', id: 3, keys: true },
      { f: 'leaseLeases' },
      { f: 'compact', revision: 9, physical: true },
    ]) {
      expect(checkKvOp(op)).toMatchObject({ ok: true });
    }
  });

  it('refuses code units above 0xFF, unknown fields, bad enums and deep nesting', () => {
    expect(checkKvOp({ f: 'put', key: 'é€', value: '' })).toMatchObject({ ok: false });
    expect(checkKvOp({ f: 'range', key: 'a', limit: -1 })).toMatchObject({ ok: false });
    expect(checkKvOp({ f: 'range', key: 'a', sortOrder: 'up' })).toMatchObject({ ok: false });
    expect(checkKvOp({ f: 'put', key: 'a', value: '', extra: 1 })).toMatchObject({ ok: false });
    const badCompare = { ...txn, compare: [{ key: 'a', target: 'value', result: 'equal' }] };
    expect(checkKvOp(badCompare)).toMatchObject({ ok: false });
    let deep: object = { f: 'txn', compare: [], success: [], failure: [] };
    for (let i = 0; i < 10; i++) deep = { f: 'txn', compare: [], success: [deep], failure: [] };
    expect(checkKvOp(deep)).toMatchObject({ ok: false, why: expect.stringContaining('nest') });
  });
});
