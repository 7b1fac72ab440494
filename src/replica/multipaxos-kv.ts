import { assert, unreachable } from '../kernel/assert.ts';
import { type Core, OutputBuffer, type Ready } from '../kernel/core.ts';
import { type ClientId, NO_NODE, type NodeId } from '../kernel/ids.ts';
import type { Rng } from '../kernel/rng.ts';
import { type KvCommand, type KvOp, type KvReadOp, KvStateMachine } from '../kv/machine.ts';
import { isReadOp } from '../kv/validate.ts';
import { initialMultiDurable } from '../paxos/multi/durable.ts';
import { type MultiPaxosConfig, MultiPaxosNode } from '../paxos/multi/node.ts';
import type {
  Batch,
  MultiDelivery,
  MultiDurable,
  MultiEvent,
  MultiMsg,
  MultiPersist,
  MultiReply,
  MultiTypes,
} from '../paxos/multi/types.ts';
import type { ReplicaReply, ReplicaRequest } from './raft-kv.ts';
import { decodeKvSnapshot, encodeKvSnapshot } from './snapshot-codec.ts';

/**
 * A replica of the key-value service on Multi-Paxos: a `MultiPaxosNode` ordering
 * `KvCommand`s plus the `KvStateMachine` they are applied to, as one kernel `Core`. Its
 * requests and replies are the Raft replica's (`ReplicaRequest` of type `kv`,
 * `ReplicaReply`), so one workload adapter and one server engine serve both.
 *
 * - Writes carry the client's session and sequence number into the log; the state machine
 *   applies a retried command once (exactly-once), and the replica answers the waiting
 *   client when the command is applied here, whichever attempt got it chosen.
 * - Linearizable reads take the lease path (the leader answers from local state that has
 *   applied everything chosen when the read arrived) and fall back to the log (the get is
 *   ordered like a write) when the leader holds no lease.
 * - Every `snapshotEveryInstances` applied instances the state machine is snapshotted into
 *   the Paxos log, which then forgets the prefix.
 *
 * Durability: the Paxos core's batch is translated into this replica's batch and the core
 * is advanced only when the host advances the replica, so the core's durability rule
 * carries over unchanged. After a crash, `restore` rebuilds the state machine from the
 * durable snapshot and the chosen instances after it, exactly what the core re-derives.
 */
export type MultiKvRequest = Extract<ReplicaRequest, { type: 'kv' }>;
export type { ReplicaReply };

/** Snapshots travel and persist as bytes (`encodeKvSnapshot`), ready for a real WAL. */
export type MultiKvSnapshot = Uint8Array;

export interface MultiPaxosKvTypes {
  readonly msg: MultiMsg<KvCommand, MultiKvSnapshot>;
  readonly persist: MultiPersist<KvCommand, MultiKvSnapshot>;
  readonly deliver: MultiDelivery<KvCommand, MultiKvSnapshot>;
  readonly request: MultiKvRequest;
  readonly reply: ReplicaReply;
  readonly event: MultiEvent;
}

export type MultiKvDurable = MultiDurable<KvCommand, MultiKvSnapshot>;

export interface MultiKvReplicaOptions {
  /** Snapshot the state machine into the log every this many applied instances. */
  readonly snapshotEveryInstances: number;
  /** Client operations waiting for their command or read; more are refused as overloaded. */
  readonly pendingMax: number;
  /** A waiter older than this is answered `unknown` (its command may yet be applied). */
  readonly waitMaxMs: number;
  /** `lease`: leader-local reads under the lease, else through the log; `log`: always the log. */
  readonly reads: 'lease' | 'log';
}

export const defaultMultiKvReplicaOptions: MultiKvReplicaOptions = {
  snapshotEveryInstances: 1000,
  pendingMax: 10_000,
  waitMaxMs: 5_000,
  reads: 'lease',
};

interface Waiter {
  readonly client: ClientId;
  readonly id: number;
  readonly since: number;
}

/** A write (or a read ordered through the log), waiting for its command to be applied. */
interface CommandWaiter extends Waiter {
  readonly key: CommandKey;
}

interface LeaseRead extends Waiter {
  readonly req: MultiKvRequest & { readonly op: ReadOp };
  /** Serve once every instance below it is applied; -1 until the leader confirms. */
  readIndex: number;
}

type ReadOp = KvReadOp;

function isRead(op: KvOp): op is ReadOp {
  return isReadOp(op);
}

/**
 * Who waits for a command. A session command by (session, seq), so whichever attempt of a
 * retried write gets chosen answers the waiter. A command without a session (session 0: a
 * read ordered through the log, an anonymous write) by the object itself: nothing else
 * tells two of them apart, and the leader applies the very object it proposed.
 */
type CommandKey = string | KvCommand;

function commandKey(cmd: KvCommand): CommandKey {
  return cmd.session === 0 ? cmd : `${cmd.session}:${cmd.seq}`;
}

export class MultiPaxosKvReplica implements Core<MultiPaxosKvTypes> {
  readonly id: NodeId;
  private readonly out = new OutputBuffer<MultiPaxosKvTypes>();
  private coreBatchOut = false;
  private now = 0;
  private nextCoreRequestId = 1;
  /** Session:seq → who waits for that command to be applied here. */
  private readonly commands = new Map<CommandKey, CommandWaiter>();
  /** Core request id → the command it carries (replies from the core name request ids). */
  private readonly proposing = new Map<number, CommandKey>();
  private readonly reads = new Map<number, LeaseRead>();

  private constructor(
    readonly paxos: MultiPaxosNode<KvCommand, MultiKvSnapshot>,
    private kv: KvStateMachine,
    /** The last instance the state machine reflects. */
    private appliedInstance: number,
    private lastSnapshotInstance: number,
    private readonly options: MultiKvReplicaOptions,
  ) {
    assert(options.snapshotEveryInstances >= 1, 'snapshotEveryInstances must be >= 1');
    assert(options.pendingMax >= 1 && options.waitMaxMs > 0, 'bad replica limits');
    this.id = paxos.id;
    assert(
      paxos.commitIndex() === appliedInstance + 1,
      `state machine at instance ${appliedInstance}, log frontier at ${paxos.commitIndex()}`,
    );
  }

  /**
   * A replica from its durable state (`initialMultiDurable()` for a brand-new node): the
   * state machine is rebuilt from the snapshot and the contiguous chosen instances after it.
   */
  static restore(
    config: MultiPaxosConfig,
    rng: Rng,
    durable: MultiKvDurable = initialMultiDurable(),
    options: MultiKvReplicaOptions = defaultMultiKvReplicaOptions,
  ): MultiPaxosKvReplica {
    const snap = durable.snapshot;
    const kv = snap === null ? new KvStateMachine() : decodeKvSnapshot(snap.data);
    let applied = snap?.upTo ?? 0;
    for (let batch = durable.chosen.get(applied + 1); batch !== undefined; ) {
      applied++;
      applyBatch(kv, batch, () => {});
      batch = durable.chosen.get(applied + 1);
    }
    const paxos = new MultiPaxosNode<KvCommand, MultiKvSnapshot>(config, rng, durable);
    return new MultiPaxosKvReplica(paxos, kv, applied, snap?.upTo ?? 0, options);
  }

  /** The state machine, read-only use: stale reads, watch, status. */
  get machine(): KvStateMachine {
    return this.kv;
  }

  get lastApplied(): number {
    return this.appliedInstance;
  }

  pendingOperations(): number {
    return this.commands.size + this.reads.size;
  }

  tick(now: number): void {
    this.now = now;
    this.paxos.tick(now);
    this.expireWaiters();
  }

  receive(now: number, from: NodeId, msg: MultiMsg<KvCommand, MultiKvSnapshot>): void {
    this.now = now;
    this.paxos.receive(now, from, msg);
  }

  request(now: number, client: ClientId, req: MultiKvRequest): void {
    this.now = now;
    const op = req.op;
    if (req.stale && isRead(op)) {
      this.out.reply(client, { type: 'result', id: req.id, result: this.kv.read(op) });
      return;
    }
    if (this.pendingOperations() >= this.options.pendingMax) {
      this.out.reply(client, { type: 'rejected', id: req.id, reason: 'overloaded' });
      return;
    }
    if (isRead(op) && this.options.reads === 'lease') {
      const rid = this.nextCoreRequestId++;
      this.reads.set(rid, { client, id: req.id, since: now, req: { ...req, op }, readIndex: -1 });
      this.paxos.request(now, client, { type: 'read', id: rid });
      return;
    }
    this.propose(client, req);
  }

  deadline(): number {
    return this.paxos.deadline();
  }

  ready(): Ready<MultiPaxosKvTypes> | undefined {
    if (this.out.isOut()) return undefined;
    while (!this.coreBatchOut) {
      const rd = this.paxos.ready();
      if (rd === undefined) break;
      this.translate(rd);
      // A batch of nothing but 'proposed' acknowledgements carries nothing to the host.
      if (this.out.hasPending()) this.coreBatchOut = true;
      else this.paxos.advance();
    }
    return this.out.ready();
  }

  advance(): void {
    this.out.advance();
    if (this.coreBatchOut) {
      this.coreBatchOut = false;
      this.paxos.advance();
    }
  }

  /** Orders the client's command (a write, or a read through the log) in the Paxos log. */
  private propose(client: ClientId, req: MultiKvRequest): void {
    const command: KvCommand = { session: req.session, seq: req.seq, op: req.op };
    const key = commandKey(command);
    const rid = this.nextCoreRequestId++;
    this.commands.set(key, { client, id: req.id, since: this.now, key });
    this.proposing.set(rid, key);
    this.paxos.request(this.now, client, { type: 'command', id: rid, command });
  }

  private translate(rd: Ready<MultiTypes<KvCommand, MultiKvSnapshot>>): void {
    for (const p of rd.persist) this.out.persist(p);
    for (const m of rd.early) this.out.sendEarly(m.to, m.msg);
    for (const m of rd.messages) this.out.send(m.to, m.msg);
    // Deliveries before replies: a lease read's index counts instances delivered up to now.
    for (const d of rd.deliver) {
      this.applyDelivery(d);
      this.out.deliver(d);
    }
    for (const r of rd.replies) this.onCoreReply(r.reply);
    for (const e of rd.events) {
      this.out.emit(e);
      if (e.type === 'follower') this.abandonCommands();
    }
    this.serveReads();
    this.maybeSnapshot();
  }

  private applyDelivery(d: MultiDelivery<KvCommand, MultiKvSnapshot>): void {
    switch (d.type) {
      case 'chosen': {
        assert(
          d.instance === this.appliedInstance + 1,
          `instance ${d.instance} delivered after ${this.appliedInstance}`,
        );
        this.appliedInstance = d.instance;
        applyBatch(this.kv, d.value, (cmd, result) => {
          const waiter = this.commands.get(commandKey(cmd));
          if (waiter === undefined) return;
          this.commands.delete(waiter.key);
          this.out.reply(waiter.client, { type: 'result', id: waiter.id, result });
        });
        return;
      }
      case 'snapshot':
        assert(d.upTo > this.appliedInstance, 'a delivered snapshot moves the state forward');
        this.kv = decodeKvSnapshot(d.data);
        this.appliedInstance = d.upTo;
        this.lastSnapshotInstance = d.upTo;
        // Commands inside the snapshot were applied or not; this node cannot tell which.
        this.abandonCommands();
        return;
      default:
        unreachable(d, 'multi-paxos delivery');
    }
  }

  private onCoreReply(reply: MultiReply): void {
    const rid = reply.id;
    const read = this.reads.get(rid);
    if (read !== undefined) {
      this.onReadReply(rid, read, reply);
      return;
    }
    const key = this.proposing.get(rid);
    if (key === undefined) return;
    const waiter = this.commands.get(key);
    switch (reply.type) {
      case 'proposed':
        return; // the waiter stays until the command is applied or leadership is lost
      case 'notLeader':
        this.proposing.delete(rid);
        if (waiter === undefined) return;
        this.commands.delete(key);
        this.out.reply(waiter.client, {
          type: 'notLeader',
          id: waiter.id,
          leader: reply.leaderHint,
        });
        return;
      case 'unavailable':
        this.proposing.delete(rid);
        if (waiter === undefined) return;
        this.commands.delete(key);
        this.out.reply(waiter.client, { type: 'rejected', id: waiter.id, reason: 'overloaded' });
        return;
      case 'readOk':
        assert(false, `readOk for command request ${rid}`);
    }
  }

  private onReadReply(rid: number, read: LeaseRead, reply: MultiReply): void {
    switch (reply.type) {
      case 'readOk':
        read.readIndex = reply.readIndex;
        return;
      case 'notLeader':
        this.reads.delete(rid);
        this.out.reply(read.client, {
          type: 'notLeader',
          id: read.id,
          leader: reply.leaderHint,
        });
        return;
      case 'unavailable':
        // No lease (a new leader, or acks are late): order the read through the log instead.
        this.reads.delete(rid);
        this.propose(read.client, read.req);
        return;
      case 'proposed':
        assert(false, `proposed for read request ${rid}`);
    }
  }

  /** Answers every confirmed lease read whose index the state machine has reached. */
  private serveReads(): void {
    for (const [rid, read] of this.reads) {
      if (read.readIndex < 0 || read.readIndex - 1 > this.appliedInstance) continue;
      this.reads.delete(rid);
      this.out.reply(read.client, {
        type: 'result',
        id: read.id,
        result: this.kv.read(read.req.op),
      });
    }
  }

  /**
   * Leadership was lost (or a snapshot replaced the state): commands proposed here may
   * still be chosen under another leader, or be replaced by no-ops. The client retries with
   * the same session and sequence number, which the state machine applies at most once.
   */
  private abandonCommands(): void {
    for (const w of this.commands.values()) {
      this.out.reply(w.client, { type: 'unknown', id: w.id });
    }
    this.commands.clear();
    this.proposing.clear();
  }

  private expireWaiters(): void {
    const cutoff = this.now - this.options.waitMaxMs;
    for (const w of this.commands.values()) {
      if (w.since > cutoff) continue;
      this.commands.delete(w.key);
      this.out.reply(w.client, { type: 'unknown', id: w.id });
    }
    for (const [rid, read] of this.reads) {
      if (read.since > cutoff) continue;
      this.reads.delete(rid);
      this.out.reply(read.client, { type: 'notLeader', id: read.id, leader: NO_NODE });
    }
    if (this.commands.size === 0) this.proposing.clear();
  }

  private maybeSnapshot(): void {
    const applied = this.appliedInstance;
    if (applied - this.lastSnapshotInstance < this.options.snapshotEveryInstances) return;
    this.lastSnapshotInstance = applied;
    this.paxos.compact(applied, encodeKvSnapshot(this.kv.snapshot()));
  }
}

/** Applies one chosen batch, command by command; `each` sees every command's result. */
function applyBatch(
  kv: KvStateMachine,
  batch: Batch<KvCommand>,
  each: (cmd: KvCommand, result: ReturnType<KvStateMachine['apply']>) => void,
): void {
  for (const c of batch) each(c.command, kv.apply(kv.appliedIndex + 1, c.command));
}
