/**
 * The revision model: what an etcd-style MVCC store promises about revisions, checked on a
 * history of writes (with the revisions their results named) and reads at past revisions.
 * The per-key linearizability search (model.ts) checks values against real time; this checks
 * the part it cannot see, which couples keys through one global revision:
 *
 * 1. **One revision, one write transaction.** No two acknowledged write operations share a
 *    revision (a txn writing several keys is one operation).
 * 2. **Revisions follow real time.** A write acknowledged before another was invoked has the
 *    smaller revision (the store's order is a linearization).
 * 3. **A read at revision r sees the key as of r**: the value of the key's last write at or
 *    below r, with that write's revision as its mod revision; absent if that write was a
 *    delete. Written values are unique, so the value names its write. A write whose outcome
 *    is unknown (`revision: undefined`) may have any revision not taken by another, so it can
 *    explain a read only as the write that the read names.
 *
 * Checked in O(n log n) for n events, plus a binary search per read.
 */

/** A write operation: put (value) or delete (value null) of one key. */
export interface RevisionWrite {
  readonly kind: 'write';
  /** Identifies the operation: writes of one txn share it. */
  readonly op: number;
  readonly key: string;
  readonly value: string | null;
  /** The revision its result named; undefined when the outcome is unknown. */
  readonly revision: number | undefined;
  readonly invokeTime: number;
  /** +Infinity when the outcome is unknown. */
  readonly returnTime: number;
}

/** A read of one key at a past revision, and what it returned. */
export interface RevisionRead {
  readonly kind: 'readAt';
  readonly op: number;
  readonly key: string;
  readonly at: number;
  readonly value: string | null;
  /** The mod revision of the returned key (0 when absent). */
  readonly modRevision: number;
}

export type RevisionEvent = RevisionWrite | RevisionRead;

export type RevisionVerdict = { readonly ok: true } | { readonly ok: false; readonly why: string };

export function checkRevisions(events: readonly RevisionEvent[]): RevisionVerdict {
  const writes = events.filter((e): e is RevisionWrite => e.kind === 'write');
  const known = writes.filter((w) => w.revision !== undefined);
  return (
    firstFailure([
      () => oneOpPerRevision(known),
      () => revisionsFollowRealTime(known),
      () => readsSeeTheirRevision(events, writes, known),
    ]) ?? { ok: true }
  );
}

function firstFailure(checks: readonly (() => RevisionVerdict)[]): RevisionVerdict | undefined {
  for (const check of checks) {
    const v = check();
    if (!v.ok) return v;
  }
  return undefined;
}

function describe(w: RevisionWrite): string {
  const what = w.value === null ? 'delete' : `put ${JSON.stringify(w.value)}`;
  return `${what} of ${JSON.stringify(w.key)} (op ${w.op}, revision ${w.revision ?? '?'})`;
}

function oneOpPerRevision(known: readonly RevisionWrite[]): RevisionVerdict {
  const owner = new Map<number, RevisionWrite>();
  for (const w of known) {
    const other = owner.get(w.revision!);
    if (other !== undefined && other.op !== w.op) {
      return { ok: false, why: `${describe(other)} and ${describe(w)} share a revision` };
    }
    owner.set(w.revision!, w);
  }
  return { ok: true };
}

function revisionsFollowRealTime(known: readonly RevisionWrite[]): RevisionVerdict {
  const byRevision = [...known].sort((a, b) => b.revision! - a.revision!);
  // From the highest revision down: the earliest return among writes with higher revisions.
  let earliest: RevisionWrite | undefined;
  let i = 0;
  while (i < byRevision.length) {
    let j = i;
    while (j < byRevision.length && byRevision[j]!.revision === byRevision[i]!.revision) j++;
    for (let k = i; k < j; k++) {
      const w = byRevision[k]!;
      if (earliest !== undefined && earliest.returnTime < w.invokeTime) {
        return {
          ok: false,
          why: `${describe(earliest)} was acknowledged before ${describe(w)} began, yet has the higher revision`,
        };
      }
    }
    for (let k = i; k < j; k++) {
      const w = byRevision[k]!;
      if (earliest === undefined || w.returnTime < earliest.returnTime) earliest = w;
    }
    i = j;
  }
  return { ok: true };
}

function readsSeeTheirRevision(
  events: readonly RevisionEvent[],
  writes: readonly RevisionWrite[],
  known: readonly RevisionWrite[],
): RevisionVerdict {
  const byValue = new Map<string, RevisionWrite>();
  for (const w of writes) if (w.value !== null) byValue.set(`${w.key}\u0000${w.value}`, w);
  const perKey = new Map<string, RevisionWrite[]>();
  for (const w of known) {
    const list = perKey.get(w.key);
    if (list === undefined) perKey.set(w.key, [w]);
    else list.push(w);
  }
  for (const list of perKey.values()) list.sort((a, b) => a.revision! - b.revision!);
  const owners = new Map<number, RevisionWrite>();
  for (const w of known) owners.set(w.revision!, w);
  const unknownDeletes = new Set(
    writes.filter((w) => w.revision === undefined && w.value === null).map((w) => w.key),
  );
  for (const e of events) {
    if (e.kind !== 'readAt') continue;
    const v = checkRead(e, perKey.get(e.key) ?? [], byValue, owners, unknownDeletes.has(e.key));
    if (!v.ok) return v;
  }
  return { ok: true };
}

function checkRead(
  read: RevisionRead,
  keyWrites: readonly RevisionWrite[],
  byValue: ReadonlyMap<string, RevisionWrite>,
  owners: ReadonlyMap<number, RevisionWrite>,
  mayBeUnknownDelete: boolean,
): RevisionVerdict {
  const shown = `read of ${JSON.stringify(read.key)} at revision ${read.at} (op ${read.op}) returned ${
    read.value === null
      ? 'absent'
      : `${JSON.stringify(read.value)} at mod revision ${read.modRevision}`
  }`;
  // The key's last acknowledged write at or below the read's revision.
  const last = lastAtOrBelow(keyWrites, read.at);
  if (read.value === null) {
    if (last !== undefined && last.value !== null && !mayBeUnknownDelete) {
      return { ok: false, why: `${shown}, but ${describe(last)} is the key's last write by then` };
    }
    return { ok: true };
  }
  if (read.modRevision < 1 || read.modRevision > read.at) {
    return { ok: false, why: `${shown}: a mod revision outside 1..${read.at}` };
  }
  const writer = byValue.get(`${read.key}\u0000${read.value}`);
  if (writer === undefined) return { ok: false, why: `${shown}: no operation wrote that value` };
  if (writer.revision !== undefined && writer.revision !== read.modRevision) {
    return { ok: false, why: `${shown}, but ${describe(writer)} wrote it` };
  }
  const owner = owners.get(read.modRevision);
  if (writer.revision === undefined && owner !== undefined && owner.op !== writer.op) {
    return { ok: false, why: `${shown}, but revision ${read.modRevision} is ${describe(owner)}'s` };
  }
  if (last !== undefined && last !== writer && last.revision! >= read.modRevision) {
    return { ok: false, why: `${shown}, but ${describe(last)} came after it and by then` };
  }
  return { ok: true };
}

function lastAtOrBelow(
  writes: readonly RevisionWrite[],
  revision: number,
): RevisionWrite | undefined {
  let lo = 0;
  let hi = writes.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (writes[mid]!.revision! <= revision) lo = mid + 1;
    else hi = mid;
  }
  return lo === 0 ? undefined : writes[lo - 1];
}
