import { describe, expect, it } from 'vitest';
import { checkRevisions, type RevisionEvent } from './model-revision.ts';

let op = 0;
const write = (
  key: string,
  value: string | null,
  revision: number | undefined,
  invokeTime: number,
  returnTime: number,
): RevisionEvent => ({ kind: 'write', op: ++op, key, value, revision, invokeTime, returnTime });
const readAt = (
  key: string,
  at: number,
  value: string | null,
  modRevision: number,
): RevisionEvent => ({
  kind: 'readAt',
  op: ++op,
  key,
  at,
  value,
  modRevision,
});

describe('the revision model', () => {
  const history = [
    write('a', 'v1', 1, 0, 1),
    write('b', 'v2', 2, 2, 3),
    write('a', 'v3', 3, 4, 5),
    write('a', null, 4, 6, 7),
  ];

  it('accepts reads that see their revision', () => {
    expect(
      checkRevisions([
        ...history,
        readAt('a', 1, 'v1', 1),
        readAt('a', 2, 'v1', 1),
        readAt('a', 3, 'v3', 3),
        readAt('a', 4, null, 0),
        readAt('b', 4, 'v2', 2),
        readAt('b', 1, null, 0),
      ]),
    ).toEqual({ ok: true });
  });

  it('refuses a past read that returns a later value (the newest instead of the asked)', () => {
    const v = checkRevisions([...history, readAt('a', 2, 'v3', 3)]);
    expect(v).toMatchObject({ ok: false });
    expect(!v.ok && v.why).toContain('a mod revision outside 1..2');
  });

  it('refuses a past read that misses a write at or below its revision', () => {
    expect(checkRevisions([...history, readAt('a', 3, 'v1', 1)])).toMatchObject({ ok: false });
    expect(checkRevisions([...history, readAt('a', 3, null, 0)])).toMatchObject({ ok: false });
    expect(checkRevisions([...history, readAt('a', 4, 'v3', 3)])).toMatchObject({ ok: false });
  });

  it('refuses a mod revision other than the writer’s, and a value nobody wrote', () => {
    expect(checkRevisions([...history, readAt('b', 3, 'v2', 3)])).toMatchObject({ ok: false });
    expect(checkRevisions([...history, readAt('b', 3, 'v9', 2)])).toMatchObject({ ok: false });
  });

  it('lets a write of unknown outcome explain a read, and an unknown delete an absence', () => {
    const unknown = [...history, write('c', 'u1', undefined, 0, Number.POSITIVE_INFINITY)];
    expect(checkRevisions([...unknown, readAt('c', 4, 'u1', 4)])).toMatchObject({ ok: false });
    const free = [
      write('c', 'u1', undefined, 0, Number.POSITIVE_INFINITY),
      write('d', 'x', 2, 0, 1),
    ];
    expect(checkRevisions([...free, readAt('c', 2, 'u1', 1)])).toEqual({ ok: true });
    const maybeDeleted = [...history, write('b', null, undefined, 8, Number.POSITIVE_INFINITY)];
    expect(checkRevisions([...maybeDeleted, readAt('b', 4, null, 0)])).toEqual({ ok: true });
  });

  it('refuses two operations with one revision, and revisions against real time', () => {
    expect(checkRevisions([write('a', 'x', 1, 0, 1), write('b', 'y', 1, 0, 1)])).toMatchObject({
      ok: false,
    });
    // One txn writing two keys shares its revision.
    const txn: RevisionEvent[] = [
      { kind: 'write', op: 900, key: 'a', value: 'x', revision: 1, invokeTime: 0, returnTime: 1 },
      { kind: 'write', op: 900, key: 'b', value: 'y', revision: 1, invokeTime: 0, returnTime: 1 },
    ];
    expect(checkRevisions(txn)).toEqual({ ok: true });
    // Acknowledged at 1, the other began at 2: its revision must be higher.
    const v = checkRevisions([write('a', 'x', 5, 0, 1), write('b', 'y', 3, 2, 3)]);
    expect(!v.ok && v.why).toContain('yet has the higher revision');
    // Overlapping in time, either order is fine.
    expect(checkRevisions([write('a', 'x', 5, 0, 3), write('b', 'y', 3, 2, 4)])).toEqual({
      ok: true,
    });
  });
});
