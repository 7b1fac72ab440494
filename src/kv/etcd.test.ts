import { describe, expect, it } from 'vitest';
import { prefixEnd } from './bytes.ts';
import { type KvOp, type KvResult, KvStateMachine } from './machine.ts';
import { kvErrorMessage } from './ops.ts';

function machine() {
  const kv = new KvStateMachine();
  let index = 0;
  const apply = (op: KvOp): KvResult => kv.apply(++index, { session: 0, seq: 0, op });
  return { kv, apply };
}

describe('etcd semantics of the MVCC machine', () => {
  it('keeps create/mod revision and version per key; a delete resets the version', () => {
    const { kv, apply } = machine();
    apply({ f: 'put', key: 'a', value: '1' });
    apply({ f: 'put', key: 'b', value: '1' });
    apply({ f: 'put', key: 'a', value: '2' });
    expect(kv.read({ f: 'range', key: 'a' })).toMatchObject({
      kvs: [{ key: 'a', value: '2', createRevision: 1, modRevision: 3, version: 2, lease: 0 }],
      revision: 3,
    });
    expect(apply({ f: 'deleteRange', key: 'a', prevKv: true })).toMatchObject({
      deleted: 1,
      prevKvs: [{ value: '2' }],
      revision: 4,
    });
    apply({ f: 'put', key: 'a', value: '3' });
    expect(kv.read({ f: 'range', key: 'a' })).toMatchObject({
      kvs: [{ createRevision: 5, modRevision: 5, version: 1 }],
    });
    // The past is still there, until compacted.
    expect(kv.read({ f: 'range', key: 'a', revision: 3 })).toMatchObject({
      kvs: [{ value: '2', version: 2 }],
    });
    expect(kv.read({ f: 'range', key: 'a', revision: 4 })).toMatchObject({ kvs: [], count: 0 });
    // A delete of nothing takes no revision.
    expect(apply({ f: 'deleteRange', key: 'zz' })).toMatchObject({ deleted: 0, revision: 5 });
  });

  it('answers compacted and future revisions with etcd errors', () => {
    const { kv, apply } = machine();
    for (let i = 0; i < 5; i++) apply({ f: 'put', key: 'k', value: `${i}` });
    expect(apply({ f: 'compact', revision: 3 })).toEqual({ f: 'compact', revision: 5 });
    const compacted = kv.read({ f: 'range', key: 'k', revision: 2 });
    expect(compacted).toEqual({ f: 'error', code: 'compacted', compactRevision: 3 });
    expect(kvErrorMessage(compacted as never)).toBe('mvcc: required revision has been compacted');
    expect(kv.read({ f: 'range', key: 'k', revision: 3 })).toMatchObject({ kvs: [{ value: '2' }] });
    const future = kv.read({ f: 'range', key: 'k', revision: 6 });
    expect(future).toMatchObject({ code: 'futureRevision' });
    expect(kvErrorMessage(future as never)).toBe('mvcc: required revision is a future revision');
    expect(apply({ f: 'compact', revision: 3 })).toMatchObject({ code: 'compacted' });
    expect(apply({ f: 'compact', revision: 9 })).toMatchObject({ code: 'futureRevision' });
    expect(kv.eventsSince(2)).toEqual({ ok: false, compactRevision: 3 });
    const events = kv.eventsSince(3);
    expect(events.ok && events.events.map((e) => e.kv.value)).toEqual(['2', '3', '4']);
  });

  it('ranges: prefix, from-key, limit and more, count, sort, keys-only, count-only, filters', () => {
    const { kv, apply } = machine();
    for (const k of ['a', 'ab', 'abc', 'b', '\xff']) apply({ f: 'put', key: k, value: k });
    apply({ f: 'put', key: 'ab', value: 'z' });
    const range = (extra: object) => kv.read({ f: 'range', key: 'a', ...extra } as never);
    const keys = (r: KvResult) => (r.f === 'range' ? r.kvs.map((kv) => kv.key) : r);
    expect(keys(range({ rangeEnd: prefixEnd('a') }))).toEqual(['a', 'ab', 'abc']);
    expect(keys(range({ rangeEnd: '\0' }))).toEqual(['a', 'ab', 'abc', 'b', '\xff']);
    expect(keys(kv.read({ f: 'range', key: '\0', rangeEnd: '\0' }))).toHaveLength(5);
    expect(range({ rangeEnd: '\0', limit: 2 })).toMatchObject({ more: true, count: 5 });
    expect(keys(range({ rangeEnd: '\0', sortOrder: 'descend' }))).toEqual([
      '\xff',
      'b',
      'abc',
      'ab',
      'a',
    ]);
    expect(
      keys(range({ rangeEnd: '\0', sortTarget: 'mod', sortOrder: 'descend', limit: 1 })),
    ).toEqual(['ab']);
    expect(keys(range({ rangeEnd: '\0', sortTarget: 'value' }))).toEqual([
      'a',
      'abc',
      'b',
      'ab',
      '\xff',
    ]);
    expect(range({ rangeEnd: '\0', keysOnly: true })).toMatchObject({
      kvs: [{ key: 'a', value: '' }, {}, {}, {}, {}],
    });
    expect(range({ rangeEnd: '\0', countOnly: true })).toMatchObject({ kvs: [], count: 5 });
    expect(keys(range({ rangeEnd: '\0', minModRevision: 4 }))).toEqual(['ab', 'b', '\xff']);
    expect(keys(range({ rangeEnd: '\0', maxCreateRevision: 2 }))).toEqual(['a', 'ab']);
    // The count is the range's, before the filters (as etcd).
    expect(range({ rangeEnd: '\0', minModRevision: 6 })).toMatchObject({ count: 5 });
  });

  it('refuses puts as etcd does: ignore flags on a missing key, a value or lease given with them, an unknown lease', () => {
    const { apply } = machine();
    expect(apply({ f: 'put', key: 'k', value: '', ignoreValue: true })).toMatchObject({
      code: 'keyNotFound',
    });
    apply({ f: 'put', key: 'k', value: 'v' });
    expect(apply({ f: 'put', key: 'k', value: 'x', ignoreValue: true })).toMatchObject({
      code: 'valueProvided',
    });
    expect(apply({ f: 'put', key: 'k', value: '', lease: 5, ignoreLease: true })).toMatchObject({
      code: 'leaseProvided',
    });
    expect(apply({ f: 'put', key: 'k', value: 'x', lease: 5 })).toMatchObject({
      code: 'leaseNotFound',
      lease: 5,
    });
    expect(apply({ f: 'put', key: '', value: 'x' })).toMatchObject({ code: 'emptyKey' });
    apply({ f: 'leaseGrant', id: 5, ttl: 10 });
    apply({ f: 'put', key: 'k', value: 'x', lease: 5 });
    expect(apply({ f: 'put', key: 'k', value: '', ignoreValue: true, prevKv: true })).toMatchObject(
      {
        f: 'put',
        prevKv: { value: 'x', lease: 5 },
      },
    );
    // ignoreValue kept the value; no ignoreLease, so the lease went back to none.
    expect(
      apply({ f: 'txn', compare: [], success: [{ f: 'range', key: 'k' }], failure: [] }),
    ).toMatchObject({
      responses: [{ kvs: [{ value: 'x', lease: 0 }] }],
    });
  });

  it('runs a txn in one revision; its ranges see its own earlier writes; nested compares see the state before', () => {
    const { kv, apply } = machine();
    apply({ f: 'put', key: 'a', value: '1' });
    const result = apply({
      f: 'txn',
      compare: [{ key: 'a', target: 'value', result: 'equal', value: '1' }],
      success: [
        { f: 'put', key: 'b', value: '2' },
        { f: 'range', key: 'b' },
        {
          f: 'txn',
          // 'b' was absent before the txn: nested compares do not see the put above.
          compare: [{ key: 'b', target: 'version', result: 'equal', version: 0 }],
          success: [{ f: 'put', key: 'c', value: '3' }],
          failure: [],
        },
      ],
      failure: [],
    });
    expect(result).toMatchObject({
      f: 'txn',
      succeeded: true,
      revision: 2,
      responses: [
        { f: 'put', revision: 2 },
        { f: 'range', kvs: [{ key: 'b', modRevision: 2 }] },
        { f: 'txn', succeeded: true },
      ],
    });
    const events = kv.eventsSince(2);
    expect(events.ok && events.events.map((e) => [e.kv.key, e.kv.modRevision])).toEqual([
      ['b', 2],
      ['c', 2],
    ]);
    // A txn that only reads takes no revision.
    apply({ f: 'txn', compare: [], success: [{ f: 'range', key: 'a' }], failure: [] });
    expect(kv.currentRevision).toBe(2);
  });

  it('refuses a txn that writes a key twice, except across the two branches of a nested txn', () => {
    const { apply } = machine();
    const put = (key: string) => ({ f: 'put' as const, key, value: 'v' });
    expect(
      apply({ f: 'txn', compare: [], success: [put('a'), put('a')], failure: [] }),
    ).toMatchObject({ code: 'duplicateKey' });
    expect(
      apply({
        f: 'txn',
        compare: [],
        success: [{ f: 'deleteRange', key: 'a', rangeEnd: 'b' }, put('ab')],
        failure: [],
      }),
    ).toMatchObject({ code: 'duplicateKey' });
    expect(
      apply({
        f: 'txn',
        compare: [],
        success: [{ f: 'txn', compare: [], success: [put('a')], failure: [put('a')] }],
        failure: [],
      }),
    ).toMatchObject({ f: 'txn', succeeded: true });
    expect(
      apply({
        f: 'txn',
        compare: [],
        success: [put('a'), { f: 'txn', compare: [], success: [], failure: [put('a')] }],
        failure: [],
      }),
    ).toMatchObject({ code: 'duplicateKey' });
    // An error anywhere in the chosen branch applies nothing.
    const before = apply({ f: 'txn', compare: [], success: [], failure: [] });
    expect(
      apply({
        f: 'txn',
        compare: [],
        success: [put('x'), { ...put('y'), lease: 99 }],
        failure: [],
      }),
    ).toMatchObject({ code: 'leaseNotFound' });
    expect(apply({ f: 'txn', compare: [], success: [], failure: [] })).toEqual(before);
  });

  it('compares versions, revisions, leases and values over ranges, with etcd zero values for missing keys', () => {
    const { apply } = machine();
    apply({ f: 'put', key: 'a1', value: 'x' });
    apply({ f: 'put', key: 'a2', value: 'y' });
    const holds = (compare: object) =>
      (
        apply({ f: 'txn', compare: [compare as never], success: [], failure: [] }) as {
          succeeded: boolean;
        }
      ).succeeded;
    expect(holds({ key: 'a', rangeEnd: 'b', target: 'version', result: 'equal', version: 1 })).toBe(
      true,
    );
    expect(
      holds({ key: 'a', rangeEnd: 'b', target: 'mod', result: 'greater', modRevision: 1 }),
    ).toBe(false);
    expect(holds({ key: 'zz', target: 'create', result: 'equal', createRevision: 0 })).toBe(true);
    expect(holds({ key: 'zz', target: 'lease', result: 'equal', lease: 0 })).toBe(true);
    // A value compare on no key is false, whatever the result asked.
    expect(holds({ key: 'zz', target: 'value', result: 'notEqual', value: 'q' })).toBe(false);
    expect(holds({ key: 'a1', target: 'value', result: 'less', value: 'y' })).toBe(true);
  });

  it('grants, attaches, checkpoints and revokes leases; a revoke deletes the keys in one revision', () => {
    const { kv, apply } = machine();
    expect(apply({ f: 'leaseGrant', id: 0, ttl: 5 })).toMatchObject({ id: 1, ttl: 5 });
    expect(apply({ f: 'leaseGrant', id: 7, ttl: 5 })).toMatchObject({ id: 7 });
    expect(apply({ f: 'leaseGrant', id: 0, ttl: 5 })).toMatchObject({ id: 8 });
    expect(apply({ f: 'leaseGrant', id: 7, ttl: 5 })).toMatchObject({ code: 'leaseExists' });
    expect(apply({ f: 'leaseGrant', id: 9, ttl: 0 })).toMatchObject({ code: 'leaseTtlInvalid' });
    apply({ f: 'put', key: 'b', value: '1', lease: 7 });
    apply({ f: 'put', key: 'a', value: '1', lease: 7 });
    apply({ f: 'put', key: 'c', value: '1', lease: 1 });
    apply({ f: 'leaseCheckpoint', checkpoints: [{ id: 7, remainingTtl: 3 }] });
    expect(kv.read({ f: 'leaseTimeToLive', id: 7, keys: true })).toMatchObject({
      grantedTtl: 5,
      remainingTtl: 3,
      keys: ['a', 'b'],
    });
    expect(kv.read({ f: 'leaseLeases' })).toMatchObject({ leases: [1, 7, 8] });
    expect(apply({ f: 'leaseRevoke', id: 7 })).toEqual({ f: 'leaseRevoke', revision: 4 });
    const events = kv.eventsSince(4);
    expect(events.ok && events.events.map((e) => [e.type, e.kv.key])).toEqual([
      ['delete', 'a'],
      ['delete', 'b'],
    ]);
    expect(apply({ f: 'leaseRevoke', id: 7 })).toMatchObject({ code: 'leaseNotFound' });
    expect(kv.read({ f: 'leaseTimeToLive', id: 7 })).toMatchObject({ code: 'leaseNotFound' });
  });

  it('keeps the old single-key operations on the store: cas is a txn, list a prefix range', () => {
    const { apply } = machine();
    expect(apply({ f: 'cas', key: 'k', expected: null, value: 'a' })).toMatchObject({
      ok: true,
      revision: 1,
    });
    expect(apply({ f: 'cas', key: 'k', expected: null, value: 'b' })).toMatchObject({
      ok: false,
      entry: { value: 'a' },
    });
    expect(apply({ f: 'casVersion', key: 'k', expectedVersion: 1, value: 'c' })).toMatchObject({
      ok: true,
      entry: { value: 'c', version: 2, modRevision: 2 },
    });
    apply({ f: 'put', key: 'k2', value: 'x' });
    expect(apply({ f: 'list', prefix: 'k', limit: 1 })).toMatchObject({
      entries: [{ key: 'k' }],
      more: true,
    });
  });
});
