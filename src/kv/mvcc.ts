import { assert } from '../kernel/assert.ts';
import type { Bytes } from './bytes.ts';
import type {
  DeleteRangeRequest,
  DeleteRangeResponse,
  EventsSince,
  KeyRange,
  KeyValue,
  KvError,
  KvEvent,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
} from './ops.ts';
import { passesFilters, sortKvs } from './range.ts';

/**
 * One write of a key: its new state (`kv`, null for a delete) at revision `rev`,
 * sub-revision `sub` (its place among the revision's writes), and the key's state before it.
 * Records are immutable: snapshots and watchers hold them while the store moves on.
 */
export interface KvRecord {
  readonly key: Bytes;
  readonly rev: number;
  readonly sub: number;
  readonly kv: KeyValue | null;
  readonly prev: KeyValue | null;
}

/** A lease as the machine keeps it: no clock, so only the TTLs (see LeaseGrantRequest). */
export interface Lease {
  readonly id: number;
  readonly ttl: number;
  /** Last checkpointed remaining TTL, -1 if none. */
  remainingTtl: number;
  /** Attached keys (a key's latest kv names the lease); iterate sorted for determinism. */
  readonly keys: Set<Bytes>;
}

/**
 * The multi-version store, with etcd's semantics (server/storage/mvcc): one global revision
 * that every write transaction bumps once; per key, its writes in revision order (a delete is
 * a tombstone that ends a generation), so a read of a key at revision r is a binary search,
 * O(log writes of the key); keys kept sorted for ranges; the writes in (revision,
 * sub-revision) order as the change log watchers read. History below the compaction revision
 * is forgotten, except each key's latest state at it.
 *
 * Writes happen inside a transaction: `begin`, then `put` / `deleteRange`..., then `end`,
 * which commits the revision if anything was written. Reads inside it see its writes.
 */
export class MvccStore {
  private readonly index = new Map<Bytes, KvRecord[]>();
  /**
   * Every key of `index`; in byte order up to `sortedUpTo`, new keys appended after it. A
   * range sorts first (`sortedKeys`): V8's merge sort takes a sorted run plus a short
   * unsorted tail in about linear time, while inserting each new key in place cost a
   * memmove of the whole array per key (20,000 new keys: a quarter of all put time).
   */
  private keys: Bytes[] = [];
  private sortedUpTo = 0;
  /** Writes with rev >= `compacted`, from `logStart` on, in (rev, sub) order. */
  private log: KvRecord[] = [];
  private logStart = 0;
  private rev = 0;
  private compacted = 0;
  /** Writes made by the open transaction (they carry revision `rev + 1`). */
  private sub = 0;
  private open = false;
  /** The broken variant: every write of a transaction takes its own revision. */
  unsafeRevisionPerWrite = false;
  readonly leases = new Map<number, Lease>();
  /** The largest lease id ever granted: ids the machine picks go above it. */
  leaseIdHigh = 0;
  /** Grants and revokes so far: tells the machine (and the lessor) the lease set changed. */
  leaseChanges = 0;
  /** While `rebuild` replays a snapshot's log. */
  private replaying = false;

  /** A fresh lease id: the smallest unused one above every id granted so far. */
  nextLeaseId(): number {
    let id = this.leaseIdHigh + 1;
    while (this.leases.has(id)) id++;
    return id;
  }

  get revision(): number {
    return this.rev;
  }

  /** The revision of the last compaction (0: none): reads below it are refused. */
  get compactRevision(): number {
    return this.compacted;
  }

  /** Keys with some retained history (live or not). */
  get keyCount(): number {
    return this.keys.length;
  }

  /** The revision reads see now: the open transaction's, once it wrote something. */
  get readRevision(): number {
    return this.sub > 0 ? this.rev + 1 : this.rev;
  }

  begin(): void {
    assert(!this.open, 'one transaction at a time');
    this.open = true;
    this.sub = 0;
  }

  /** Commits the open transaction; returns whether it wrote (and so took a revision). */
  end(): boolean {
    assert(this.open, 'end without begin');
    this.open = false;
    const wrote = this.sub > 0;
    if (wrote) this.rev += this.unsafeRevisionPerWrite ? this.sub : 1;
    this.sub = 0;
    return wrote;
  }

  /** Why a read at `revision` (0 = current) cannot be served, or undefined if it can. */
  checkRevision(revision: number): KvError | undefined {
    if (revision > this.readRevision) return { f: 'error', code: 'futureRevision', revision };
    if (revision > 0 && revision < this.compacted) {
      return { f: 'error', code: 'compacted', compactRevision: this.compacted };
    }
    return undefined;
  }

  /** The key's state at `revision` (null: absent). The revision must be servable. */
  get(key: Bytes, revision: number = this.readRevision): KeyValue | null {
    const recs = this.index.get(key);
    return recs === undefined ? null : stateAt(recs, revision);
  }

  /** Live keys of `range` at `revision`, in key order. */
  rangeKvs(range: KeyRange, revision: number = this.readRevision): KeyValue[] {
    const out: KeyValue[] = [];
    const end = range.rangeEnd ?? '';
    if (end === '') {
      const kv = this.get(range.key, revision);
      if (kv !== null) out.push(kv);
      return out;
    }
    const keys = this.sortedKeys();
    for (let i = lowerBound(keys, range.key); i < keys.length; i++) {
      const key = keys[i]!;
      if (end !== '\0' && key >= end) break;
      const kv = stateAt(this.index.get(key)!, revision);
      if (kv !== null) out.push(kv);
    }
    return out;
  }

  range(req: RangeRequest): RangeResponse | KvError {
    const refused = this.checkRevision(req.revision ?? 0);
    if (refused !== undefined) return refused;
    const at = req.revision !== undefined && req.revision > 0 ? req.revision : this.readRevision;
    const all = this.rangeKvs(req, at);
    const revision = this.readRevision;
    if (req.countOnly === true)
      return { f: 'range', kvs: [], more: false, count: all.length, revision };
    let kvs = all.filter((kv) => passesFilters(req, kv));
    kvs = sortKvs(kvs, req.sortOrder ?? 'none', req.sortTarget ?? 'key');
    let more = false;
    const limit = req.limit ?? 0;
    if (limit > 0 && kvs.length > limit) {
      kvs = kvs.slice(0, limit);
      more = true;
    }
    if (req.keysOnly === true) kvs = kvs.map((kv) => ({ ...kv, value: '' }));
    return { f: 'range', kvs, more, count: all.length, revision };
  }

  /** A put inside the open transaction; the request was validated (see `checkPut`). */
  put(req: PutRequest): PutResponse {
    assert(this.open, 'put outside a transaction');
    const prev = this.get(req.key);
    const rev = this.nextWriteRevision();
    const kv: KeyValue = {
      key: req.key,
      value: req.ignoreValue === true && prev !== null ? prev.value : req.value,
      createRevision: prev?.createRevision ?? rev,
      modRevision: rev,
      version: (prev?.version ?? 0) + 1,
      lease: req.ignoreLease === true && prev !== null ? prev.lease : (req.lease ?? 0),
    };
    this.write(req.key, kv, prev);
    const out: PutResponse = { f: 'put', revision: rev, version: kv.version };
    return req.prevKv === true ? { ...out, prevKv: prev } : out;
  }

  /** Why a put cannot apply now (etcd's checks), or undefined. */
  checkPut(req: PutRequest): KvError | undefined {
    if (req.key === '') return { f: 'error', code: 'emptyKey' };
    if (req.ignoreValue === true && req.value !== '') return { f: 'error', code: 'valueProvided' };
    const lease = req.lease ?? 0;
    if (req.ignoreLease === true && lease !== 0) return { f: 'error', code: 'leaseProvided' };
    if ((req.ignoreValue === true || req.ignoreLease === true) && this.get(req.key) === null) {
      return { f: 'error', code: 'keyNotFound' };
    }
    if (lease !== 0 && !this.leases.has(lease)) return { f: 'error', code: 'leaseNotFound', lease };
    return undefined;
  }

  deleteRange(req: DeleteRangeRequest): DeleteRangeResponse {
    assert(this.open, 'delete outside a transaction');
    const doomed = this.rangeKvs(req);
    for (const kv of doomed) this.write(kv.key, null, kv);
    return {
      f: 'deleteRange',
      deleted: doomed.length,
      prevKvs: req.prevKv === true ? doomed : [],
      revision: this.readRevision,
    };
  }

  /** Forgets history below `revision`; the caller checked it is in (compacted, current]. */
  compact(revision: number): void {
    assert(revision > this.compacted && revision <= this.rev, 'compaction moves forward');
    this.compacted = revision;
    this.trim(revision);
  }

  /** Keeps, per key, its writes after `revision` and its latest one <= it if live. */
  private trim(revision: number): void {
    let gone = 0;
    for (const key of this.keys) {
      const recs = this.index.get(key)!;
      let keep = upperBound(recs, revision) - 1; // the latest write <= revision
      if (keep < 0) continue;
      if (recs[keep]!.kv === null) keep++; // a tombstone has nothing to keep
      if (keep > 0) recs.splice(0, keep);
      if (recs.length === 0) {
        this.index.delete(key);
        gone++;
      }
    }
    if (gone > 0) {
      this.keys = this.keys.filter((k) => this.index.has(k));
      this.sortedUpTo = 0;
    }
    while (this.logStart < this.log.length && this.log[this.logStart]!.rev < revision) {
      this.logStart++;
    }
    // Drop the dead prefix in bulk, so trimming costs O(1) amortised per write.
    if (this.logStart > this.log.length / 2) {
      this.log = this.log.slice(this.logStart);
      this.logStart = 0;
    }
  }

  /** Events with revision >= `from`, oldest first, or the compaction that ate them. */
  eventsSince(from: number): EventsSince {
    if (from < this.compacted) return { ok: false, compactRevision: this.compacted };
    const events: KvEvent[] = [];
    for (let i = this.logIndexOf(from); i < this.log.length; i++) {
      events.push(eventOf(this.log[i]!));
    }
    return { ok: true, events };
  }

  /** The log's records with revision >= `from` (from >= the compaction revision). */
  recordsSince(from: number): readonly KvRecord[] {
    assert(from >= this.compacted, 'records below the compaction are gone');
    return this.log.slice(this.logIndexOf(from));
  }

  /** Every key's live state at revision `compacted - 1`, in key order: what the log starts from. */
  base(): KeyValue[] {
    if (this.compacted <= 1) return [];
    // The writes of the compaction revision itself open the log, and some of their keys
    // are gone from the index (a delete there leaves nothing live to keep): their state
    // before their first write there.
    const atCompaction = new Map<Bytes, KeyValue | null>();
    for (let i = this.logStart; i < this.log.length; i++) {
      const rec = this.log[i]!;
      if (rec.rev !== this.compacted) break;
      if (!atCompaction.has(rec.key)) atCompaction.set(rec.key, rec.prev);
    }
    // Every other key's first retained write is its first in the log: the index alone says
    // it, in key order, with no map of the whole log and no sort (each snapshot takes this).
    const out: KeyValue[] = [];
    for (const key of this.sortedKeys()) {
      let kv: KeyValue | null;
      if (atCompaction.has(key)) {
        kv = atCompaction.get(key)!;
        atCompaction.delete(key);
      } else {
        const first = this.index.get(key)![0]!;
        // Last written before the compaction: that write; else its state before the first
        // write after it.
        kv = first.rev < this.compacted ? first.kv : first.prev;
      }
      if (kv !== null) out.push(kv);
    }
    if (atCompaction.size === 0) return out;
    for (const kv of atCompaction.values()) if (kv !== null) out.push(kv);
    return out.sort((a, b) => byteOrder(a.key, b.key));
  }

  /**
   * Rebuilds a store from `base` (the live keys at `compacted - 1`) and the log's writes
   * since, exactly as `base()` and `recordsSince(compacted)` described it.
   */
  static rebuild(
    revision: number,
    compacted: number,
    base: readonly KeyValue[],
    log: readonly (readonly [number, Bytes, Bytes | null, number])[],
    leases: readonly Lease[],
  ): MvccStore {
    const store = new MvccStore();
    store.replaying = true;
    for (const lease of leases) store.leases.set(lease.id, lease);
    for (const kv of base) {
      assert(kv.modRevision < compacted, 'base records precede the compaction');
      const rec: KvRecord = { key: kv.key, rev: kv.modRevision, sub: 0, kv, prev: null };
      store.index.set(kv.key, [rec]);
      if (kv.lease !== 0) store.leases.get(kv.lease)?.keys.add(kv.key);
    }
    store.keys = [...store.index.keys()];
    let last = 0;
    for (const [rev, key, value, lease] of log) {
      assert(rev >= last && rev >= compacted && rev <= revision, 'log in revision order');
      if (rev !== last) {
        store.rev = rev - 1;
        store.sub = 0;
        last = rev;
      }
      store.open = true;
      const prev = store.get(key);
      if (value === null) {
        assert(prev !== null, 'a logged delete removes a live key');
        store.write(key, null, prev);
      } else {
        store.write(
          key,
          {
            key,
            value,
            createRevision: prev?.createRevision ?? rev,
            modRevision: rev,
            version: (prev?.version ?? 0) + 1,
            lease,
          },
          prev,
        );
      }
      store.open = false;
    }
    store.replaying = false;
    store.rev = revision;
    store.sub = 0;
    store.compacted = compacted;
    // Re-apply the compaction's trimming of the index (the log already starts at it).
    if (compacted > 0) store.trim(compacted);
    return store;
  }

  private write(key: Bytes, kv: KeyValue | null, prev: KeyValue | null): void {
    let recs = this.index.get(key);
    if (recs === undefined) {
      recs = [];
      this.index.set(key, recs);
      this.keys.push(key);
    }
    const rev = this.nextWriteRevision();
    assert((recs.at(-1)?.rev ?? 0) < rev, 'a transaction writes a key at most once');
    const rec: KvRecord = { key, rev, sub: this.sub++, kv, prev };
    recs.push(rec);
    this.log.push(rec);
    if (prev !== null && prev.lease !== 0) this.leases.get(prev.lease)?.keys.delete(key);
    if (kv !== null && kv.lease !== 0) {
      const lease = this.leases.get(kv.lease);
      // A replayed put may name a lease revoked since: the log's later delete (the revoke's)
      // detaches the key again, so there is nothing to attach it to meanwhile.
      assert(lease !== undefined || this.replaying, 'puts attach to existing leases');
      lease?.keys.add(key);
    }
  }

  /** The revision of the open transaction's next write (all of them share one). */
  private nextWriteRevision(): number {
    return this.rev + 1 + (this.unsafeRevisionPerWrite ? this.sub : 0);
  }

  private sortedKeys(): readonly Bytes[] {
    if (this.sortedUpTo < this.keys.length) {
      this.keys.sort(byteOrder);
      this.sortedUpTo = this.keys.length;
    }
    return this.keys;
  }

  private logIndexOf(from: number): number {
    let lo = this.logStart;
    let hi = this.log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.log[mid]!.rev < from) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Byte order of byte strings (see bytes.ts: code-unit order is byte order). */
export function byteOrder(a: Bytes, b: Bytes): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The key's state at `revision`: the latest write <= it, null if none or a delete. */
function stateAt(recs: readonly KvRecord[], revision: number): KeyValue | null {
  const i = upperBound(recs, revision) - 1;
  return i < 0 ? null : recs[i]!.kv;
}

/** The first index whose record's revision is > `revision`. */
function upperBound(recs: readonly KvRecord[], revision: number): number {
  let lo = 0;
  let hi = recs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (recs[mid]!.rev <= revision) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first index of a sorted array whose key is >= `key`. */
function lowerBound(keys: readonly Bytes[], key: Bytes): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function eventOf(rec: KvRecord): KvEvent {
  if (rec.kv !== null) return { type: 'put', kv: rec.kv, prevKv: rec.prev };
  const tombstone: KeyValue = {
    key: rec.key,
    value: '',
    createRevision: 0,
    modRevision: rec.rev,
    version: 0,
    lease: 0,
  };
  return { type: 'delete', kv: tombstone, prevKv: rec.prev };
}
