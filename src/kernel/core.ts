import { assert } from './assert.ts';
import type { Outgoing } from './envelope.ts';
import type { ClientId, NodeId } from './ids.ts';

/**
 * The contract every protocol core implements (Raft, the Paxos family, gossip, Totem), and
 * that every host drives: the simulator, the Node runtime and the browser playground.
 *
 * A core is a deterministic state machine. It owns no timer, socket, file, clock or random
 * source: time arrives as the `now` argument of each input (the host's local monotonic clock
 * in milliseconds, never decreasing), randomness as a kernel `Rng` given at construction, and
 * every effect leaves as data in a `Ready` batch that the host carries out.
 *
 * Driving loop of a host:
 *
 *     core.tick(now) / core.receive(now, from, msg) / core.request(now, client, req)
 *     const rd = core.ready();            // at most one batch is out at a time
 *     if (rd) {
 *       send rd.early; answer rd.earlyReplies; // may leave at once
 *       durably write rd.persist, in order; // fsync; only then:
 *       send rd.messages; answer rd.replies; apply rd.deliver in order; publish rd.events;
 *       core.advance();                     // "persisted": the batch is done
 *     }
 *     schedule the next tick at core.deadline()
 *
 * Inputs may keep arriving while a batch is being persisted; their outputs go to the next
 * batch. That is what makes the ordering rule below sufficient.
 */
export interface CoreTypes {
  /** The protocol's peer message union. */
  readonly msg: unknown;
  /** One durable write (hard state, log entries, a promise, a snapshot...). */
  readonly persist: unknown;
  /** Something committed or delivered, in order (a log entry, a chosen value, a totally ordered message). */
  readonly deliver: unknown;
  /** A client's request. */
  readonly request: unknown;
  /** An answer to a client. */
  readonly reply: unknown;
  /** An observer event (role change, election, commit), for metrics and visualisers. */
  readonly event: unknown;
}

export interface Reply<R> {
  readonly client: ClientId;
  readonly reply: R;
}

/**
 * One batch of output. Durability rule, the only one hosts must get right:
 *
 * 1. `persist` items are written in order, and ALL of them are durable (fsync/fdatasync
 *    returned) before ANY of `messages` leaves the node, before any of `replies` is
 *    answered, and before `deliver` is acted on in a way others can observe. A core puts a
 *    message in the same batch as the state it depends on (a vote with the term and vote
 *    it records, an ack with the entries it acknowledges, a Paxos promise with the promise),
 *    so this rule is exactly what each protocol's safety needs.
 * 2. `deliver` items are applied in order, each exactly once. After a crash the core
 *    re-derives what it delivered from its durable state (the host's application state must
 *    be rebuilt the same way, or snapshotted with the position it reflects).
 * 3. `early` messages depend on nothing in this batch's `persist`, nor on anything not yet
 *    durable: the host may send them before or while it writes (sending them with
 *    `messages` is correct too). A Raft leader puts its appends there, so its own disk
 *    write overlaps its followers' (dissertation 10.2.1).
 * 4. `earlyReplies` likewise depend on nothing unpersisted: the host may answer them before
 *    or while it writes (answering them with `replies` is correct too). The Raft replica
 *    answers there: a write's result is for an entry durable on a quorum, a read's for
 *    committed state, so a reply need not wait for the disk write of newer entries.
 * 5. Messages may be lost, duplicated, delayed or reordered by the network; cores tolerate
 *    all four. Events are advisory and may be dropped.
 *
 * The arrays belong to the core and are valid until `advance()`.
 */
export interface Ready<T extends CoreTypes> {
  readonly persist: readonly T['persist'][];
  readonly early: readonly Outgoing<T['msg']>[];
  readonly messages: readonly Outgoing<T['msg']>[];
  readonly deliver: readonly T['deliver'][];
  readonly replies: readonly Reply<T['reply']>[];
  readonly earlyReplies: readonly Reply<T['reply']>[];
  readonly events: readonly T['event'][];
}

export interface Core<T extends CoreTypes> {
  readonly id: NodeId;
  /** Time passes. Hosts call it at (or after) `deadline()`; calling it early is harmless. */
  tick(now: number): void;
  /** A peer's message arrived (it may be stale, duplicated or reordered). */
  receive(now: number, from: NodeId, msg: T['msg']): void;
  /** A client's request arrived at this node. */
  request(now: number, client: ClientId, req: T['request']): void;
  /** Local time at which the core next needs `tick`; +Infinity when it has no timer set. */
  deadline(): number;
  /** The pending batch, or undefined if there is none or one is already out. */
  ready(): Ready<T> | undefined;
  /** The host confirms the batch from `ready()` was persisted and carried out. */
  advance(): void;
}

/**
 * The double-buffered output queue that cores use to implement `ready`/`advance` without
 * allocating per batch: outputs accumulate in one set of arrays while the other set is out
 * with the host.
 */
export class OutputBuffer<T extends CoreTypes> {
  private filling = OutputBuffer.emptyBatch<T>();
  private spare = OutputBuffer.emptyBatch<T>();
  private out = false;

  private static emptyBatch<T extends CoreTypes>(): MutableReady<T> {
    return {
      persist: [],
      early: [],
      messages: [],
      deliver: [],
      replies: [],
      earlyReplies: [],
      events: [],
    };
  }

  persist(item: T['persist']): void {
    this.filling.persist.push(item);
  }

  send(to: NodeId, msg: T['msg']): void {
    this.filling.messages.push({ to, msg });
  }

  /** A message that does not wait for this batch's persist (rule 3 of `Ready`). */
  sendEarly(to: NodeId, msg: T['msg']): void {
    this.filling.early.push({ to, msg });
  }

  deliver(item: T['deliver']): void {
    this.filling.deliver.push(item);
  }

  reply(client: ClientId, reply: T['reply']): void {
    this.filling.replies.push({ client, reply });
  }

  /** A reply that does not wait for this batch's persist (rule 4 of `Ready`). */
  replyEarly(client: ClientId, reply: T['reply']): void {
    this.filling.earlyReplies.push({ client, reply });
  }

  emit(event: T['event']): void {
    this.filling.events.push(event);
  }

  /** Whether anything is queued for the next batch. */
  hasPending(): boolean {
    const f = this.filling;
    return (
      f.persist.length +
        f.early.length +
        f.messages.length +
        f.deliver.length +
        f.replies.length +
        f.earlyReplies.length +
        f.events.length >
      0
    );
  }

  /** Whether a batch is out with the host, waiting for `advance`. */
  isOut(): boolean {
    return this.out;
  }

  /** Messages queued for the next batch (cores may drop or coalesce before handing out). */
  pendingMessages(): Outgoing<T['msg']>[] {
    return this.filling.messages;
  }

  ready(): Ready<T> | undefined {
    if (this.out || !this.hasPending()) return undefined;
    const batch = this.filling;
    this.filling = this.spare;
    this.spare = batch;
    this.out = true;
    return batch;
  }

  advance(): void {
    assert(this.out, 'advance() without a batch from ready()');
    const done = this.spare;
    // Most batches fill one or two of the seven arrays; writing `length` is not free in V8
    // (it was the simulator's hottest line), so only clear what was used.
    if (done.persist.length !== 0) done.persist.length = 0;
    if (done.early.length !== 0) done.early.length = 0;
    if (done.messages.length !== 0) done.messages.length = 0;
    if (done.deliver.length !== 0) done.deliver.length = 0;
    if (done.replies.length !== 0) done.replies.length = 0;
    if (done.earlyReplies.length !== 0) done.earlyReplies.length = 0;
    if (done.events.length !== 0) done.events.length = 0;
    this.out = false;
  }
}

interface MutableReady<T extends CoreTypes> {
  persist: T['persist'][];
  early: Outgoing<T['msg']>[];
  messages: Outgoing<T['msg']>[];
  deliver: T['deliver'][];
  replies: Reply<T['reply']>[];
  earlyReplies: Reply<T['reply']>[];
  events: T['event'][];
}
