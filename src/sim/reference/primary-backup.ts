import { assert } from '../../kernel/assert.ts';
import { type Core, type CoreTypes, OutputBuffer, type Ready } from '../../kernel/core.ts';
import type { ClientId, NodeId } from '../../kernel/ids.ts';
import type { KvOp } from '../workload/kv.ts';

/**
 * A TEST FIXTURE, deliberately unsafe: a primary-backup register with no fencing and no
 * quorum. The node with the lowest id it believes alive is primary; the primary applies
 * each operation, replicates writes to the backups it believes alive and answers once they
 * acknowledged. Without faults that is linearizable. A backup that stops hearing the
 * primary for `suspectAfterMs` takes over on its own, so a partition yields two primaries
 * that accept writes (lost on heal) and serve stale reads: exactly what the simulator and
 * the linearizability checker must catch, proving the harness can fail.
 */
export type PbMsg =
  | { readonly type: 'heartbeat' }
  | {
      readonly type: 'replicate';
      readonly write: number;
      readonly key: string;
      readonly value: string | null;
      readonly seq: number;
    }
  | { readonly type: 'ack'; readonly write: number };

/** One key's value and the sequence number of the write that set it. */
export interface PbRecord {
  readonly key: string;
  readonly value: string | null;
  readonly seq: number;
}

export interface PbRequest {
  readonly id: number;
  readonly op: KvOp;
}

export type PbReply =
  | { readonly id: number; readonly kind: 'ok'; readonly value: string | null }
  | { readonly id: number; readonly kind: 'fail'; readonly reason: string }
  | { readonly id: number; readonly kind: 'redirect'; readonly hint: NodeId };

export type PbEvent = { readonly type: 'primary'; readonly primary: NodeId };

export interface PbTypes extends CoreTypes {
  readonly msg: PbMsg;
  readonly persist: PbRecord;
  readonly deliver: PbRecord;
  readonly request: PbRequest;
  readonly reply: PbReply;
  readonly event: PbEvent;
}

/** The disk: the latest record per key. */
export type PbDurable = Map<string, PbRecord>;

export interface PbSettings {
  readonly heartbeatMs: number;
  readonly suspectAfterMs: number;
  readonly retransmitMs: number;
  /** Writes awaiting backup acks; more are refused (a definite failure). */
  readonly pendingWritesMax: number;
}

export const defaultPbSettings: PbSettings = {
  heartbeatMs: 10,
  suspectAfterMs: 100,
  retransmitMs: 30,
  pendingWritesMax: 64,
};

interface PendingWrite {
  readonly client: ClientId;
  readonly requestId: number;
  readonly record: PbRecord;
  readonly waiting: Set<NodeId>;
  lastSentAt: number;
}

export class PrimaryBackupCore implements Core<PbTypes> {
  private readonly out = new OutputBuffer<PbTypes>();
  private readonly store: Map<string, PbRecord>;
  private readonly peers: NodeId[];
  private readonly lastHeard = new Map<NodeId, number>();
  private readonly pending = new Map<number, PendingWrite>();
  private maxSeq = 0;
  private nextWrite = 0;
  private nextHeartbeatAt: number;
  private primary: NodeId;

  constructor(
    readonly id: NodeId,
    members: readonly NodeId[],
    durable: PbDurable | undefined,
    now: number,
    private readonly settings: PbSettings = defaultPbSettings,
  ) {
    assert(members.includes(id), `node ${id} is not a member`);
    assert(settings.suspectAfterMs > settings.heartbeatMs, 'suspect only after missed heartbeats');
    assert(settings.pendingWritesMax >= 1, 'pendingWritesMax must be >= 1');
    this.store = new Map(durable);
    for (const r of this.store.values()) this.maxSeq = Math.max(this.maxSeq, r.seq);
    this.peers = members.filter((m) => m !== id);
    for (const p of this.peers) this.lastHeard.set(p, now);
    this.nextHeartbeatAt = now;
    this.primary = Math.min(...members);
  }

  tick(now: number): void {
    if (now >= this.nextHeartbeatAt) {
      for (const p of this.peers) this.out.send(p, HEARTBEAT);
      this.nextHeartbeatAt = now + this.settings.heartbeatMs;
    }
    this.updatePrimary(now);
    for (const [write, w] of this.pending) {
      for (const p of w.waiting) if (this.suspects(p, now)) w.waiting.delete(p);
      if (this.maybeFinish(write, w)) continue;
      if (now - w.lastSentAt >= this.settings.retransmitMs) {
        for (const p of w.waiting) this.out.send(p, replicateOf(write, w.record));
        w.lastSentAt = now;
      }
    }
  }

  receive(now: number, from: NodeId, msg: PbMsg): void {
    this.lastHeard.set(from, now);
    switch (msg.type) {
      case 'heartbeat':
        return;
      case 'replicate':
        this.apply({ key: msg.key, value: msg.value, seq: msg.seq });
        this.out.send(from, { type: 'ack', write: msg.write });
        return;
      case 'ack': {
        const w = this.pending.get(msg.write);
        if (w === undefined) return;
        w.waiting.delete(from);
        this.maybeFinish(msg.write, w);
        return;
      }
    }
  }

  request(now: number, client: ClientId, req: PbRequest): void {
    this.updatePrimary(now);
    if (this.primary !== this.id) {
      this.out.reply(client, { id: req.id, kind: 'redirect', hint: this.primary });
      return;
    }
    const op = req.op;
    const current = this.store.get(op.key)?.value ?? null;
    if (op.f === 'get') {
      this.out.reply(client, { id: req.id, kind: 'ok', value: current });
      return;
    }
    if (op.f === 'cas' && current !== op.expected) {
      this.out.reply(client, { id: req.id, kind: 'fail', reason: 'cas mismatch' });
      return;
    }
    if (this.pending.size >= this.settings.pendingWritesMax) {
      this.out.reply(client, { id: req.id, kind: 'fail', reason: 'too many pending writes' });
      return;
    }
    const value = op.f === 'delete' ? null : op.value;
    const record: PbRecord = { key: op.key, value, seq: this.maxSeq + 1 };
    this.apply(record);
    const write = ++this.nextWrite;
    const waiting = new Set(this.peers.filter((p) => !this.suspects(p, now)));
    const w: PendingWrite = { client, requestId: req.id, record, waiting, lastSentAt: now };
    for (const p of waiting) this.out.send(p, replicateOf(write, record));
    this.pending.set(write, w);
    this.maybeFinish(write, w);
  }

  deadline(): number {
    return this.nextHeartbeatAt;
  }

  ready(): Ready<PbTypes> | undefined {
    return this.out.ready();
  }

  advance(): void {
    this.out.advance();
  }

  /** Which node this one currently takes for the primary (for tests and monitors). */
  believedPrimary(): NodeId {
    return this.primary;
  }

  private apply(record: PbRecord): void {
    const old = this.store.get(record.key);
    this.maxSeq = Math.max(this.maxSeq, record.seq);
    if (old !== undefined && old.seq >= record.seq) return;
    this.store.set(record.key, record);
    this.out.persist(record);
    this.out.deliver(record);
  }

  private maybeFinish(write: number, w: PendingWrite): boolean {
    if (w.waiting.size > 0) return false;
    this.pending.delete(write);
    this.out.reply(w.client, { id: w.requestId, kind: 'ok', value: w.record.value });
    return true;
  }

  private suspects(peer: NodeId, now: number): boolean {
    return (
      now - (this.lastHeard.get(peer) ?? Number.NEGATIVE_INFINITY) > this.settings.suspectAfterMs
    );
  }

  private updatePrimary(now: number): void {
    let primary = this.id;
    for (const p of this.peers) if (p < primary && !this.suspects(p, now)) primary = p;
    if (primary === this.primary) return;
    this.primary = primary;
    this.out.emit({ type: 'primary', primary });
  }
}

/** Heartbeats carry nothing, so one immutable object serves them all. */
const HEARTBEAT: PbMsg = { type: 'heartbeat' };

function replicateOf(write: number, r: PbRecord): PbMsg {
  return { type: 'replicate', write, key: r.key, value: r.value, seq: r.seq };
}
