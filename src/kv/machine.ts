import { assert } from '../kernel/assert.ts';

/**
 * The replicated key-value state machine, shared by every engine that orders commands
 * (Raft, Multi-Paxos). It is deterministic: replicas that apply the same commands in the same
 * order hold the same state and return the same results, byte for byte.
 *
 * Exactly-once: each command carries its client session and a sequence number. A session
 * issues one command at a time, so remembering the last sequence number and its result per
 * session is enough to answer a retried command with its first result instead of applying
 * it twice (Raft dissertation, section 6.3).
 */
export type KvOp =
  | { readonly f: 'get'; readonly key: string }
  | { readonly f: 'put'; readonly key: string; readonly value: string }
  | { readonly f: 'delete'; readonly key: string }
  /** Compare-and-set on the value; `expected: null` means "only if absent". */
  | {
      readonly f: 'cas';
      readonly key: string;
      readonly expected: string | null;
      readonly value: string;
    }
  /** Compare-and-set on the version; version 0 means "only if absent". */
  | {
      readonly f: 'casVersion';
      readonly key: string;
      readonly expectedVersion: number;
      readonly value: string;
    }
  | { readonly f: 'list'; readonly prefix: string; readonly limit: number };

export interface KvEntry {
  readonly key: string;
  readonly value: string;
  /** Number of writes to the key since it was last created (1 on creation). */
  readonly version: number;
  /** The store revision of the key's last write. */
  readonly modRevision: number;
}

export type KvResult =
  | { readonly f: 'get'; readonly entry: KvEntry | null; readonly revision: number }
  | { readonly f: 'put'; readonly revision: number; readonly version: number }
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
  readonly key: string;
  readonly value: string | null;
}

export interface KvLimits {
  /** Sessions remembered for exactly-once; the least recently used is forgotten past this. */
  readonly sessionsMax: number;
  /** Changes kept for watch (at least this many; up to twice); older ones are compacted away. */
  readonly changesMax: number;
  /** Largest `limit` a list may ask for. */
  readonly listMax: number;
}

export const defaultKvLimits: KvLimits = {
  sessionsMax: 10_000,
  changesMax: 10_000,
  listMax: 1_000,
};

interface Session {
  seq: number;
  result: KvResult;
}

/** A self-contained, JSON-serialisable image of the machine. */
export interface KvSnapshot {
  readonly appliedIndex: number;
  readonly revision: number;
  readonly entries: readonly KvEntry[];
  /** In least-recently-used order, so eviction continues identically after a restore. */
  readonly sessions: readonly (readonly [number, number, KvResult])[];
}

export class KvStateMachine {
  private readonly data = new Map<string, KvEntry>();
  private readonly sessions = new Map<number, Session>();
  private readonly changes: KvChange[] = [];
  private revision = 0;
  private applied = 0;

  constructor(private readonly limits: KvLimits = defaultKvLimits) {
    assert(
      limits.sessionsMax >= 1 && limits.changesMax >= 1 && limits.listMax >= 1,
      'kv limits must be >= 1',
    );
  }

  get appliedIndex(): number {
    return this.applied;
  }

  get currentRevision(): number {
    return this.revision;
  }

  get size(): number {
    return this.data.size;
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
  read(op: Extract<KvOp, { f: 'get' } | { f: 'list' }>): KvResult {
    return this.execute(op);
  }

  /** Changes after `revision`, oldest first; undefined if some were already compacted away. */
  changesSince(revision: number): readonly KvChange[] | undefined {
    const first = this.changes[0];
    if (first !== undefined && first.revision > revision + 1) return undefined;
    if (first === undefined && revision < this.revision) return undefined;
    if (first === undefined) return [];
    // Every write makes one change with the next revision, so they are contiguous: the host
    // asks after every batch, and a scan of the whole window was its hottest line.
    return this.changes.slice(Math.max(0, revision - first.revision + 1));
  }

  snapshot(): KvSnapshot {
    return {
      appliedIndex: this.applied,
      revision: this.revision,
      entries: [...this.data.values()],
      sessions: [...this.sessions].map(([id, s]) => [id, s.seq, s.result] as const),
    };
  }

  static restore(snap: KvSnapshot, limits: KvLimits = defaultKvLimits): KvStateMachine {
    const machine = new KvStateMachine(limits);
    machine.applied = snap.appliedIndex;
    machine.revision = snap.revision;
    for (const e of snap.entries) machine.data.set(e.key, e);
    for (const [id, seq, result] of snap.sessions) machine.sessions.set(id, { seq, result });
    return machine;
  }

  private execute(op: KvOp): KvResult {
    switch (op.f) {
      case 'get':
        return { f: 'get', entry: this.data.get(op.key) ?? null, revision: this.revision };
      case 'put':
        return this.write(op.key, op.value);
      case 'delete':
        return this.remove(op.key);
      case 'cas': {
        const entry = this.data.get(op.key) ?? null;
        if ((entry?.value ?? null) !== op.expected)
          return { f: 'cas', ok: false, entry, revision: this.revision };
        this.write(op.key, op.value);
        return {
          f: 'cas',
          ok: true,
          entry: this.data.get(op.key) ?? null,
          revision: this.revision,
        };
      }
      case 'casVersion': {
        const entry = this.data.get(op.key) ?? null;
        if ((entry?.version ?? 0) !== op.expectedVersion) {
          return { f: 'cas', ok: false, entry, revision: this.revision };
        }
        this.write(op.key, op.value);
        return {
          f: 'cas',
          ok: true,
          entry: this.data.get(op.key) ?? null,
          revision: this.revision,
        };
      }
      case 'list':
        return this.list(op.prefix, op.limit);
    }
  }

  private write(key: string, value: string): KvResult {
    this.revision++;
    const version = (this.data.get(key)?.version ?? 0) + 1;
    this.data.set(key, { key, value, version, modRevision: this.revision });
    this.recordChange({ revision: this.revision, key, value });
    return { f: 'put', revision: this.revision, version };
  }

  private remove(key: string): KvResult {
    if (!this.data.delete(key)) return { f: 'delete', deleted: false, revision: this.revision };
    this.revision++;
    this.recordChange({ revision: this.revision, key, value: null });
    return { f: 'delete', deleted: true, revision: this.revision };
  }

  private list(prefix: string, limit: number): KvResult {
    const capped = Math.max(1, Math.min(limit, this.limits.listMax));
    const keys = [...this.data.keys()].filter((k) => k.startsWith(prefix)).sort();
    const entries = keys.slice(0, capped).map((k) => this.data.get(k) as KvEntry);
    return { f: 'list', entries, more: keys.length > capped, revision: this.revision };
  }

  private recordChange(change: KvChange): void {
    this.changes.push(change);
    // Trim in bulk so each write costs O(1) amortised; at least changesMax stay watchable.
    if (this.changes.length >= 2 * this.limits.changesMax) {
      this.changes.splice(0, this.changes.length - this.limits.changesMax);
    }
  }
}
