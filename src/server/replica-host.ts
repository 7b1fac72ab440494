import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { assert } from '../kernel/assert.ts';
import type { Core, CoreTypes, Ready, Reply } from '../kernel/core.ts';
import { type ClientId, NO_NODE, type NodeId } from '../kernel/ids.ts';
import type { KvChange, KvCommand, KvOp, KvResult, KvStateMachine } from '../kv/machine.ts';
import { isReadOp } from '../kv/validate.ts';
import type { ReplicaReply, ReplicaRequest } from '../replica/raft-kv.ts';
import { TcpTransport, type TlsOptions } from '../runtime/transport/tcp-transport.ts';
import {
  OverloadedError,
  type ReadConsistency,
  UnavailableError,
  UnknownOutcomeError,
  type WatchHandle,
} from './engine.ts';
import type { EngineMetrics } from './metrics.ts';
import {
  checkFwdCall,
  checkFwdReply,
  type FwdCall,
  type FwdOutcome,
  failureOf,
  type HostMsg,
  hostMsgTypes,
  outcomeOf,
} from './peer-calls.ts';

/**
 * The host loop every real node shares, whatever protocol its replica runs. It follows the
 * kernel's contract (kernel/core.ts): every input (timer tick, peer message, client call)
 * goes into the replica, then `pump` takes Ready batches one at a time: persist everything
 * (the protocol's storage fdatasyncs), then send messages, answer clients, notify watchers,
 * and advance. Inputs that arrive during an fsync land in the next batch, which is how group
 * commit happens across concurrent clients.
 *
 * The protocol's engine supplies what differs through `ReplicaHostHooks`: how a batch is
 * made durable, what its events mean for metrics and status, and how refusals are answered.
 *
 * A KV write or linearizable read that reaches a follower is forwarded to the leader its
 * replica names over the peer transport (peer-calls.ts), and served there by the leader's
 * host with forwarding off: one hop at most. A leader that is not a connected peer gets no
 * forwarded call; the refusal hook answers instead (the HTTP layer relays it then).
 */
export type Answer = ReplicaReply | { readonly type: 'timeout' };

/** A client's KV operation as a replica request; every hosted replica serves these. */
export type KvRequest = Extract<ReplicaRequest, { type: 'kv' }>;
export type AppliedRequest = Extract<ReplicaRequest, { type: 'awaitApplied' }>;

/** The replicas a host can drive: clients get `ReplicaReply`s, and state is a KV machine. */
export interface HostedTypes extends CoreTypes {
  readonly reply: ReplicaReply;
}

export interface HostedReplica<T extends HostedTypes> extends Core<T> {
  /** The state machine, read-only use: stale reads, watch, status. */
  readonly machine: KvStateMachine;
}

export interface ReplicaHostHooks<T extends HostedTypes> {
  /** Makes a batch's persist items durable, in order; resolves once every one is. */
  persist(items: readonly T['persist'][]): Promise<void>;
  /** The request type of the replica for a KV call (the identity: it proves they match). */
  kvRequest(req: KvRequest): T['request'];
  /**
   * The replica's request to answer with the result of write `seq` of `session` once it has
   * applied it (Raft's `awaitApplied`): a follower asks beside forwarding the write, so that
   * a commit hint ends the call from its own apply. Without it only the leader answers.
   */
  appliedRequest?(req: AppliedRequest): T['request'];
  /** Reads what status derives from a durable batch, before any of it is acted on. */
  durable?(rd: Ready<T>): void;
  /** An observer event of the protocol (metrics, logs, role and leader for status). */
  observe(event: T['event']): void;
  /** The batch delivered something; called before watchers hear of it (commit metrics). */
  delivered?(rd: Ready<T>): void;
  /**
   * Applied changes, before watchers get them; `undefined` when a snapshot replaced the state
   * and the changes in between are lost (the Raft node rebuilds its address book then).
   */
  changesApplied?(changes: readonly KvChange[] | undefined): void;
  /** Whether watchers may see a change (the Raft node hides its member records). */
  visible?(change: KvChange): boolean;
  /**
   * Handles an answer that is not a result: throws for final ones, or returns for ones
   * worth asking again; the host waits `RETRY_PAUSE_MS` between tries until the deadline.
   */
  refusal(answer: Answer, deadline: number, kind: 'read' | 'write'): void;
  /**
   * Throws the refusal this node's own clients would get for `op` (the Raft node's reserved
   * keys): a forwarded call skips the follower's engine checks on this side.
   */
  admit?(op: KvOp): void;
  /**
   * The leader this node last heard of (0 if none). A follower forwards a call straight
   * there, without first asking its replica to refuse it; only the first try takes this
   * shortcut, so a stale answer costs one round trip, never a loop.
   */
  leader?(): NodeId;
  /**
   * Whether peer `from` was removed from the cluster for good (the Raft node's tombstones):
   * its messages are dropped unread, and it is told so, at most once a second.
   */
  removedPeer?(from: NodeId): boolean;
  /** Peer `from` says this node was removed from the cluster. */
  removedNotice?(from: NodeId): void;
}

/** How a real node meets its peers, whatever its protocol. */
export interface PeerSettings {
  readonly id: NodeId;
  /** Cluster secret for the peer handshake (at least 16 bytes). */
  readonly secret: string | Uint8Array;
  /** Where the peer listener binds; the port of this member's peerAddress by default. */
  readonly peerListen?: { readonly host: string; readonly port: number };
  readonly tls?: TlsOptions;
  readonly logger?: Logger;
}

/** The peer transport of a node listening on `listen`, logging through the node's logger. */
export function peerTransport<M>(
  settings: PeerSettings & { readonly metrics?: EngineMetrics },
  listen: { readonly host: string; readonly port: number },
): TcpTransport<M> {
  const metrics = settings.metrics;
  return new TcpTransport<M>({
    id: settings.id,
    secret: settings.secret,
    listen,
    ...(settings.tls === undefined ? {} : { tls: settings.tls }),
    log: (level, message) => settings.logger?.[level]({ component: 'transport' }, message),
    ...(metrics === undefined
      ? {}
      : { onBytesSent: (peer, bytes) => metrics.bytesSent(bytes, peer) }),
  });
}

/** The settings every real node takes, whatever its protocol. */
export interface ReplicaHostSettings {
  /** How long a client call may wait for its answer before UnavailableError. */
  readonly callTimeoutMs?: number;
  /** Re-proposals of a write whose outcome came back unknown (same session and seq). */
  readonly unknownRetriesMax?: number;
  /** Client calls waiting for an answer at once; more get OverloadedError. */
  readonly callsMax?: number;
  readonly metrics?: EngineMetrics;
  readonly logger?: Logger;
  /** Called once when the node can no longer run safely (a failed fsync); it should exit. */
  readonly onFatal?: (err: unknown) => void;
  /** The node's monotonic clock in ms. */
  readonly clock?: () => number;
}

/** The peer transport of a host: the protocol's messages and the host's own share it. */
export type HostTransport<T extends HostedTypes> = TcpTransport<T['msg'] | HostMsg>;

export interface ReplicaHostOptions<T extends HostedTypes> extends ReplicaHostSettings {
  readonly replica: HostedReplica<T>;
  readonly transport: HostTransport<T>;
  /** The `type` of every peer message the protocol knows; others are dropped with a warning. */
  readonly msgTypes: ReadonlySet<string>;
  readonly hooks: ReplicaHostHooks<T>;
  /** Tick once at start, before the first batch (a Multi-Paxos node arms its timers so). */
  readonly tickOnStart: boolean;
}

const defaults = { callTimeoutMs: 5000, unknownRetriesMax: 3, callsMax: 10_000 } as const;
/** Pause before asking again after a passing refusal (a transfer, an election under way). */
export const RETRY_PAUSE_MS = 25;
const REMOVAL_NOTICE_INTERVAL_MS = 1000;
/** How often calls forwarded to a leader check that its connection still stands. */
export const FORWARD_CHECK_MS = 50;

/** How a client call is served: `forward: false` keeps it on this node (one hop at most). */
export interface CallOptions {
  readonly forward?: boolean;
}

export const silentMetrics: EngineMetrics = {
  observeFsync() {},
  proposal() {},
  commit() {},
  applyLag() {},
  election() {},
  leaderChange() {},
  bytesSent() {},
};

interface Call {
  readonly resolve: (answer: Answer) => void;
  readonly timer: NodeJS.Timeout;
}

/** A call forwarded to a leader, waiting for its `fwdReply`. */
interface Forward {
  readonly to: NodeId;
  /** The replica request that ends the call from this node's own apply (`appliedRequest`). */
  readonly local: ClientId | undefined;
  readonly resolve: (outcome: FwdOutcome | 'timeout' | 'lost') => void;
  readonly timer: NodeJS.Timeout;
}

/** What came of forwarding: a result, `again` (ask the replica again) or `unsent`. */
type Forwarded = { readonly result: KvResult } | 'again' | 'unsent';

interface Watcher {
  readonly onChange: (change: KvChange) => void;
  /** Changes up to this revision were given to it. */
  revision: number;
}

export class ReplicaHost<T extends HostedTypes> {
  readonly clock: () => number;
  readonly metrics: EngineMetrics;
  readonly settings: { readonly [K in keyof typeof defaults]: number };
  private readonly replica: HostedReplica<T>;
  private readonly transport: HostTransport<T>;
  private readonly hooks: ReplicaHostHooks<T>;
  private readonly calls = new Map<ClientId, Call>();
  private readonly forwards = new Map<number, Forward>();
  /** Replica client id of an `appliedRequest` -> the forwarded call it may end. */
  private readonly localApplied = new Map<ClientId, number>();
  private nextForward = 1;
  private forwardCheck: NodeJS.Timeout | undefined;
  private readonly watchers = new Set<Watcher>();
  private nextClient: ClientId = 1;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Number.POSITIVE_INFINITY;
  private pumping: Promise<void> | undefined;
  private running = false;
  private failure: unknown;
  private notifiedRevision = 0;
  /** When each removed peer was last told so. */
  private readonly removalToldAt = new Map<NodeId, number>();

  constructor(private readonly options: ReplicaHostOptions<T>) {
    this.replica = options.replica;
    this.transport = options.transport;
    this.hooks = options.hooks;
    this.clock = options.clock ?? (() => performance.now());
    this.metrics = options.metrics ?? silentMetrics;
    const settings: { -readonly [K in keyof typeof defaults]: number } = { ...defaults };
    for (const name of Object.keys(defaults) as (keyof typeof defaults)[]) {
      const value = options[name] ?? defaults[name];
      assert(Number.isSafeInteger(value) && value >= 1, `${name} must be >= 1, got ${value}`);
      settings[name] = value;
    }
    this.settings = settings;
    for (const type of hostMsgTypes) {
      assert(!options.msgTypes.has(type), `the protocol's message type '${type}' is the host's`);
    }
  }

  /** Starts the peer listener and the timers. */
  async start(): Promise<void> {
    assert(!this.running, 'engine started twice');
    this.transport.onMessage((from, msg) => this.onPeerMessage(from, msg));
    await this.transport.start();
    this.running = true;
    this.notifiedRevision = this.replica.machine.currentRevision;
    if (this.options.tickOnStart) this.replica.tick(this.clock());
    this.kick();
  }

  /** Finishes the batch being written, then closes the transport (the caller, its storage). */
  async stop(): Promise<boolean> {
    if (!this.running) return false;
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.pumping;
    for (const [client, call] of this.calls) {
      clearTimeout(call.timer);
      this.calls.delete(client);
      call.resolve({ type: 'timeout' });
    }
    this.settleAllForwards();
    await this.transport.stop();
    return true;
  }

  // -------------------------------------------------------------------------------------
  // Client calls

  /**
   * Proposes a write, re-proposing it (same session and seq) while its outcome is unknown;
   * on a follower, forwards it to the leader unless `options.forward` is false.
   */
  write(cmd: KvCommand, options: CallOptions = {}): Promise<KvResult> {
    const deadline = this.clock() + this.settings.callTimeoutMs;
    return this.writeUntil(cmd, deadline, options.forward ?? true);
  }

  async read(
    op: Extract<KvOp, { f: 'get' } | { f: 'list' }>,
    consistency: ReadConsistency,
    options: CallOptions = {},
  ): Promise<KvResult> {
    if (consistency === 'stale') return this.replica.machine.read(op);
    const deadline = this.clock() + this.settings.callTimeoutMs;
    return this.readUntil(op, deadline, options.forward ?? true);
  }

  /** `origin`: the follower that forwarded the write (its replica may answer it first). */
  private async writeUntil(
    cmd: KvCommand,
    deadline: number,
    forward: boolean,
    origin?: NodeId,
  ): Promise<KvResult> {
    let unknowns = 0;
    let proposed = false;
    if (forward) {
      const forwarded = await this.forwardToKnownLeader('write', cmd, deadline);
      if (forwarded !== 'unsent' && forwarded !== 'again') return forwarded.result;
    }
    for (;;) {
      const answer = await this.call(
        (id) =>
          this.hooks.kvRequest({
            type: 'kv',
            id,
            session: cmd.session,
            seq: cmd.seq,
            op: cmd.op,
            origin,
          }),
        deadline,
      );
      if (answer.type === 'notLeader' && forward) {
        const forwarded = await this.forward('write', cmd, answer.leader, deadline);
        if (forwarded === 'again') continue;
        if (forwarded !== 'unsent') return forwarded.result;
      }
      // Counted once, on the node whose replica took it (a refusal proposed nothing).
      if (!proposed && answer.type !== 'notLeader' && answer.type !== 'rejected') {
        proposed = true;
        this.metrics.proposal();
      }
      if (answer.type === 'result') return answer.result;
      if (answer.type === 'unknown') {
        // Without a session a retry could apply the command twice; with one it cannot.
        if (cmd.session === 0 || ++unknowns > this.settings.unknownRetriesMax) {
          throw new UnknownOutcomeError('the outcome of the write is unknown (a leader changed)');
        }
        continue;
      }
      await this.refused(answer, deadline, 'write');
    }
  }

  private async readUntil(
    op: Extract<KvOp, { f: 'get' } | { f: 'list' }>,
    deadline: number,
    forward: boolean,
  ): Promise<KvResult> {
    if (forward) {
      const forwarded = await this.forwardToKnownLeader(
        'read',
        { session: 0, seq: 0, op },
        deadline,
      );
      if (forwarded !== 'unsent' && forwarded !== 'again') return forwarded.result;
    }
    for (;;) {
      const answer = await this.call(
        (id) => this.hooks.kvRequest({ type: 'kv', id, session: 0, seq: 0, op }),
        deadline,
      );
      if (answer.type === 'notLeader' && forward) {
        const forwarded = await this.forward(
          'read',
          { session: 0, seq: 0, op },
          answer.leader,
          deadline,
        );
        if (forwarded === 'again') continue;
        if (forwarded !== 'unsent') return forwarded.result;
      }
      if (answer.type === 'result') return answer.result;
      await this.refused(answer, deadline, 'read');
    }
  }

  watch(fromRevision: number, onChange: (change: KvChange) => void): WatchHandle | 'compacted' {
    const past = this.replica.machine.changesSince(fromRevision);
    if (past === undefined) return 'compacted';
    const watcher: Watcher = { onChange, revision: fromRevision };
    for (const change of past) {
      if (this.visible(change)) onChange(change);
      watcher.revision = change.revision;
    }
    this.watchers.add(watcher);
    return { cancel: () => this.watchers.delete(watcher) };
  }

  /** Lets the protocol's refusal hook judge the answer, then pauses before the next try. */
  async refused(answer: Answer, deadline: number, kind: 'read' | 'write'): Promise<void> {
    this.hooks.refusal(answer, deadline, kind);
    if (this.clock() + RETRY_PAUSE_MS >= deadline) {
      const why = answer.type === 'rejected' ? answer.reason : answer.type;
      throw new UnavailableError(`still refused (${why}) until the deadline`);
    }
    await new Promise((wake) => setTimeout(wake, RETRY_PAUSE_MS));
  }

  /** Hands one request to the replica and waits for its answer, or for `deadline`. */
  call(build: (id: ClientId) => T['request'], deadline: number): Promise<Answer> {
    if (this.failure !== undefined || !this.running) {
      return Promise.reject(new UnavailableError('the node is not running'));
    }
    const waiting = this.calls.size + this.forwards.size;
    if (waiting >= this.settings.callsMax) {
      return Promise.reject(new OverloadedError(`${waiting} calls waiting`));
    }
    const client = this.nextClient++;
    return new Promise<Answer>((resolve) => {
      // Whole milliseconds: Node keeps one timer list per distinct duration, and a
      // fractional one (a deadline minus a sub-ms clock) would make a new list per call.
      const timer = setTimeout(
        () => {
          this.calls.delete(client);
          resolve({ type: 'timeout' });
        },
        Math.max(1, Math.ceil(deadline - this.clock())),
      );
      this.calls.set(client, { resolve, timer });
      this.replica.request(this.clock(), client, build(client));
      this.kick();
    });
  }

  // -------------------------------------------------------------------------------------
  // Calls forwarded to the leader (follower side)

  /**
   * Hands a call the replica refused to the leader it named and waits for the outcome:
   * `unsent` when that leader is not a connected peer, `again` after a pause when it no
   * longer leads (so the replica may learn who does); a failure is thrown as the error the
   * leader's host failed with.
   */
  private async forward(
    kind: 'write' | 'read',
    cmd: KvCommand,
    leader: NodeId,
    deadline: number,
  ): Promise<Forwarded> {
    if (leader === NO_NODE || leader === this.transport.id) return 'unsent';
    if (this.transport.peerStats(leader)?.connected !== true) return 'unsent';
    const outcome = await this.sendForward(leader, kind, cmd, deadline);
    if (outcome === 'unsent') return 'unsent';
    if (outcome === 'timeout' || outcome === 'lost') {
      const why =
        outcome === 'timeout'
          ? `leader ${leader} did not answer in time`
          : `lost the connection to leader ${leader} before it answered`;
      // A write may have been applied (a retry with its session is safe); a read changed nothing.
      throw kind === 'write' ? new UnknownOutcomeError(why) : new UnavailableError(why);
    }
    switch (outcome.type) {
      case 'result':
        return { result: outcome.result };
      case 'notLeader':
        if (this.clock() + RETRY_PAUSE_MS >= deadline) {
          this.hooks.refusal({ type: 'notLeader', id: 0, leader: outcome.leader }, deadline, kind);
          throw new UnavailableError(`leader ${leader} stepped down and none answered in time`);
        }
        await new Promise((wake) => setTimeout(wake, RETRY_PAUSE_MS));
        return 'again';
      default:
        throw failureOf(outcome, leader, kind);
    }
  }

  /** The first try of a call on a follower that knows its leader: straight there. */
  private forwardToKnownLeader(
    kind: 'write' | 'read',
    cmd: KvCommand,
    deadline: number,
  ): Promise<Forwarded> {
    const leader = this.hooks.leader?.() ?? NO_NODE;
    if (leader === NO_NODE || leader === this.transport.id) return Promise.resolve('unsent');
    return this.forward(kind, cmd, leader, deadline);
  }

  private sendForward(
    to: NodeId,
    kind: 'write' | 'read',
    cmd: KvCommand,
    deadline: number,
  ): Promise<FwdOutcome | 'timeout' | 'lost' | 'unsent'> {
    const waiting = this.calls.size + this.forwards.size;
    if (waiting >= this.settings.callsMax) {
      return Promise.reject(new OverloadedError(`${waiting} calls waiting`));
    }
    const id = this.nextForward++;
    const timeoutMs = Math.max(1, Math.ceil(deadline - this.clock()));
    const call: FwdCall = { type: 'fwdCall', id, kind, ...cmd, timeoutMs };
    const sent = this.transport.send(to, call);
    this.transport.flushNow(); // the call's whole latency waits on this message
    if (sent !== 'queued' && sent !== 'queued-dropped-oldest') return Promise.resolve('unsent');
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settleForward(id, 'timeout'), timeoutMs);
      const local = kind === 'write' ? this.askApplied(id, cmd) : undefined;
      this.forwards.set(id, { to, local, resolve, timer });
      this.watchForwards();
    });
  }

  /** Ends a forwarded call once: its reply, its timer or a lost connection, whichever first. */
  private settleForward(id: number, outcome: FwdOutcome | 'timeout' | 'lost'): void {
    const pending = this.forwards.get(id);
    if (pending === undefined) return; // late or duplicated: the call has ended already
    this.forwards.delete(id);
    clearTimeout(pending.timer);
    if (pending.local !== undefined) this.localApplied.delete(pending.local);
    if (this.forwards.size === 0) {
      clearInterval(this.forwardCheck);
      this.forwardCheck = undefined;
    }
    pending.resolve(outcome);
  }

  /**
   * A leader that dies takes its connection with it: the calls forwarded to it end then,
   * not at their deadline, so clients move on while a new leader is elected.
   */
  private watchForwards(): void {
    if (this.forwardCheck !== undefined) return;
    this.forwardCheck = setInterval(() => {
      for (const [id, pending] of this.forwards) {
        if (this.transport.peerStats(pending.to)?.connected !== true) {
          this.settleForward(id, 'lost');
        }
      }
    }, FORWARD_CHECK_MS);
  }

  /**
   * Asks the replica for the result of a forwarded write once it applies it: that ends the
   * call with the result this node computed, which is the leader's (same log, same state
   * machine), and the leader's own answer, later, is ignored. A follower applies an entry
   * once it is committed; a commit hint from the leader lets it know one message after the
   * quorum forms (Raft's `CommitHintMsg`). Returns the replica client id of the request.
   */
  private askApplied(forward: number, cmd: KvCommand): ClientId | undefined {
    const build = this.hooks.appliedRequest;
    if (build === undefined || cmd.session === 0) return undefined;
    const client = this.nextClient++;
    this.localApplied.set(client, forward);
    this.replica.request(
      this.clock(),
      client,
      build({ type: 'awaitApplied', id: client, session: cmd.session, seq: cmd.seq }),
    );
    this.kick();
    return client;
  }

  private settleAllForwards(): void {
    for (const id of [...this.forwards.keys()]) this.settleForward(id, 'lost');
    assert(this.forwards.size === 0 && this.forwardCheck === undefined, 'forwards left behind');
  }

  private onForwardReply(from: NodeId, raw: unknown): void {
    const checked = checkFwdReply(raw);
    if (!checked.ok) {
      this.options.logger?.warn({ from, why: checked.why }, 'dropped a malformed forward reply');
      return;
    }
    const reply = checked.value;
    // Only the peer a call went to may end it.
    if (this.forwards.get(reply.id)?.to !== from) return;
    this.settleForward(reply.id, reply.outcome);
  }

  // -------------------------------------------------------------------------------------
  // Calls forwarded to this node (leader side)

  /** Serves a peer's forwarded call here, never further, and answers with its outcome. */
  private serveForwarded(from: NodeId, raw: unknown): void {
    const checked = checkFwdCall(raw);
    if (!checked.ok) {
      this.options.logger?.warn({ from, why: checked.why }, 'dropped a malformed forwarded call');
      const id = (raw as { id?: unknown }).id;
      if (Number.isSafeInteger(id) && (id as number) >= 0) {
        this.answerForwarded(from, id as number, { type: 'invalid', reason: checked.why });
      }
      return;
    }
    const call = checked.value;
    const deadline = this.clock() + Math.min(this.settings.callTimeoutMs, call.timeoutMs);
    const op = call.op;
    const served = new Promise<KvResult>((resolve) => {
      this.hooks.admit?.(op); // throws the refusal its own clients would get
      resolve(
        isReadOp(op)
          ? this.readUntil(op, deadline, false)
          : this.writeUntil({ session: call.session, seq: call.seq, op }, deadline, false, from),
      );
    });
    served.then(
      (result) => this.answerForwarded(from, call.id, { type: 'result', result }),
      (err: unknown) => {
        const outcome = outcomeOf(err);
        if (outcome.type === 'unknownOutcome' && !(err instanceof UnavailableError)) {
          this.options.logger?.error({ err, from }, 'a forwarded call failed unexpectedly');
        }
        this.answerForwarded(from, call.id, outcome);
      },
    );
  }

  private answerForwarded(to: NodeId, id: number, outcome: FwdOutcome): void {
    // A node that stopped answers nothing: the caller's deadline or connection check tells it.
    if (!this.running) return;
    this.transport.send(to, { type: 'fwdReply', id, outcome });
  }

  // -------------------------------------------------------------------------------------
  // Host loop

  /**
   * Tells `to` that it was removed from the cluster; at most once a second, since a removed
   * node keeps sending (votes, forwarded calls) until it hears it and stops.
   */
  tellRemoved(to: NodeId): void {
    if (!this.running) return;
    const now = this.clock();
    const last = this.removalToldAt.get(to);
    if (last !== undefined && now - last < REMOVAL_NOTICE_INTERVAL_MS) return;
    this.removalToldAt.set(to, now);
    this.transport.send(to, { type: 'removed' });
  }

  /** Sends `to` a probe: only a peer that removed this node answers it (with `removed`). */
  probe(to: NodeId): void {
    if (this.running) this.transport.send(to, { type: 'probe' });
  }

  private onPeerMessage(from: NodeId, msg: T['msg'] | HostMsg): void {
    if (!this.running) return;
    const type = (msg as { type?: unknown } | null)?.type;
    if (type === 'removed') {
      this.hooks.removedNotice?.(from);
      return;
    }
    if (this.hooks.removedPeer?.(from) === true) {
      this.tellRemoved(from);
      return;
    }
    // The host's own messages first: the protocol never sees them.
    switch (type) {
      case 'fwdCall':
        this.serveForwarded(from, msg);
        return;
      case 'fwdReply':
        this.onForwardReply(from, msg);
        return;
      case 'probe':
        return;
    }
    if (typeof type !== 'string' || !this.options.msgTypes.has(type)) {
      this.options.logger?.warn({ from, type }, 'dropped a peer message of unknown shape');
      return;
    }
    this.replica.receive(this.clock(), from, msg as T['msg']);
    this.kick();
  }

  private kick(): void {
    if (this.pumping !== undefined || !this.running) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
      this.schedule();
    });
  }

  /** Takes Ready batches one at a time until there are none: persist, then act, then advance. */
  private async pump(): Promise<void> {
    try {
      for (let rd = this.replica.ready(); rd !== undefined; rd = this.replica.ready()) {
        // A leader's appends leave now, before its own write is even encoded, so its fsync
        // and its followers' run at once; answers that wait on nothing in this batch's write
        // (results of committed entries) go too.
        for (const m of rd.early) this.transport.send(m.to, m.msg);
        if (rd.early.length > 0) this.transport.flushNow();
        this.answer(rd.earlyReplies);
        if (rd.persist.length > 0) await this.hooks.persist(rd.persist);
        this.carryOut(rd);
        this.replica.advance();
      }
    } catch (err) {
      this.fail(err);
    }
  }

  private carryOut(rd: Ready<T>): void {
    this.hooks.durable?.(rd);
    for (const m of rd.messages) this.transport.send(m.to, m.msg);
    for (const event of rd.events) this.hooks.observe(event);
    this.answer(rd.replies);
    if (rd.deliver.length > 0) {
      this.hooks.delivered?.(rd);
      this.publishChanges();
    }
  }

  private answer(replies: readonly Reply<T['reply']>[]): void {
    for (const { client, reply } of replies) {
      const forward = this.localApplied.get(client);
      if (forward !== undefined && reply.type === 'result') {
        this.settleForward(forward, { type: 'result', result: reply.result });
        continue;
      }
      const call = this.calls.get(client);
      if (call === undefined) continue; // timed out already, or the replica's own request
      this.calls.delete(client);
      clearTimeout(call.timer);
      call.resolve(reply);
    }
  }

  /** Tells watchers (and the protocol's hook) what was applied since the last batch. */
  private publishChanges(): void {
    const machine = this.replica.machine;
    if (machine.currentRevision === this.notifiedRevision) return;
    const changes = machine.changesSince(this.notifiedRevision);
    this.notifiedRevision = machine.currentRevision;
    this.hooks.changesApplied?.(changes);
    if (changes === undefined) {
      // A snapshot replaced the state: the changes in between are not kept anywhere.
      for (const w of this.watchers) w.revision = machine.currentRevision;
      this.options.logger?.warn('state replaced by a snapshot; watchers skip to its revision');
      return;
    }
    for (const w of this.watchers) {
      for (const change of changes) {
        if (change.revision <= w.revision) continue;
        w.revision = change.revision;
        if (this.visible(change)) w.onChange(change);
      }
    }
  }

  private visible(change: KvChange): boolean {
    return this.hooks.visible?.(change) ?? true;
  }

  private schedule(): void {
    if (!this.running || this.pumping !== undefined) return;
    const due = this.replica.deadline();
    // -Infinity is a real deadline (a Multi-Paxos core that was never ticked asks for one now);
    // +Infinity means no timer is set.
    if (Number.isNaN(due) || due === Number.POSITIVE_INFINITY || due >= this.timerDue) return;
    clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerDue = Number.POSITIVE_INFINITY;
        if (!this.running) return;
        this.replica.tick(this.clock());
        this.kick();
      },
      Math.max(1, Math.ceil(due - this.clock())),
    );
  }

  private fail(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    this.running = false;
    clearTimeout(this.timer);
    this.options.logger?.fatal({ err }, 'storage failed; the node cannot continue safely');
    for (const call of this.calls.values()) {
      clearTimeout(call.timer);
      call.resolve({ type: 'timeout' });
    }
    this.calls.clear();
    this.settleAllForwards();
    this.options.onFatal?.(err);
  }
}
