import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { assert } from '../kernel/assert.ts';
import type { Core, Ready, Reply } from '../kernel/core.ts';
import type { ClientId, NodeId } from '../kernel/ids.ts';
import type {
  KvChange,
  KvCommand,
  KvFeedChange,
  KvReadOp,
  KvResult,
  KvStateMachine,
} from '../kv/machine.ts';
import type { Refusal } from '../replica/refusal.ts';
import {
  defaultRouterOptions,
  type RoutedTypes,
  Router,
  type RouterBinding,
  type RouterNotice,
  type RouterReply,
  type RouterTypes,
} from '../replica/router.ts';
import type { MemberChange, RouterMsg } from '../replica/router-msgs.ts';
import { TcpTransport, type TlsOptions } from '../runtime/transport/tcp-transport.ts';
import type { PeerAddress, Transport } from '../runtime/transport/transport.ts';
import { type ReadConsistency, RefusedError, type WatchHandle } from './engine.ts';
import type { EngineMetrics } from './metrics.ts';
import { NodeHost } from './node-host.ts';

/**
 * The key-value service of a real node: a `NodeHost` (node-host.ts: timers, sockets, fsync)
 * driving one pure core, the call router in front of a KV replica (src/replica/router.ts).
 * This class turns the API's calls into router requests and the router's answers back into
 * results or `RefusedError`s, tells watchers what was applied, and carries out what the
 * router's notices ask of the transport (forget a removed peer's address).
 *
 * Everything that decides (forwarding to the leader, retries, deadlines, refusals, membership
 * steps, removal notices, probes) is the router's, so the simulator runs it too. The service
 * only reports what the node alone can see: the transport's word that a peer's link went down
 * or came up (`linkChanged`), and a forwarded call the transport would not take (`unsent`).
 */

/** A replica the host can serve KV calls from (its state machine read-only: stale reads, watch). */
export interface HostedReplica<T extends RoutedTypes> extends Core<T> {
  readonly machine: KvStateMachine;
}

export interface ReplicaHostHooks<T extends RoutedTypes> {
  /** Makes a batch's persist items durable, in order; resolves once every one is. */
  persist(items: readonly T['persist'][]): Promise<void>;
  /** Reads what status derives from a durable batch, before any of it is acted on. */
  durable?(rd: Ready<RouterTypes<T>>): void;
  /** An observer event of the protocol (metrics, logs, role and leader for status). */
  observe(event: T['event']): void;
  /** The batch delivered something; called before watchers hear of it (commit metrics). */
  delivered?(rd: Ready<RouterTypes<T>>): void;
  /**
   * Applied changes, before watchers get them; `undefined` when a snapshot replaced the state
   * and the changes in between are lost (the Raft node rebuilds its address book then).
   */
  changesApplied?(changes: readonly KvChange[] | undefined): void;
  /** Whether watchers may see a change (the Raft node hides its member records). */
  visible?(change: KvChange): boolean;
  /** The client URL of member `id`, for refusals that name a leader. */
  clientUrl(id: NodeId): string | undefined;
  /** The peer address of member `id`, kept after its removal to tell it once it speaks. */
  peerAddress?(id: NodeId): PeerAddress | undefined;
  /** This node was removed from the cluster. */
  removed?(toldBy: NodeId): void;
  /** Peer `id`'s removal committed: forget its address. */
  peerRemoved?(id: NodeId): void;
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
  /** How long a client call may wait for its answer before it is refused. */
  readonly callTimeoutMs?: number;
  /**
   * Attempts again of a write (same session and seq) or a membership change whose outcome
   * came back unknown.
   */
  readonly unknownRetriesMax?: number;
  /** Client calls in flight at once, own and forwarded; more are refused as overloaded. */
  readonly callsMax?: number;
  readonly metrics?: EngineMetrics;
  readonly logger?: Logger;
  /** Called once when the node can no longer run safely (a failed fsync); it should exit. */
  readonly onFatal?: (err: unknown) => void;
  /** The node's monotonic clock in ms. */
  readonly clock?: () => number;
}

/** The peer transport of a host: the replica's messages and the router's share it. */
export type HostTransport<T extends RoutedTypes> = Transport<RouterTypes<T>['msg']>;

export interface ReplicaHostOptions<T extends RoutedTypes, R extends HostedReplica<T>>
  extends ReplicaHostSettings {
  readonly replica: R;
  readonly binding: RouterBinding<T, R>;
  readonly transport: HostTransport<T>;
  readonly hooks: ReplicaHostHooks<T>;
  /** Peers known from outside the replica's state (a learner probes them). */
  readonly peers: readonly NodeId[];
  /** Tick once at start, before the first batch (a Multi-Paxos node arms its timers so). */
  readonly tickOnStart: boolean;
}

const defaults = { callTimeoutMs: 5000, unknownRetriesMax: 3, callsMax: 10_000 } as const;
/** How long a removed peer's link may wait for the notice queued for it to leave. */
const REMOVED_LINGER_MS = 2000;
/** How often a lingering removed peer's queue is looked at. */
const LINGER_CHECK_MS = 50;

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

interface Watcher {
  readonly onChange: (change: KvFeedChange) => void;
  /** Changes up to this revision were given to it. */
  revision: number;
}

type Waiting<T extends RoutedTypes> = (reply: RouterReply<T['reply']> | undefined) => void;

export class ReplicaHost<T extends RoutedTypes, R extends HostedReplica<T>> {
  readonly clock: () => number;
  readonly metrics: EngineMetrics;
  readonly settings: { readonly [K in keyof typeof defaults]: number };
  readonly router: Router<T, R>;
  private readonly node: NodeHost<RouterTypes<T>>;
  private readonly replica: R;
  private readonly transport: HostTransport<T>;
  private readonly hooks: ReplicaHostHooks<T>;
  /** Host client id -> whoever waits for its answer (`undefined`: the node stopped). */
  private readonly waiting = new Map<ClientId, Waiting<T>>();
  private readonly watchers = new Set<Watcher>();
  private nextClient: ClientId = 1;
  private readonly lingering = new Map<NodeId, NodeJS.Timeout>();
  private notifiedRevision = 0;

  constructor(private readonly options: ReplicaHostOptions<T, R>) {
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
    this.router = new Router(options.replica, options.binding, {
      ...defaultRouterOptions,
      callTimeoutMs: settings.callTimeoutMs,
      unknownRetriesMax: settings.unknownRetriesMax,
      callsMax: settings.callsMax,
      peers: options.peers,
    });
    this.node = new NodeHost<RouterTypes<T>>({
      core: this.router,
      transport: options.transport,
      tickOnStart: options.tickOnStart,
      clock: this.clock,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
      service: {
        persist: (items) => this.hooks.persist(items),
        send: (to, msg) => this.send(to, msg),
        durable: (rd) => this.hooks.durable?.(rd),
        event: (event) => this.onEvent(event),
        replies: (replies) => this.answer(replies),
        delivered: (rd) => {
          this.hooks.delivered?.(rd);
          this.publishChanges();
        },
        failed: (err) => {
          this.clearTimers();
          this.abandonCalls();
          this.options.onFatal?.(err);
        },
      },
    });
  }

  /** Starts the peer listener and the timers. */
  async start(): Promise<void> {
    this.notifiedRevision = this.replica.machine.currentRevision;
    this.transport.onLinkChange?.((peer, up) => {
      if (this.node.accepting) this.node.input((now) => this.router.linkChanged(now, peer, up));
    });
    await this.node.start();
  }

  /** Resolves once the batches pending now are carried out (after start: the log replayed). */
  settled(): Promise<void> {
    return this.node.settled();
  }

  /** Finishes the batch being written, then closes the transport (the caller, its storage). */
  async stop(): Promise<boolean> {
    this.clearTimers();
    const stopped = await this.node.stop();
    this.abandonCalls();
    return stopped;
  }

  // -------------------------------------------------------------------------------------
  // Client calls

  /** A write through the router: forwarded from a follower unless `options.forward` is false. */
  async write(cmd: KvCommand, options: CallOptions = {}): Promise<KvResult> {
    return this.kvCall('write', cmd, options.forward ?? true);
  }

  async read(
    op: KvReadOp,
    consistency: ReadConsistency,
    options: CallOptions = {},
  ): Promise<KvResult> {
    if (consistency === 'stale') return this.replica.machine.read(op);
    return this.kvCall('read', { session: 0, seq: 0, op }, options.forward ?? true);
  }

  watch(fromRevision: number, onChange: (change: KvFeedChange) => void): WatchHandle | 'compacted' {
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

  /**
   * A membership change through the router: forwarded to the leader and carried out there in
   * the steps the protocol's rules say; resolves once done, rejects with its refusal.
   */
  memberCall(change: MemberChange): Promise<void> {
    return new Promise((resolve, reject) => {
      const client = this.admit(reject);
      if (client === undefined) return;
      this.waiting.set(client, (reply) => {
        if (reply?.type !== 'member') {
          const reason = 'the node stopped before the change ended';
          reject(this.refusedError({ type: 'outcomeUnknown', reason }));
        } else if (reply.outcome.type === 'done') {
          resolve();
        } else {
          reject(this.refusedError(reply.outcome.refusal));
        }
      });
      this.node.input((now) =>
        this.router.request(now, client, {
          type: 'member',
          id: client,
          change,
          timeoutMs: this.settings.callTimeoutMs,
          forward: true,
        }),
      );
    });
  }

  /** The error a refusal is thrown as: the refusal itself, and where its leader listens. */
  refusedError(refusal: Refusal): RefusedError {
    const url = refusal.type === 'notLeader' ? this.hooks.clientUrl(refusal.leader) : undefined;
    return new RefusedError(refusal, url);
  }

  private kvCall(kind: 'write' | 'read', cmd: KvCommand, forward: boolean): Promise<KvResult> {
    return new Promise((resolve, reject) => {
      const client = this.admit(reject);
      if (client === undefined) return;
      this.waiting.set(client, (reply) => {
        if (reply?.type !== 'answer') {
          const reason = 'the node stopped before the call ended';
          reject(
            this.refusedError(
              kind === 'write' ? { type: 'outcomeUnknown', reason } : { type: 'retry', reason },
            ),
          );
        } else if (reply.answer.type === 'result') {
          resolve(reply.answer.result);
        } else {
          reject(this.refusedError(reply.answer.refusal));
        }
      });
      this.node.input((now) =>
        this.router.request(now, client, {
          type: 'call',
          id: client,
          kind,
          session: cmd.session,
          seq: cmd.seq,
          op: cmd.op,
          timeoutMs: this.settings.callTimeoutMs,
          forward,
        }),
      );
    });
  }

  /** A client id for a new call, or undefined (after rejecting it) when the node is down. */
  private admit(reject: (err: unknown) => void): ClientId | undefined {
    if (!this.node.accepting) {
      reject(this.refusedError({ type: 'retry', reason: 'the node is not running' }));
      return undefined;
    }
    return this.nextClient++;
  }

  private answer(replies: readonly Reply<RouterReply<T['reply']>>[]): void {
    for (const { client, reply } of replies) {
      const waiter = this.waiting.get(client);
      if (waiter === undefined) continue; // an admin call that timed out already
      this.waiting.delete(client);
      waiter(reply);
    }
  }

  /** Ends every waiting call: the node stopped, so none of them will be answered here. */
  private abandonCalls(): void {
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const waiter of waiting) waiter(undefined);
  }

  // -------------------------------------------------------------------------------------
  // Peers

  private send(to: NodeId, msg: RouterTypes<T>['msg']): void {
    const routed = msg as RouterMsg;
    if (routed.type === 'removed') this.relinkRemoved(to);
    const sent = this.transport.send(to, msg);
    if (sent !== 'queued' && sent !== 'queued-dropped-oldest' && routed.type === 'fwdCall') {
      this.router.unsent(this.clock(), to, routed);
    }
  }

  /**
   * A removed peer is forgotten, but one that speaks again (it was down as it was removed)
   * must hear so: its address is taken back for the notice, and dropped again after it left.
   */
  private relinkRemoved(to: NodeId): void {
    if (this.transport.peerStats(to) !== undefined && !this.lingering.has(to)) return;
    const address = this.hooks.peerAddress?.(to);
    if (address === undefined) return;
    this.transport.addPeer(to, address);
    this.forgetLater(to);
  }

  /**
   * Drops a removed peer's link once the notice queued for it has left (or after
   * `REMOVED_LINGER_MS` when it never does: the peer is down), so nothing redials it.
   */
  private forgetLater(id: NodeId): void {
    clearInterval(this.lingering.get(id));
    const until = this.clock() + REMOVED_LINGER_MS;
    const timer = setInterval(() => {
      const queued = this.transport.peerStats(id)?.queuedMessages ?? 0;
      if (queued > 0 && this.clock() < until) return;
      clearInterval(timer);
      this.lingering.delete(id);
      if (this.router.removedMembers().has(id)) this.transport.removePeer(id);
    }, LINGER_CHECK_MS);
    timer.unref();
    this.lingering.set(id, timer);
  }

  private clearTimers(): void {
    for (const timer of this.lingering.values()) clearInterval(timer);
    this.lingering.clear();
  }

  // -------------------------------------------------------------------------------------
  // Events and changes

  private onEvent(event: RouterTypes<T>['event']): void {
    const e = event as { type: unknown; notice?: RouterNotice };
    if (e.type === 'router' && e.notice !== undefined) this.onNotice(e.notice);
    else this.hooks.observe(event as T['event']);
  }

  private onNotice(notice: RouterNotice): void {
    switch (notice.type) {
      case 'proposed':
        this.metrics.proposal();
        return;
      case 'dropped':
        this.options.logger?.warn({ from: notice.from, why: notice.why }, 'dropped a peer message');
        return;
      case 'peerRemoved':
        this.options.logger?.info(
          { id: notice.id },
          'a member was removed; forgetting its address',
        );
        this.hooks.peerRemoved?.(notice.id);
        if (notice.told) {
          // The notice to it is queued: let it go before the address does.
          this.transport.flush();
          this.forgetLater(notice.id);
        } else {
          this.transport.removePeer(notice.id);
        }
        return;
      case 'removedFromCluster':
        this.hooks.removed?.(notice.toldBy);
        return;
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
}
