import { assert } from '../kernel/assert.ts';
import {
  type AuthError,
  type AuthImage,
  type AuthOp,
  type AuthResult,
  AuthStore,
  isAuthOp,
} from './auth.ts';
import { type Bytes, prefixEnd } from './bytes.ts';
import { applyEtcd, applyTxn, defaultEtcdLimits, type EtcdLimits } from './etcd.ts';
import { type KvRecord, MvccStore } from './mvcc.ts';
import type {
  EtcdOp,
  EtcdReadOp,
  EtcdResult,
  EventsSince,
  KeyRange,
  KeyValue,
  PutRequest,
  RequestOp,
  TxnRequest,
} from './ops.ts';

/**
 * The replicated key-value state machine, shared by every engine that orders commands
 * (Raft, Multi-Paxos). It is deterministic: replicas that apply the same commands in the same
 * order hold the same state and return the same results, byte for byte.
 *
 * Its store is an etcd-style multi-version store (mvcc.ts): every write transaction takes one
 * global revision, history is kept until compaction, and reads may ask for a past revision.
 * It speaks two vocabularies over that one store: etcd's v3 operations (ops.ts: range, put,
 * deleteRange, txn, compact, leases) and the original single-key ones of our HTTP API
 * (get, delete, cas, casVersion, list), each of which is expressed as etcd operations
 * (a cas is a txn). `put` is shared: our put is etcd's PutRequest without options.
 *
 * Keys and values are `Bytes` (bytes.ts): byte strings, every code unit 0x00-0xFF.
 *
 * Exactly-once: each command carries its client session and a sequence number. A session
 * issues one command at a time, so remembering the last sequence number and its result per
 * session is enough to answer a retried command with its first result instead of applying
 * it twice (Raft dissertation, section 6.3).
 */
export type KvOp = CallerOp | AsUserOp;

/**
 * A client's op as the user it authenticated as (\'\' when it sent no credentials). The
 * edge wraps every client write in one, and the machine checks the user's permissions when
 * it applies it (etcd's authApplierV3): at that point in the log, so a permission revoked
 * just before it cannot be raced. Ops not wrapped are the cluster's own (member records,
 * lease expiry) and are not checked.
 */
export interface AsUserOp {
  readonly f: 'asUser';
  readonly user: string;
  readonly op: CallerOp;
}

/** Every op but the `asUser` wrapper. */
export type CallerOp =
  | { readonly f: 'get'; readonly key: Bytes }
  | PutRequest
  | { readonly f: 'delete'; readonly key: Bytes }
  /** Compare-and-set on the value; `expected: null` means "only if absent". */
  | {
      readonly f: 'cas';
      readonly key: Bytes;
      readonly expected: Bytes | null;
      readonly value: Bytes;
    }
  /** Compare-and-set on the version; version 0 means "only if absent". */
  | {
      readonly f: 'casVersion';
      readonly key: Bytes;
      readonly expectedVersion: number;
      readonly value: Bytes;
    }
  | { readonly f: 'list'; readonly prefix: Bytes; readonly limit: number }
  | Exclude<EtcdOp, PutRequest>
  | AuthOp;

/** The operations that change nothing: only these may be served as reads. */
export type KvReadOp = Extract<KvOp, { f: 'get' } | { f: 'list' }> | EtcdReadOp;

/** A key as the single-key operations show it. */
export interface KvEntry {
  readonly key: Bytes;
  readonly value: Bytes;
  /** Number of writes to the key since it was last created (1 on creation). */
  readonly version: number;
  /** The store revision of the key's last write. */
  readonly modRevision: number;
}

export type KvResult =
  | { readonly f: 'get'; readonly entry: KvEntry | null; readonly revision: number }
  | { readonly f: 'delete'; readonly deleted: boolean; readonly revision: number }
  | {
      readonly f: 'cas';
      readonly ok: boolean;
      readonly entry: KvEntry | null;
      readonly revision: number;
    }
  | {
      readonly f: 'list';
      readonly entries: readonly KvEntry[];
      readonly more: boolean;
      readonly revision: number;
    }
  | EtcdResult
  | Exclude<AuthResult, AuthError>
  /** A sequence number older than the session's last: a late duplicate, not applied. */
  | { readonly f: 'stale'; readonly lastSeq: number };

export interface KvCommand {
  /** Client session id; 0 = no session (no exactly-once guarantee, e.g. internal commands). */
  readonly session: number;
  /** Per-session sequence number, increasing by at least 1 per new command. */
  readonly seq: number;
  readonly op: KvOp;
}

/** A change, for watchers: the revision at which `key` was set (`value`) or deleted (null). */
export interface KvChange {
  readonly revision: number;
  readonly key: Bytes;
  readonly value: Bytes | null;
}

/**
 * A change as the machine's history holds it, for watchers that show more than the value
 * (etcd's watch events): also the key's state after the change and before it.
 */
export interface KvFeedChange extends KvChange {
  /** The key after the change; null for a delete. */
  readonly kv: KeyValue | null;
  /** The key before the change; null if it was absent. */
  readonly prev: KeyValue | null;
}

/** The machine's bounds; the etcd ones default to `defaultEtcdLimits`. */
export interface KvLimits extends Partial<EtcdLimits> {
  /** Sessions remembered for exactly-once; the least recently used is forgotten past this. */
  readonly sessionsMax: number;
  /**
   * Revisions of history kept (for past reads and watches): at least this many, up to twice;
   * the machine compacts older ones itself, deterministically, as etcd's revision-based
   * auto-compaction would.
   */
  readonly changesMax: number;
  /** Largest `limit` a list may ask for. */
  readonly listMax: number;
  /** Deliberate bugs, for the broken-variant tests only. */
  readonly unsafeTestingFaults?: {
    /** A range at a past revision answers from the newest state instead. */
    readonly pastReadsNewest?: boolean;
    /** Each write of a txn takes its own revision instead of one for the whole txn. */
    readonly revisionPerWrite?: boolean;
    /** A client's write applies without its permissions checked (trusting the edge's check). */
    readonly authAtEdgeOnly?: boolean;
  };
}

export const defaultKvLimits: Required<Omit<KvLimits, 'unsafeTestingFaults'>> = {
  sessionsMax: 10_000,
  changesMax: 10_000,
  listMax: 1_000,
  ...defaultEtcdLimits,
};

interface Session {
  seq: number;
  result: KvResult;
}

/**
 * A view of the machine for a snapshot, taken at once from immutable records: the live keys
 * just below the compaction revision (`base`), every write since (`log`), the leases and the
 * sessions. The codec (src/replica/snapshot-codec.ts) turns it into bytes.
 */
export interface KvSnapshot {
  readonly appliedIndex: number;
  readonly revision: number;
  readonly compactRevision: number;
  readonly leaseIdHigh: number;
  readonly base: readonly KeyValue[];
  readonly log: readonly KvRecord[];
  /** [id, ttl, remainingTtl], ascending by id. */
  readonly leases: readonly (readonly [number, number, number])[];
  /** In least-recently-used order, so eviction continues identically after a restore. */
  readonly sessions: readonly (readonly [number, number, KvResult])[];
  /** Users, roles, permissions and whether auth is on (auth.ts). */
  readonly auth: AuthImage;
}

/** A snapshot as decoded: the log's writes as [revision, key, value (null: delete), lease]. */
export interface KvImage extends Omit<KvSnapshot, 'log'> {
  readonly log: readonly (readonly [number, Bytes, Bytes | null, number])[];
}

/** The auth store as the edge may use it: read-only (see KvStateMachine.auth). */
export type AuthView = Pick<
  AuthStore,
  'isEnabled' | 'revision' | 'user' | 'checkRange' | 'checkAdmin' | 'checkUser' | 'hasRole'
>;

export class KvStateMachine {
  private store = new MvccStore();
  private authStore = new AuthStore();
  private readonly sessions = new Map<number, Session>();
  private applied = 0;
  /** The applied index of the last command that granted or revoked a lease (or the restore). */
  private leasesChanged = 0;
  private readonly limits: Required<Omit<KvLimits, 'unsafeTestingFaults'>> & KvLimits;

  constructor(limits: KvLimits = defaultKvLimits) {
    this.limits = { ...defaultEtcdLimits, ...limits };
    assert(
      limits.sessionsMax >= 1 && limits.changesMax >= 1 && limits.listMax >= 1,
      'kv limits must be >= 1',
    );
    const etcd = this.limits;
    assert(
      etcd.txnOpsMax >= 1 && etcd.leasesMax >= 1 && etcd.leaseTtlMax >= 1,
      'etcd limits must be >= 1',
    );
  }

  get appliedIndex(): number {
    return this.applied;
  }

  get currentRevision(): number {
    return this.store.revision;
  }

  /** Reads below this revision are refused as compacted (0: nothing compacted yet). */
  get compactRevision(): number {
    return this.store.compactRevision;
  }

  /** The auth store, read-only use: the edge verifies tokens and checks reads against it. */
  get auth(): AuthView {
    return this.authStore;
  }

  /**
   * Changes whenever the lease set does (a grant, a revoke, a restore): the index of the
   * last such apply, so a copy of the set made at one value is current while it holds.
   */
  get leasesVersion(): number {
    return this.leasesChanged;
  }

  /** Every lease as [id, granted TTL in seconds], in no set order. */
  leaseTtls(): IterableIterator<readonly [number, number]> {
    return leaseTtlsOf(this.store);
  }

  /** Keys with retained history (live, or deleted but still readable at a past revision). */
  get size(): number {
    return this.store.keyCount;
  }

  /**
   * The result of command `seq` of `session` if it is the session's last applied one: what
   * `apply` returned for it, and returns again for a retry.
   */
  resultOf(session: number, seq: number): KvResult | undefined {
    const s = session === 0 ? undefined : this.sessions.get(session);
    return s?.seq === seq ? s.result : undefined;
  }

  /** The sequence number of the session's last applied command (undefined: none kept). */
  lastSeqOf(session: number): number | undefined {
    return session === 0 ? undefined : this.sessions.get(session)?.seq;
  }

  /** Applies the command at log position `index` (strictly increasing) and returns its result. */
  apply(index: number, cmd: KvCommand): KvResult {
    assert(index > this.applied, `kv apply out of order: ${index} after ${this.applied}`);
    this.applied = index;
    const leaseChanges = this.store.leaseChanges;
    try {
      return this.applySession(cmd);
    } finally {
      if (this.store.leaseChanges !== leaseChanges) this.leasesChanged = index;
    }
  }

  private applySession(cmd: KvCommand): KvResult {
    if (cmd.session === 0) return this.execute(cmd.op);
    const session = this.sessions.get(cmd.session);
    if (session !== undefined) {
      if (cmd.seq === session.seq) return session.result;
      if (cmd.seq < session.seq) return { f: 'stale', lastSeq: session.seq };
      this.sessions.delete(cmd.session); // re-inserted below: Map order is LRU order
    }
    const result = this.execute(cmd.op);
    this.sessions.set(cmd.session, { seq: cmd.seq, result });
    if (this.sessions.size > this.limits.sessionsMax) {
      const oldest = this.sessions.keys().next().value as number;
      this.sessions.delete(oldest);
    }
    return result;
  }

  /** Marks a log position as applied that carries no command (a no-op or a config change). */
  skip(index: number): void {
    assert(index > this.applied, `kv skip out of order: ${index} after ${this.applied}`);
    this.applied = index;
  }

  /** Serves a read from local state (after ReadIndex, a lease, or explicitly stale). */
  read(op: KvReadOp): KvResult {
    return this.execute(op);
  }

  /**
   * etcd watch events with revision >= `startRevision`, in (revision, sub-revision) order,
   * or the compaction revision when some of them are gone (etcd's "compacted" watch
   * response: a watcher starting below it must restart from it at the earliest).
   */
  eventsSince(startRevision: number): EventsSince {
    return this.store.eventsSince(startRevision);
  }

  /** Changes after `revision`, oldest first; undefined if some were already compacted away. */
  changesSince(revision: number): readonly KvFeedChange[] | undefined {
    if (revision + 1 < this.store.compactRevision) return undefined;
    return this.store.recordsSince(Math.max(revision + 1, this.store.compactRevision)).map((r) => ({
      revision: r.rev,
      key: r.key,
      value: r.kv === null ? null : r.kv.value,
      kv: r.kv,
      prev: r.prev,
    }));
  }

  snapshot(): KvSnapshot {
    const store = this.store;
    return {
      appliedIndex: this.applied,
      revision: store.revision,
      compactRevision: store.compactRevision,
      leaseIdHigh: store.leaseIdHigh,
      base: store.base(),
      log: store.recordsSince(store.compactRevision),
      leases: [...store.leases.values()]
        .sort((a, b) => a.id - b.id)
        .map((l) => [l.id, l.ttl, l.remainingTtl] as const),
      sessions: [...this.sessions].map(([id, s]) => [id, s.seq, s.result] as const),
      auth: this.authStore.image(),
    };
  }

  static restore(image: KvImage, limits: KvLimits = defaultKvLimits): KvStateMachine {
    const machine = new KvStateMachine(limits);
    machine.applied = image.appliedIndex;
    machine.leasesChanged = image.appliedIndex;
    // Leases first: the log's puts attach their keys to them.
    const leases = image.leases.map(([id, ttl, remainingTtl]) => ({
      id,
      ttl,
      remainingTtl,
      keys: new Set<Bytes>(),
    }));
    machine.store = MvccStore.rebuild(
      image.revision,
      image.compactRevision,
      image.base,
      image.log,
      leases,
    );
    machine.store.leaseIdHigh = image.leaseIdHigh;
    for (const [id, seq, result] of image.sessions) machine.sessions.set(id, { seq, result });
    machine.authStore = AuthStore.restore(image.auth);
    return machine;
  }

  private execute(op: KvOp): KvResult {
    this.store.unsafeRevisionPerWrite = this.limits.unsafeTestingFaults?.revisionPerWrite === true;
    const before = this.store.revision;
    const result = this.run(op);
    if (this.store.revision !== before) this.maybeCompact();
    return result;
  }

  private run(op: KvOp): KvResult {
    if (op.f === 'asUser') {
      const denied =
        this.limits.unsafeTestingFaults?.authAtEdgeOnly === true
          ? undefined
          : this.permit(op.user, op.op);
      if (denied !== undefined) return denied;
      return isAuthOp(op.op) ? this.authStore.apply(op.op, op.user) : this.run(op.op);
    }
    if (isAuthOp(op)) return this.authStore.apply(op, undefined);
    switch (op.f) {
      case 'get':
        return { f: 'get', entry: entryOf(this.store.get(op.key)), revision: this.store.revision };
      case 'delete': {
        const result = applyEtcd(this.store, { f: 'deleteRange', key: op.key }, this.limits);
        if (result.f !== 'deleteRange') return result; // an empty key
        return { f: 'delete', deleted: result.deleted > 0, revision: result.revision };
      }
      case 'cas':
        return this.cas(
          op.key,
          op.expected === null
            ? { target: 'version', version: 0 }
            : { target: 'value', value: op.expected },
          op.value,
        );
      case 'casVersion':
        return this.cas(op.key, { target: 'version', version: op.expectedVersion }, op.value);
      case 'list': {
        const limit = Math.max(1, Math.min(op.limit, this.limits.listMax));
        const result = this.store.range({
          f: 'range',
          key: op.prefix,
          rangeEnd: prefixEnd(op.prefix),
          limit,
        });
        assert(result.f === 'range', 'a current range cannot be refused');
        return {
          f: 'list',
          entries: result.kvs.map(entryOf) as KvEntry[],
          more: result.more,
          revision: result.revision,
        };
      }
      case 'range':
        if (this.limits.unsafeTestingFaults?.pastReadsNewest === true) {
          return applyEtcd(this.store, { ...op, revision: 0 }, this.limits);
        }
        return applyEtcd(this.store, op, this.limits);
      default:
        return applyEtcd(this.store, op, this.limits);
    }
  }

  /**
   * Whether `user` may run `op` now (etcd's authApplierV3 checks): key ranges against the
   * user's permissions, administration against the root role. Auth requests check their
   * own caller (AuthStore.apply). Undefined: permitted.
   */
  private permit(user: string, op: CallerOp): AuthError | undefined {
    const auth = this.authStore;
    if (!auth.isEnabled || isAuthOp(op)) return undefined;
    const read = (r: KeyRange) => auth.checkRange(user, r, 'read');
    const write = (r: KeyRange) => auth.checkRange(user, r, 'write');
    const leaseKeys = (id: number, access: 'read' | 'write') => {
      if (auth.checkAdmin(user) === undefined) return undefined;
      for (const key of this.store.leases.get(id)?.keys ?? []) {
        const denied = auth.checkRange(user, { key }, access);
        if (denied !== undefined) return denied;
      }
      return undefined;
    };
    switch (op.f) {
      case 'get':
        return read({ key: op.key });
      case 'list':
        return read({ key: op.prefix, rangeEnd: prefixEnd(op.prefix) });
      case 'delete':
        return write({ key: op.key });
      case 'cas':
      case 'casVersion':
        return read({ key: op.key }) ?? write({ key: op.key });
      case 'range':
      case 'put':
      case 'deleteRange':
      case 'txn':
        return this.permitRequest(user, op, leaseKeys);
      case 'compact':
      case 'leaseCheckpoint':
        // Compaction discards every user's history: administrators only (etcd lets any
        // caller compact; we do not).
        return auth.checkAdmin(user);
      case 'leaseGrant':
      case 'leaseLeases':
        return auth.checkUser(user);
      case 'leaseRevoke':
        return auth.checkUser(user) ?? leaseKeys(op.id, 'write');
      case 'leaseTimeToLive':
        return auth.checkUser(user) ?? leaseKeys(op.id, 'read');
      case 'leaseKeepAlive':
        // etcd checks no permission on a keep-alive; a user it is, though.
        return auth.checkUser(user);
    }
  }

  private permitRequest(
    user: string,
    op: RequestOp,
    leaseKeys: (id: number, access: 'read' | 'write') => AuthError | undefined,
  ): AuthError | undefined {
    const auth = this.authStore;
    switch (op.f) {
      case 'range':
        return auth.checkRange(user, op, 'read');
      case 'put':
        return (
          auth.checkRange(user, { key: op.key }, 'write') ??
          (op.lease !== undefined && op.lease !== 0 ? leaseKeys(op.lease, 'write') : undefined) ??
          (op.prevKv === true ? auth.checkRange(user, { key: op.key }, 'read') : undefined)
        );
      case 'deleteRange':
        return (
          auth.checkRange(user, op, 'write') ??
          (op.prevKv === true ? auth.checkRange(user, op, 'read') : undefined)
        );
      case 'txn':
        for (const c of op.compare) {
          const denied = auth.checkRange(user, c, 'read');
          if (denied !== undefined) return denied;
        }
        for (const o of [...op.success, ...op.failure]) {
          const denied = this.permitRequest(user, o, leaseKeys);
          if (denied !== undefined) return denied;
        }
        return undefined;
    }
  }

  /** A compare-and-set is a txn: if the compare holds put, else read the key. */
  private cas(
    key: Bytes,
    compare: { target: 'version'; version: number } | { target: 'value'; value: Bytes },
    value: Bytes,
  ): KvResult {
    const txn: TxnRequest = {
      f: 'txn',
      compare: [{ key, result: 'equal', ...compare }],
      success: [{ f: 'put', key, value }],
      failure: [],
    };
    const result = applyTxn(this.store, txn, this.limits);
    if (result.f !== 'txn') return result; // an empty key
    return {
      f: 'cas',
      ok: result.succeeded,
      entry: entryOf(this.store.get(key)),
      revision: result.revision,
    };
  }

  /** etcd-style revision auto-compaction, so history stays within `changesMax`..2x. */
  private maybeCompact(): void {
    const store = this.store;
    if (store.revision - store.compactRevision >= 2 * this.limits.changesMax) {
      store.compact(store.revision - this.limits.changesMax);
    }
  }
}

function* leaseTtlsOf(store: MvccStore): IterableIterator<readonly [number, number]> {
  for (const lease of store.leases.values()) yield [lease.id, lease.ttl];
}

function entryOf(kv: KeyValue | null): KvEntry | null {
  if (kv === null) return null;
  return { key: kv.key, value: kv.value, version: kv.version, modRevision: kv.modRevision };
}

/** The image a snapshot decodes to, without the bytes in between (for tests and copies). */
export function imageOf(snapshot: KvSnapshot): KvImage {
  return {
    ...snapshot,
    log: snapshot.log.map(
      (r) => [r.rev, r.key, r.kv === null ? null : r.kv.value, r.kv?.lease ?? 0] as const,
    ),
  };
}
