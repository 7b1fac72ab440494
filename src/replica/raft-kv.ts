import { assert, unreachable } from '../kernel/assert.ts';
import { type Core, OutputBuffer, type Ready } from '../kernel/core.ts';
import type { ClientId, NodeId } from '../kernel/ids.ts';
import type { Rng } from '../kernel/rng.ts';
import {
  type KvCommand,
  type KvLimits,
  type KvOp,
  type KvReadOp,
  type KvResult,
  KvStateMachine,
} from '../kv/machine.ts';
import { isReadOp } from '../kv/validate.ts';
import type { RaftOptions } from '../raft/config.ts';
import { RaftCore, type RaftStatus } from '../raft/core.ts';
import type { RaftDurableState } from '../raft/durable.ts';
import type {
  MembershipChange,
  RaftConfig,
  RaftDeliver,
  RaftEvent,
  RaftMsg,
  RaftPersist,
  RaftReply,
  RaftTypes,
  RejectReason,
} from '../raft/types.ts';
import { decodeKvSnapshot, KvSnapshotEncoder } from './snapshot-codec.ts';

/**
 * A replica of the key-value service on Raft: a `RaftCore` ordering `KvCommand`s plus the
 * `KvStateMachine` they are applied to, exposed as one kernel `Core` whose requests are
 * client operations and whose replies are their results. The simulator hosts it for
 * `quorate sim raft`, and the Node runtime hosts it for real nodes, so both run the exact
 * same code between the wire and the state machine.
 *
 * Batches: the Raft core's batch is translated into this replica's batch (persist and
 * messages pass through; deliveries are applied and answered) and the core is advanced only
 * when the host advances the replica, so the Raft durability rule carries over unchanged.
 * Every answer is an early reply (kernel `Ready`, rule 4): a result is for an entry that is
 * committed, so durable on a quorum whatever this batch writes, or for a read of committed
 * state; refusals depend on nothing durable. A client of a busy leader is then answered
 * while the leader writes newer entries, not after.
 */
export type ReplicaRequest =
  | {
      readonly type: 'kv';
      readonly id: number;
      /** Client session and sequence number: a retried write is applied once. */
      readonly session: number;
      readonly seq: number;
      readonly op: KvOp;
      /** Serve a get/list from local state without confirming leadership. */
      readonly stale?: boolean;
      /** The follower that forwarded this write for its client (Raft's commit hints go there). */
      readonly origin?: NodeId | undefined;
    }
  | { readonly type: 'changeMembership'; readonly id: number; readonly change: MembershipChange }
  | { readonly type: 'transferLeadership'; readonly id: number; readonly to: NodeId }
  | { readonly type: 'campaign'; readonly id: number }
  /**
   * Answer with the result of write `seq` of `session` once this replica has applied it, on
   * any member: what a follower that forwarded a client's write does with a commit hint. No
   * answer if it never applies here (the asker also waits for the leader's).
   */
  | {
      readonly type: 'awaitApplied';
      readonly id: number;
      readonly session: number;
      readonly seq: number;
    };

export type ReplicaReply =
  | { readonly type: 'result'; readonly id: number; readonly result: KvResult }
  /** Not handled: not the leader. Nothing was applied. */
  | { readonly type: 'notLeader'; readonly id: number; readonly leader: NodeId }
  /** Refused before it was proposed. Nothing was applied by this attempt. */
  | { readonly type: 'rejected'; readonly id: number; readonly reason: RejectReason | 'overloaded' }
  /**
   * The entry proposed for it was overwritten or compacted before this node could see its
   * result: it may or may not have been applied. Retry with the same session and seq.
   */
  | { readonly type: 'unknown'; readonly id: number }
  /** A membership change, transfer or campaign was carried out or started. */
  | { readonly type: 'done'; readonly id: number };

export interface RaftKvTypes {
  readonly msg: RaftMsg<KvCommand>;
  readonly persist: RaftPersist<KvCommand>;
  readonly deliver: RaftDeliver<KvCommand>;
  readonly request: ReplicaRequest;
  readonly reply: ReplicaReply;
  readonly event: RaftEvent;
}

export interface ReplicaOptions {
  /** Compact the Raft log into a snapshot every this many applied entries. */
  readonly snapshotEveryEntries: number;
  /** Client operations waiting for their entry or read round; more are refused. */
  readonly pendingMax: number;
  /** The state machine's bounds (default `defaultKvLimits`). */
  readonly kvLimits?: KvLimits;
}

export const defaultReplicaOptions: ReplicaOptions = {
  snapshotEveryEntries: 1000,
  pendingMax: 10_000,
};

interface Waiter {
  readonly client: ClientId;
  readonly id: number;
}

interface WriteWaiter extends Waiter {
  readonly term: number;
}

interface ReadWaiter extends Waiter {
  readonly op: KvReadOp;
  /** The index the read is linearizable at once applied; -1 while its round is pending. */
  index: number;
}

interface AppliedWaiter extends Waiter {
  readonly session: number;
  readonly seq: number;
}

/** Bounds `awaitApplied` requests never answered (their session was evicted meanwhile). */
const APPLIED_WAITERS_MAX = 1000;

/** The client id the replica uses for its own requests to the Raft core (compaction). */
const SELF: ClientId = 0;

export class RaftKvReplica implements Core<RaftKvTypes> {
  readonly id: NodeId;
  private kv: KvStateMachine;
  private readonly out = new OutputBuffer<RaftKvTypes>();
  private raftBatchOut = false;
  private now = 0;
  private nextRaftRequestId = 1;
  private lastCompactIndex = 0;
  /** A compaction's snapshot being encoded, a slice per input (see `maybeCompact`). */
  private compaction: KvSnapshotEncoder | undefined;
  /** Raft request id → who asked, until Raft says where the entry went. */
  private readonly proposing = new Map<number, Waiter>();
  /** Log index → who waits for the entry there. */
  private readonly writes = new Map<number, WriteWaiter>();
  private readonly reads = new Map<number, ReadWaiter>();
  private readonly admin = new Map<number, Waiter>();
  /** `awaitApplied` requests, oldest first; beyond APPLIED_WAITERS_MAX the oldest go. */
  private readonly appliedWaiters = new Map<number, AppliedWaiter>();
  private nextAppliedWaiter = 1;

  private constructor(
    readonly raft: RaftCore<KvCommand>,
    private readonly options: ReplicaOptions,
  ) {
    assert(options.snapshotEveryEntries >= 1 && options.pendingMax >= 1, 'bad replica options');
    this.kv = new KvStateMachine(options.kvLimits);
    this.id = raft.id;
  }

  /** A brand-new replica under `config` (an empty config for a node that will be added). */
  static create(
    id: NodeId,
    config: RaftConfig,
    raftOptions: RaftOptions<KvCommand>,
    rng: Rng,
    options: ReplicaOptions = defaultReplicaOptions,
  ): RaftKvReplica {
    return new RaftKvReplica(RaftCore.create(id, config, raftOptions, rng), options);
  }

  /**
   * A replica restarting from its durable Raft state. The state machine is rebuilt in memory:
   * the core re-delivers the snapshot and every committed entry after it.
   */
  static restore(
    id: NodeId,
    durable: RaftDurableState<KvCommand>,
    raftOptions: RaftOptions<KvCommand>,
    rng: Rng,
    options: ReplicaOptions = defaultReplicaOptions,
  ): RaftKvReplica {
    const replica = new RaftKvReplica(RaftCore.restore(id, durable, raftOptions, rng), options);
    replica.lastCompactIndex = durable.snapshot.meta.index;
    return replica;
  }

  /** The state machine, read-only use: stale reads, watch, status. */
  get machine(): KvStateMachine {
    return this.kv;
  }

  status(): RaftStatus {
    return this.raft.status();
  }

  pendingOperations(): number {
    return this.proposing.size + this.writes.size + this.reads.size + this.admin.size;
  }

  tick(now: number): void {
    this.now = now;
    this.raft.tick(now);
    this.continueCompaction();
  }

  receive(now: number, from: NodeId, msg: RaftMsg<KvCommand>): void {
    this.now = now;
    this.raft.receive(now, from, msg);
  }

  request(now: number, client: ClientId, req: ReplicaRequest): void {
    this.now = now;
    if (req.type === 'kv' && req.stale && isReadOp(req.op)) {
      this.out.replyEarly(client, { type: 'result', id: req.id, result: this.kv.read(req.op) });
      return;
    }
    if (req.type === 'awaitApplied') {
      this.awaitApplied(client, req);
      return;
    }
    if (this.pendingOperations() >= this.options.pendingMax) {
      this.out.replyEarly(client, { type: 'rejected', id: req.id, reason: 'overloaded' });
      return;
    }
    const rid = this.nextRaftRequestId++;
    switch (req.type) {
      case 'kv':
        if (isReadOp(req.op)) {
          this.reads.set(rid, { client, id: req.id, op: req.op, index: -1 });
          this.raft.request(now, client, { type: 'read', id: rid });
        } else {
          this.proposing.set(rid, { client, id: req.id });
          const data: KvCommand = { session: req.session, seq: req.seq, op: req.op };
          this.raft.request(now, client, { type: 'propose', id: rid, data, origin: req.origin });
        }
        return;
      case 'changeMembership':
      case 'transferLeadership':
      case 'campaign':
        this.admin.set(rid, { client, id: req.id });
        this.raft.request(now, client, { ...req, id: rid });
        return;
      default:
        unreachable(req, 'replica request');
    }
  }

  deadline(): number {
    return this.raft.deadline();
  }

  ready(): Ready<RaftKvTypes> | undefined {
    if (this.out.isOut()) return undefined;
    while (!this.raftBatchOut) {
      const rd = this.raft.ready();
      if (rd === undefined) break;
      this.raftBatchOut = true;
      this.translate(rd);
      if (this.out.hasPending()) break;
      // Nothing for the host to do (a read confirmed at an index not applied yet waits here):
      // the Raft batch is carried out already.
      this.raftBatchOut = false;
      this.raft.advance();
    }
    return this.out.ready();
  }

  advance(): void {
    this.out.advance();
    if (this.raftBatchOut) {
      this.raftBatchOut = false;
      this.raft.advance();
    }
  }

  private translate(rd: Ready<RaftTypes<KvCommand>>): void {
    for (const p of rd.persist) this.out.persist(p);
    for (const m of rd.early) this.out.sendEarly(m.to, m.msg);
    for (const m of rd.messages) this.out.send(m.to, m.msg);
    // Replies first: an entry proposed and committed within one batch (a single voter) is
    // delivered in the same batch as its 'accepted', which registers who waits for it.
    for (const r of rd.replies) this.onRaftReply(r.reply);
    for (const d of rd.deliver) {
      this.applyDelivery(d);
      this.out.deliver(d);
    }
    for (const e of rd.events) {
      this.out.emit(e);
      if (e.type === 'roleChanged' && e.role !== 'leader') this.abandonUnconfirmedReads(e.leader);
    }
    this.serveReads();
    if (rd.deliver.length > 0) this.serveAppliedWaiters();
    this.maybeCompact();
  }

  private awaitApplied(client: ClientId, req: Extract<ReplicaRequest, { type: 'awaitApplied' }>) {
    if (req.session === 0) return;
    const result = this.kv.resultOf(req.session, req.seq);
    if (result !== undefined) {
      this.out.replyEarly(client, { type: 'result', id: req.id, result });
      return;
    }
    this.appliedWaiters.set(this.nextAppliedWaiter++, { client, ...req });
    if (this.appliedWaiters.size > APPLIED_WAITERS_MAX) {
      this.appliedWaiters.delete(this.appliedWaiters.keys().next().value as number);
    }
  }

  /**
   * Results of applied entries: early replies (committed state). A waiter whose session has
   * applied a later command since is dropped unanswered: its result is no longer kept.
   */
  private serveAppliedWaiters(): void {
    for (const [key, w] of this.appliedWaiters) {
      const last = this.kv.lastSeqOf(w.session);
      if (last === undefined || last < w.seq) continue;
      this.appliedWaiters.delete(key);
      const result = this.kv.resultOf(w.session, w.seq);
      if (result !== undefined) this.out.replyEarly(w.client, { type: 'result', id: w.id, result });
    }
  }

  private applyDelivery(d: RaftDeliver<KvCommand>): void {
    if (d.kind === 'snapshot') {
      const index = d.snapshot.meta.index;
      this.kv =
        d.snapshot.data.length === 0
          ? new KvStateMachine(this.options.kvLimits)
          : decodeKvSnapshot(d.snapshot.data, this.options.kvLimits);
      assert(
        this.kv.appliedIndex === index,
        `snapshot data at ${this.kv.appliedIndex}, meta at ${index}`,
      );
      this.lastCompactIndex = Math.max(this.lastCompactIndex, index);
      // The leader's snapshot covers at least as much as one being encoded here.
      if ((this.compaction?.snapshot.appliedIndex ?? 0) <= index) this.compaction = undefined;
      // Entries inside the snapshot were applied or overwritten; which, this node cannot tell.
      for (const [i, w] of this.writes) {
        if (i > index) continue;
        this.writes.delete(i);
        this.out.replyEarly(w.client, { type: 'unknown', id: w.id });
      }
      return;
    }
    const entry = d.entry;
    const result = entry.kind === 'normal' ? this.kv.apply(entry.index, entry.data) : undefined;
    if (result === undefined) this.kv.skip(entry.index);
    const waiter = this.writes.get(entry.index);
    if (waiter === undefined) return;
    this.writes.delete(entry.index);
    if (waiter.term !== entry.term) {
      this.out.replyEarly(waiter.client, { type: 'unknown', id: waiter.id });
    } else if (entry.kind === 'config') {
      // A membership change's own entry committed: the change is in effect.
      this.out.replyEarly(waiter.client, { type: 'done', id: waiter.id });
    } else if (result !== undefined) {
      this.out.replyEarly(waiter.client, { type: 'result', id: waiter.id, result });
    } else {
      this.out.replyEarly(waiter.client, { type: 'unknown', id: waiter.id });
    }
  }

  private onRaftReply(reply: RaftReply): void {
    const rid = reply.id;
    if (this.reads.has(rid)) {
      this.onReadReply(rid, reply);
      return;
    }
    const waiter = this.proposing.get(rid) ?? this.admin.get(rid);
    if (waiter === undefined) return; // the replica's own compaction request
    this.proposing.delete(rid);
    this.admin.delete(rid);
    switch (reply.type) {
      case 'accepted':
        this.writes.set(reply.index, { client: waiter.client, id: waiter.id, term: reply.term });
        return;
      case 'notLeader':
        this.out.replyEarly(waiter.client, {
          type: 'notLeader',
          id: waiter.id,
          leader: reply.leaderHint,
        });
        return;
      case 'rejected':
        this.out.replyEarly(waiter.client, {
          type: 'rejected',
          id: waiter.id,
          reason: reply.reason,
        });
        return;
      case 'done':
        this.out.replyEarly(waiter.client, { type: 'done', id: waiter.id });
        return;
      case 'readReady':
        assert(false, `readReady for non-read request ${rid}`);
    }
  }

  private onReadReply(rid: number, reply: RaftReply): void {
    const read = this.reads.get(rid) as ReadWaiter;
    switch (reply.type) {
      case 'readReady':
        read.index = reply.index;
        return;
      case 'notLeader':
        this.reads.delete(rid);
        this.out.replyEarly(read.client, {
          type: 'notLeader',
          id: read.id,
          leader: reply.leaderHint,
        });
        return;
      case 'rejected':
        this.reads.delete(rid);
        this.out.replyEarly(read.client, { type: 'rejected', id: read.id, reason: reply.reason });
        return;
      case 'accepted':
      case 'done':
        assert(false, `unexpected ${reply.type} for read ${rid}`);
    }
  }

  /** Answers every confirmed read whose index the state machine has reached. */
  private serveReads(): void {
    for (const [rid, read] of this.reads) {
      if (read.index < 0 || read.index > this.kv.appliedIndex) continue;
      this.reads.delete(rid);
      this.out.replyEarly(read.client, {
        type: 'result',
        id: read.id,
        result: this.kv.read(read.op),
      });
    }
  }

  /**
   * Reads still waiting for their heartbeat round when this node stops leading can never be
   * confirmed by it; reads are side-effect free, so the client can simply go elsewhere.
   */
  private abandonUnconfirmedReads(leader: NodeId): void {
    for (const [rid, read] of this.reads) {
      if (read.index >= 0) continue;
      this.reads.delete(rid);
      this.out.replyEarly(read.client, { type: 'notLeader', id: read.id, leader });
    }
  }

  /**
   * Every `snapshotEveryEntries` applied entries, snapshots the state machine and hands it to
   * the core to compact the log. The snapshot is a view of immutable records, taken at once;
   * its encoding proceeds a slice per input (batch or tick), so a large state does not stop
   * the node for the whole encoding. A small one is done within this call.
   */
  private maybeCompact(): void {
    const applied = this.kv.appliedIndex;
    if (this.compaction !== undefined) {
      this.continueCompaction();
      return;
    }
    if (applied - this.lastCompactIndex < this.options.snapshotEveryEntries) return;
    this.lastCompactIndex = applied;
    this.compaction = new KvSnapshotEncoder(this.kv.snapshot());
    this.continueCompaction();
  }

  private continueCompaction(): void {
    const encoding = this.compaction;
    if (encoding === undefined || !encoding.step()) return;
    this.compaction = undefined;
    this.raft.request(this.now, SELF, {
      type: 'compact',
      id: this.nextRaftRequestId++,
      index: encoding.snapshot.appliedIndex,
      data: encoding.result(),
    });
  }
}
