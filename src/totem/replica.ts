import { assert, unreachable } from '../kernel/assert.ts';
import { type Core, OutputBuffer, type Ready } from '../kernel/core.ts';
import type { ClientId, NodeId } from '../kernel/ids.ts';
import type { TotemConfig } from './config.ts';
import { TotemNode, type TotemUnsafeTestingFaults } from './node.ts';
import {
  applyTotemPersist,
  type ConfigChange,
  type Delivered,
  type DeliveryMode,
  EMPTY_TOTEM_DURABLE,
  NO_RING,
  type RingId,
  ringCompare,
  ringEquals,
  type TotemDeliver,
  type TotemDurable,
  type TotemEvent,
  type TotemMsg,
  type TotemPersist,
  type TotemReply,
  type TotemStatus,
} from './types.ts';

/**
 * Totem as a replicated state machine: commands go round the ring as safe messages and every
 * member applies them in delivery order, in the primary component only (a majority of the
 * configured members, as corosync's votequorum decides). Written against a state machine
 * interface so this layer needs only the kernel; src/sim/totem/kv.ts binds the KV machine.
 *
 * Why safe, not agreed: an agreed delivery at one member says nothing about the others; if
 * the ring then partitions, the majority side may never see a command the minority side
 * applied and acknowledged. Safe delivery in a regular configuration means every member of
 * it holds the command, so every survivor applies it (in the regular or the transitional
 * configuration) and the next primary component contains it.
 *
 * Why durable, and why an answer waits two more token visits: a member that crashes loses
 * what it held in memory. Each member persists every command it applies (in the batch that
 * forwards the token, so before the token leaves), and the member that answers waits until
 * the token has visited it twice more in the same ring: by then every member has delivered
 * the command safe and made it durable, so any later majority holds it, even if all of them
 * crashed in between.
 *
 * Rules (Amir et al.'s primary-component replication over EVS, simplified):
 * - Commands are answered with their result only when applied in a regular configuration
 *   that is primary and in which this member is synchronised. A command applied in a
 *   transitional configuration (after a primary one) is applied, not answered: writes are
 *   `unknown`, reads refused, since the next primary may not contain what we saw.
 * - Outside the primary component every command is refused, definitely not applied: all
 *   members of a configuration see the same messages in the same order and refuse alike.
 * - A new primary configuration first synchronises: each member publishes its status (the
 *   last primary ring it was synchronised in, and how many commands it applied); once all
 *   statuses are delivered, the member with the newest state publishes its snapshot, and
 *   every member loads it. Commands delivered before the snapshot are refused everywhere.
 */

/** A deterministic state machine: the same commands in the same order give the same results. */
export interface ReplicatedMachine<Cmd, Res> {
  /** Commands applied since the machine's empty state (a snapshot carries the count on). */
  applied(): number;
  apply(cmd: Cmd): Res;
  snapshot(): Uint8Array;
}

/** How to make, restore and carry one kind of state machine over the ring. */
export interface MachineBinding<Cmd, Res> {
  empty(): ReplicatedMachine<Cmd, Res>;
  /** Undefined when the bytes are not a snapshot of this machine. */
  restore(bytes: Uint8Array): ReplicatedMachine<Cmd, Res> | undefined;
  encode(cmd: Cmd): Uint8Array;
  /** Undefined when the bytes are not a command (a foreign or corrupt message). */
  decode(bytes: Uint8Array): Cmd | undefined;
  /** Whether a command only reads: a read applied where it cannot be answered is refused. */
  isRead(cmd: Cmd): boolean;
}

export interface ReplicaSettings {
  /** Commands applied between two persisted snapshots of the machine. */
  readonly logMax: number;
  /** Delivery mode of commands; `agreed` is unsafe across a configuration change (tests only). */
  readonly mode: DeliveryMode;
  /** Commands waiting for their result at this member. */
  readonly awaitingMax: number;
}

export const REPLICA_DEFAULTS: ReplicaSettings = { mode: 'safe', awaitingMax: 10_000, logMax: 500 };

/** Deliberately broken behaviour for the simulator's broken-variant tests. Never set outside tests. */
export interface ReplicaUnsafeTestingFaults {
  /** Treat every configuration as primary: a minority component accepts writes and reads. */
  readonly minorityIsPrimary?: boolean;
  /** Answer as soon as the command is applied here, before every member made it durable. */
  readonly answerAtApply?: boolean;
}

export type ReplicaRefusal = 'not-primary' | 'not-synced' | 'backpressure' | 'too-large';

export type ReplicaRequest<Cmd> =
  | { readonly type: 'command'; readonly attempt: number; readonly cmd: Cmd }
  | { readonly type: 'status' };

export type ReplicaReply<Res> =
  /** Applied in the primary component; `result` is the state machine's. */
  | { readonly type: 'applied'; readonly attempt: number; readonly result: Res }
  /** Definitely not applied (anywhere: every member of the configuration refused it alike). */
  | { readonly type: 'refused'; readonly attempt: number; readonly reason: ReplicaRefusal }
  /** Applied in a transitional configuration: it may or may not survive. */
  | { readonly type: 'unknown'; readonly attempt: number }
  | { readonly type: 'status'; readonly status: ReplicaStatus };

export interface ReplicaStatus extends TotemStatus {
  readonly primary: boolean;
  readonly synced: boolean;
  readonly lastPrimary: RingId;
  readonly applied: number;
}

/** What a member persists beyond the ring's own state. */
export type ReplicaPersist<Cmd> =
  | TotemPersist
  /** A command applied, in apply order. */
  | { readonly type: 'apply'; readonly cmd: Cmd }
  /** The whole machine (at a synchronisation, or to compact the applied commands). */
  | { readonly type: 'machine'; readonly lastPrimary: RingId; readonly snapshot: Uint8Array };

export interface ReplicaDurable<Cmd> {
  readonly ring: TotemDurable;
  readonly lastPrimary: RingId;
  readonly snapshot: Uint8Array | undefined;
  /** Commands applied after the snapshot. */
  readonly log: readonly Cmd[];
}

export function emptyReplicaDurable<Cmd>(): ReplicaDurable<Cmd> {
  return { ring: EMPTY_TOTEM_DURABLE, lastPrimary: NO_RING, snapshot: undefined, log: [] };
}

export function applyReplicaPersist<Cmd>(
  d: ReplicaDurable<Cmd>,
  p: ReplicaPersist<Cmd>,
): ReplicaDurable<Cmd> {
  switch (p.type) {
    case 'boot':
    case 'ringSeq':
      return { ...d, ring: applyTotemPersist(d.ring, p) };
    case 'apply':
      return { ...d, log: [...d.log, p.cmd] };
    case 'machine':
      return { ...d, lastPrimary: p.lastPrimary, snapshot: p.snapshot.slice(), log: [] };
    default:
      return unreachable(p, 'persist');
  }
}

export interface ReplicaTypes<Cmd, Res> {
  readonly msg: TotemMsg;
  readonly persist: ReplicaPersist<Cmd>;
  readonly deliver: TotemDeliver;
  readonly request: ReplicaRequest<Cmd>;
  readonly reply: ReplicaReply<Res>;
  readonly event: TotemEvent;
}

const KIND_COMMAND = 1;
const KIND_STATUS = 2;
const KIND_SNAPSHOT = 3;
const KIND_EMPTY_SNAPSHOT = 4;

/** A sync status: what a member brings to a new primary configuration. */
interface SyncStatus {
  readonly lastPrimary: RingId;
  readonly applied: number;
}

/** An answer held until the token has visited us twice more in the ring it was applied in. */
interface Held<Res> {
  readonly client: ClientId;
  readonly attempt: number;
  readonly read: boolean;
  readonly result: Res;
  readonly visit: number;
}

interface Awaiting {
  readonly client: ClientId;
  readonly attempt: number;
  readonly read: boolean;
}

export class TotemReplica<Cmd, Res> implements Core<ReplicaTypes<Cmd, Res>> {
  readonly id: NodeId;
  readonly ring: TotemNode;
  private readonly out = new OutputBuffer<ReplicaTypes<Cmd, Res>>();
  private readonly boot: number;
  private readonly majority: number;
  private machine: ReplicatedMachine<Cmd, Res> | undefined = undefined;
  private regular: ConfigChange | undefined = undefined;
  private transitional = false;
  /** Synchronised in the current regular configuration (which is then primary). */
  private synced = false;
  /** Synchronised in the regular configuration a transitional one follows. */
  private syncedBefore = false;
  private lastPrimary: RingId;
  private logLength: number;
  /** Token visits here in the current regular ring. */
  private visits = 0;
  private held: Held<Res>[] = [];
  private readonly statuses = new Map<NodeId, SyncStatus>();
  private snapshotSent = false;
  private nextTag = 0;
  /** Our commands in flight, by tag (in publish order, so the oldest is evicted first). */
  private readonly awaiting = new Map<number, Awaiting>();

  constructor(
    config: TotemConfig,
    durable: ReplicaDurable<Cmd>,
    now: number,
    private readonly binding: MachineBinding<Cmd, Res>,
    private readonly settings: ReplicaSettings = REPLICA_DEFAULTS,
    ringFaults: TotemUnsafeTestingFaults = {},
    private readonly faults: ReplicaUnsafeTestingFaults = {},
  ) {
    assert(settings.awaitingMax >= 1, 'awaitingMax must be at least 1');
    this.id = config.id;
    this.boot = durable.ring.boot + 1;
    this.majority = Math.floor(config.members.length / 2) + 1;
    this.lastPrimary = durable.lastPrimary;
    this.logLength = durable.log.length;
    if (durable.snapshot !== undefined) {
      const m = binding.restore(durable.snapshot);
      assert(m !== undefined, 'the persisted snapshot restores');
      for (const cmd of durable.log) m.apply(cmd);
      this.machine = m;
    } else assert(durable.log.length === 0, 'applied commands follow a snapshot');
    this.ring = new TotemNode(config, durable.ring, now, ringFaults);
    this.drain(now);
  }

  tick(now: number): void {
    this.ring.tick(now);
    this.drain(now);
  }

  receive(now: number, from: NodeId, msg: TotemMsg): void {
    this.ring.receive(now, from, msg);
    this.drain(now);
  }

  request(now: number, client: ClientId, req: ReplicaRequest<Cmd>): void {
    switch (req.type) {
      case 'command':
        this.command(now, client, req.attempt, req.cmd);
        break;
      case 'status':
        this.out.reply(client, { type: 'status', status: this.status() });
        break;
      default:
        unreachable(req, 'request');
    }
    this.drain(now);
  }

  deadline(): number {
    return this.ring.deadline();
  }

  ready(): Ready<ReplicaTypes<Cmd, Res>> | undefined {
    return this.out.ready();
  }

  advance(): void {
    this.out.advance();
  }

  status(): ReplicaStatus {
    return {
      ...this.ring.status(),
      primary: this.isPrimary(),
      synced: this.synced,
      lastPrimary: this.lastPrimary,
      applied: this.machine?.applied() ?? 0,
    };
  }

  holdsToken(): boolean {
    return this.ring.holdsToken();
  }

  /** The state machine, once synchronised in some primary configuration. */
  stateMachine(): ReplicatedMachine<Cmd, Res> | undefined {
    return this.machine;
  }

  private isPrimary(): boolean {
    const r = this.regular;
    if (r === undefined || this.transitional) return false;
    return this.faults.minorityIsPrimary === true || r.members.length >= this.majority;
  }

  private command(now: number, client: ClientId, attempt: number, cmd: Cmd): void {
    if (!this.isPrimary()) {
      this.out.reply(client, { type: 'refused', attempt, reason: 'not-primary' });
      return;
    }
    const tag = ++this.nextTag;
    if (this.awaiting.size >= this.settings.awaitingMax) {
      // The oldest waiter was most likely lost with a ring; its client has long retried.
      const [oldest, w] = this.awaiting.entries().next().value as [number, Awaiting];
      this.awaiting.delete(oldest);
      this.out.reply(w.client, { type: 'unknown', attempt: w.attempt });
    }
    this.awaiting.set(tag, { client, attempt, read: this.binding.isRead(cmd) });
    this.publish(now, tag, this.settings.mode, frame(KIND_COMMAND, tag, this.binding.encode(cmd)));
  }

  /** The ring answers a publish it cannot take at once, so `ref` needs no table of its own. */
  private publish(now: number, tag: number, mode: DeliveryMode, data: Uint8Array): void {
    this.ring.request(now, 0, { type: 'publish', mode, data, ref: tag });
  }

  /** Moves the ring's output into ours, acting on its deliveries and replies, until quiet. */
  private drain(now: number): void {
    for (let rounds = 0; rounds < 8; rounds++) {
      const r = this.ring.ready();
      if (r === undefined) return;
      for (const p of r.persist) this.out.persist(p);
      for (const m of r.early) this.out.sendEarly(m.to, m.msg);
      for (const m of r.messages) this.out.send(m.to, m.msg);
      for (const e of r.events) {
        this.out.emit(e);
        if (
          e.type === 'token' &&
          this.regular !== undefined &&
          ringEquals(e.ring, this.regular.ring)
        ) {
          this.visits++;
          this.releaseHeld();
        }
      }
      for (const d of r.deliver) {
        this.out.deliver(d);
        if (d.type === 'config') this.onConfig(now, d);
        else this.onMessage(now, d);
      }
      for (const { reply } of [...r.earlyReplies, ...r.replies]) this.onRingReply(reply);
      // Only now: advance() clears the batch's arrays for reuse.
      this.ring.advance();
    }
    assert(false, 'the ring settles within a few rounds of its own publishes');
  }

  private onRingReply(reply: TotemReply): void {
    switch (reply.type) {
      case 'published':
        return;
      case 'backpressure':
      case 'refused': {
        const w = this.awaiting.get(reply.ref);
        if (w === undefined) return;
        this.awaiting.delete(reply.ref);
        const reason = reply.type === 'backpressure' ? 'backpressure' : 'too-large';
        this.out.reply(w.client, { type: 'refused', attempt: w.attempt, reason });
        return;
      }
      case 'status':
        return;
      default:
        unreachable(reply, 'ring reply');
    }
  }

  private onConfig(now: number, c: ConfigChange): void {
    if (c.kind === 'transitional') {
      this.syncedBefore = this.synced;
      this.synced = false;
      this.transitional = true;
      return;
    }
    this.settleHeld();
    this.visits = 0;
    this.regular = c;
    this.transitional = false;
    this.synced = false;
    this.syncedBefore = false;
    this.statuses.clear();
    this.snapshotSent = false;
    if (!this.isPrimary()) return;
    const status = encodeStatus(c.ring, this.lastPrimary, this.machine?.applied() ?? 0);
    this.publish(now, ++this.nextTag, 'agreed', status);
  }

  private onMessage(now: number, d: Delivered): void {
    const kind = d.data[0];
    const ring = readRing(d.data, 1);
    const inRegular = d.in === 'regular' && !this.transitional;
    const current = this.regular !== undefined && ringEquals(this.regular.ring, d.ring);
    if (kind === KIND_COMMAND) {
      this.onCommand(d, inRegular);
      return;
    }
    // Sync messages count only in the regular configuration they were sent for.
    if (!inRegular || !current || ring === undefined || !ringEquals(ring, d.ring)) return;
    if (kind === KIND_STATUS && d.data.length === 1 + 20 + 6) {
      this.statuses.set(d.origin.node, {
        lastPrimary: readRing(d.data, 11)!,
        applied: readU48(d.data, 21),
      });
      this.maybeSendSnapshot(now);
    } else if ((kind === KIND_SNAPSHOT || kind === KIND_EMPTY_SNAPSHOT) && !this.synced) {
      const body = d.data.subarray(11);
      const machine =
        kind === KIND_EMPTY_SNAPSHOT ? this.binding.empty() : this.binding.restore(body);
      assert(machine !== undefined, 'a member snapshots only a machine of its own kind');
      this.machine = machine;
      this.synced = true;
      this.lastPrimary = d.ring;
      this.persistMachine();
    }
  }

  /** Once every member's status is in, the one with the newest state sends its snapshot. */
  private maybeSendSnapshot(now: number): void {
    const r = this.regular!;
    if (this.snapshotSent || !r.members.every((m) => this.statuses.has(m))) return;
    let best: NodeId = r.members[0]!;
    for (const m of r.members) {
      const a = this.statuses.get(m)!;
      const b = this.statuses.get(best)!;
      const c = ringCompare(a.lastPrimary, b.lastPrimary);
      if (c > 0 || (c === 0 && a.applied > b.applied)) best = m;
    }
    this.snapshotSent = true;
    if (best !== this.id) return;
    const m = this.machine;
    const body = m === undefined ? new Uint8Array() : m.snapshot();
    const kind = m === undefined ? KIND_EMPTY_SNAPSHOT : KIND_SNAPSHOT;
    const data = new Uint8Array(11 + body.length);
    data[0] = kind;
    writeRing(data, 1, r.ring);
    data.set(body, 11);
    this.publish(now, ++this.nextTag, 'agreed', data);
  }

  private persistApply(cmd: Cmd): void {
    this.out.persist({ type: 'apply', cmd });
    if (++this.logLength >= this.settings.logMax) this.persistMachine();
  }

  private persistMachine(): void {
    const m = this.machine;
    if (m === undefined) return;
    this.out.persist({ type: 'machine', lastPrimary: this.lastPrimary, snapshot: m.snapshot() });
    this.logLength = 0;
  }

  /** Answers whose command every member has made durable (two visits since it applied here). */
  private releaseHeld(): void {
    const alone =
      (this.regular !== undefined && this.regular.members.length === 1) ||
      this.faults.answerAtApply === true;
    while (this.held.length > 0 && (alone || this.visits >= this.held[0]!.visit + 2)) {
      const h = this.held.shift()!;
      this.out.reply(h.client, { type: 'applied', attempt: h.attempt, result: h.result });
    }
  }

  /** The ring changed before the answers could be given: whether they survive is unknown. */
  private settleHeld(): void {
    for (const h of this.held) {
      if (h.read)
        this.out.reply(h.client, { type: 'refused', attempt: h.attempt, reason: 'not-primary' });
      else this.out.reply(h.client, { type: 'unknown', attempt: h.attempt });
    }
    this.held = [];
  }

  private onCommand(d: Delivered, inRegular: boolean): void {
    const tag = readU48Safe(d.data, 1);
    const cmd = tag === undefined ? undefined : this.binding.decode(d.data.subarray(7));
    const mine = d.origin.node === this.id && d.origin.boot === this.boot;
    const w = mine && tag !== undefined ? this.awaiting.get(tag) : undefined;
    if (w !== undefined) this.awaiting.delete(tag!);
    const machine = this.machine;
    const applies =
      cmd !== undefined &&
      machine !== undefined &&
      (inRegular ? this.synced && this.isPrimary() : this.syncedBefore);
    const result = applies ? machine.apply(cmd) : undefined;
    if (applies) this.persistApply(cmd);
    if (w === undefined) return;
    if (result !== undefined && inRegular) {
      const visit = this.visits;
      this.held.push({ client: w.client, attempt: w.attempt, read: w.read, result, visit });
      this.releaseHeld();
    } else if (!inRegular && !w.read) {
      // Members of a transitional configuration apply alike only if they were all
      // synchronised before it: whether this write survives is not ours to say.
      this.out.reply(w.client, { type: 'unknown', attempt: w.attempt });
    } else {
      const reason = this.isPrimary() ? 'not-synced' : 'not-primary';
      this.out.reply(w.client, { type: 'refused', attempt: w.attempt, reason });
    }
  }
}

function frame(kind: number, tag: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(7 + body.length);
  out[0] = kind;
  writeU48(out, 1, tag);
  out.set(body, 7);
  return out;
}

function encodeStatus(ring: RingId, lastPrimary: RingId, applied: number): Uint8Array {
  const out = new Uint8Array(1 + 20 + 6);
  out[0] = KIND_STATUS;
  writeRing(out, 1, ring);
  writeRing(out, 11, lastPrimary);
  writeU48(out, 21, applied);
  return out;
}

function writeU48(b: Uint8Array, at: number, v: number): void {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  view.setUint16(at, Math.floor(v / 2 ** 32));
  view.setUint32(at + 2, v % 2 ** 32);
}

function readU48(b: Uint8Array, at: number): number {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return view.getUint16(at) * 2 ** 32 + view.getUint32(at + 2);
}

function readU48Safe(b: Uint8Array, at: number): number | undefined {
  return b.length >= at + 6 ? readU48(b, at) : undefined;
}

function writeRing(b: Uint8Array, at: number, r: RingId): void {
  writeU48(b, at, r.seq);
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(at + 6, r.rep);
}

function readRing(b: Uint8Array, at: number): RingId | undefined {
  if (b.length < at + 10) return undefined;
  const rep = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at + 6);
  return { seq: readU48(b, at), rep };
}
