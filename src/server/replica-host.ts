import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { assert } from '../kernel/assert.ts';
import type { Core, CoreTypes, Ready } from '../kernel/core.ts';
import type { ClientId, NodeId } from '../kernel/ids.ts';
import type { KvChange, KvCommand, KvOp, KvResult, KvStateMachine } from '../kv/machine.ts';
import type { ReplicaReply, ReplicaRequest } from '../replica/raft-kv.ts';
import { TcpTransport, type TlsOptions } from '../runtime/transport/tcp-transport.ts';
import {
  OverloadedError,
  type ReadConsistency,
  UnavailableError,
  type WatchHandle,
} from './engine.ts';
import type { EngineMetrics } from './metrics.ts';

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
 */
export type Answer = ReplicaReply | { readonly type: 'timeout' };

/** A client's KV operation as a replica request; every hosted replica serves these. */
export type KvRequest = Extract<ReplicaRequest, { type: 'kv' }>;

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
  settings: PeerSettings,
  listen: { readonly host: string; readonly port: number },
): TcpTransport<M> {
  return new TcpTransport<M>({
    id: settings.id,
    secret: settings.secret,
    listen,
    ...(settings.tls === undefined ? {} : { tls: settings.tls }),
    log: (level, message) => settings.logger?.[level]({ component: 'transport' }, message),
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

export interface ReplicaHostOptions<T extends HostedTypes> extends ReplicaHostSettings {
  readonly replica: HostedReplica<T>;
  readonly transport: TcpTransport<T['msg']>;
  /** The `type` of every peer message the protocol knows; others are dropped with a warning. */
  readonly msgTypes: ReadonlySet<string>;
  readonly hooks: ReplicaHostHooks<T>;
  /** Tick once at start, before the first batch (a Multi-Paxos node arms its timers so). */
  readonly tickOnStart: boolean;
}

const defaults = { callTimeoutMs: 5000, unknownRetriesMax: 3, callsMax: 10_000 } as const;
/** Pause before asking again after a passing refusal (a transfer, an election under way). */
export const RETRY_PAUSE_MS = 25;

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
  private readonly transport: TcpTransport<T['msg']>;
  private readonly hooks: ReplicaHostHooks<T>;
  private readonly calls = new Map<ClientId, Call>();
  private readonly watchers = new Set<Watcher>();
  private nextClient: ClientId = 1;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Number.POSITIVE_INFINITY;
  private pumping: Promise<void> | undefined;
  private running = false;
  private failure: unknown;
  private notifiedRevision = 0;

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
    await this.transport.stop();
    return true;
  }

  // -------------------------------------------------------------------------------------
  // Client calls

  /** Proposes a write, re-proposing it (same session and seq) while its outcome is unknown. */
  async write(cmd: KvCommand): Promise<KvResult> {
    const deadline = this.clock() + this.settings.callTimeoutMs;
    let unknowns = 0;
    this.metrics.proposal();
    for (;;) {
      const answer = await this.call(
        (id) =>
          this.hooks.kvRequest({ type: 'kv', id, session: cmd.session, seq: cmd.seq, op: cmd.op }),
        deadline,
      );
      if (answer.type === 'result') return answer.result;
      if (answer.type === 'unknown') {
        // Without a session a retry could apply the command twice; with one it cannot.
        if (cmd.session === 0 || ++unknowns > this.settings.unknownRetriesMax) {
          throw new UnavailableError('the outcome of the write is unknown (a leader changed)');
        }
        continue;
      }
      await this.refused(answer, deadline, 'write');
    }
  }

  async read(
    op: Extract<KvOp, { f: 'get' } | { f: 'list' }>,
    consistency: ReadConsistency,
  ): Promise<KvResult> {
    if (consistency === 'stale') return this.replica.machine.read(op);
    const deadline = this.clock() + this.settings.callTimeoutMs;
    for (;;) {
      const answer = await this.call(
        (id) => this.hooks.kvRequest({ type: 'kv', id, session: 0, seq: 0, op }),
        deadline,
      );
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
    if (this.calls.size >= this.settings.callsMax) {
      return Promise.reject(new OverloadedError(`${this.calls.size} calls waiting`));
    }
    const client = this.nextClient++;
    return new Promise<Answer>((resolve) => {
      const timer = setTimeout(
        () => {
          this.calls.delete(client);
          resolve({ type: 'timeout' });
        },
        Math.max(1, deadline - this.clock()),
      );
      this.calls.set(client, { resolve, timer });
      this.replica.request(this.clock(), client, build(client));
      this.kick();
    });
  }

  // -------------------------------------------------------------------------------------
  // Host loop

  private onPeerMessage(from: NodeId, msg: T['msg']): void {
    if (!this.running) return;
    const type = (msg as { type?: unknown } | null)?.type;
    if (typeof type !== 'string' || !this.options.msgTypes.has(type)) {
      this.options.logger?.warn({ from, type }, 'dropped a peer message of unknown shape');
      return;
    }
    this.replica.receive(this.clock(), from, msg);
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
        // A leader's appends leave now, so its fsync and its followers' run at once.
        for (const m of rd.early) this.transport.send(m.to, m.msg);
        await this.hooks.persist(rd.persist);
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
    for (const { client, reply } of rd.replies) {
      const call = this.calls.get(client);
      if (call === undefined) continue; // timed out already, or the replica's own request
      this.calls.delete(client);
      clearTimeout(call.timer);
      call.resolve(reply);
    }
    if (rd.deliver.length > 0) {
      this.hooks.delivered?.(rd);
      this.publishChanges();
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
    this.options.onFatal?.(err);
  }
}
