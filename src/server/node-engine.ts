import { NO_NODE, type NodeId } from '../kernel/ids.ts';
import type { AuthView, KvCommand, KvFeedChange, KvReadOp, KvResult } from '../kv/machine.ts';
import type { RoutedTypes, RouterBinding } from '../replica/router.ts';
import type {
  EngineStatus,
  KvEngine,
  MemberAddress,
  ReadConsistency,
  WatchHandle,
} from './engine.ts';
import {
  type HostedReplica,
  type HostTransport,
  ReplicaHost,
  type ReplicaHostHooks,
  type ReplicaHostSettings,
} from './replica-host.ts';

/**
 * The one engine every real KV node runs, whatever its protocol: the key-value service
 * (replica-host.ts) on the node host, served to the HTTP API as a `KvEngine`. What differs
 * per protocol is a `ProtocolBinding`: its storage, the router binding (message kinds, who
 * leads, membership rules), and its events' meaning for metrics and status. Membership
 * changes are router calls like any other (src/replica/router-members.ts).
 */
export interface ProtocolBinding<T extends RoutedTypes, R extends HostedReplica<T>> {
  readonly protocol: EngineStatus['protocol'];
  readonly replica: R;
  readonly router: RouterBinding<T, R>;
  /** Tick once at start, before the first batch (a Multi-Paxos node arms its timers so). */
  readonly tickOnStart: boolean;
  /** Makes a batch's persist items durable, in order (the protocol's storage). */
  persist(items: readonly T['persist'][]): Promise<void>;
  /** Closes the storage, once the host has stopped. */
  close(): Promise<void>;
  /** What the host tells the protocol; called once, with the host the engine made. */
  attach(host: ReplicaHost<T, R>): Omit<ReplicaHostHooks<T>, 'persist'>;
  /** Before the host starts (the Raft node reads its member records). */
  beforeStart?(): void;
  /** After the host started and replayed the log (the Raft node dials its peers then). */
  started?(): void;
  /** The status the protocol reports; `leader` is the router's. */
  status(leader: NodeId): Omit<EngineStatus, 'id' | 'protocol' | 'leader' | 'leaderClientUrl'>;
  /** A read's result as clients may see it (the Raft node hides its member records). */
  readResult?(result: KvResult): KvResult;
}

export interface NodeEngineOptions extends ReplicaHostSettings {
  readonly id: NodeId;
  /** Every member known at start (a learner probes them). */
  readonly peers: readonly NodeId[];
}

export class NodeEngine<T extends RoutedTypes, R extends HostedReplica<T>> implements KvEngine {
  readonly id: NodeId;
  readonly host: ReplicaHost<T, R>;
  private readonly hooks: Omit<ReplicaHostHooks<T>, 'persist'>;

  constructor(
    private readonly binding: ProtocolBinding<T, R>,
    transport: HostTransport<T>,
    options: NodeEngineOptions,
  ) {
    this.id = options.id;
    let hooks: Omit<ReplicaHostHooks<T>, 'persist'> | undefined;
    this.host = new ReplicaHost<T, R>({
      ...options,
      replica: binding.replica,
      binding: binding.router,
      transport,
      tickOnStart: binding.tickOnStart,
      hooks: {
        persist: (items) => binding.persist(items),
        observe: (event) => hooks?.observe(event),
        durable: (rd) => hooks?.durable?.(rd),
        delivered: (rd) => hooks?.delivered?.(rd),
        changesApplied: (changes) => hooks?.changesApplied?.(changes),
        visible: (change) => hooks?.visible?.(change) ?? true,
        clientUrl: (id) => hooks?.clientUrl(id),
        peerAddress: (id) => hooks?.peerAddress?.(id),
        removed: (toldBy) => hooks?.removed?.(toldBy),
        peerRemoved: (id) => hooks?.peerRemoved?.(id),
      },
    });
    hooks = binding.attach(this.host);
    this.hooks = hooks;
  }

  /** Starts the peer listener and the timers. */
  async start(): Promise<void> {
    this.binding.beforeStart?.();
    await this.host.start();
    await this.host.settled();
    this.binding.started?.();
  }

  /** Finishes the batch being written, then closes the transport and the storage. */
  async stop(): Promise<void> {
    if (await this.host.stop()) await this.binding.close();
  }

  async write(cmd: KvCommand): Promise<KvResult> {
    return this.host.write(cmd);
  }

  async read(op: KvReadOp, consistency: ReadConsistency): Promise<KvResult> {
    const result = await this.host.read(op, consistency);
    return this.binding.readResult?.(result) ?? result;
  }

  watch(fromRevision: number, onChange: (change: KvFeedChange) => void): WatchHandle | 'compacted' {
    return this.host.watch(fromRevision, onChange);
  }

  /** The leader's client URL while another node leads: where forwarded calls were served. */
  leaderHint(): string | undefined {
    const leader = this.host.router.leader();
    if (leader === NO_NODE || leader === this.id) return undefined;
    return this.hooks.clientUrl(leader);
  }

  authView(): AuthView {
    // Looked up each time: a snapshot install replaces the machine.
    return this.binding.replica.machine.auth;
  }

  status(): EngineStatus {
    const leader = this.host.router.leader();
    return {
      id: this.id,
      protocol: this.binding.protocol,
      leader,
      leaderClientUrl: leader === NO_NODE ? undefined : this.hooks.clientUrl(leader),
      ...this.binding.status(leader),
    };
  }

  addLearner(member: MemberAddress): Promise<void> {
    const { id, peerAddress, clientUrl } = member;
    return this.host.memberCall({ type: 'addLearner', node: id, peerAddress, clientUrl });
  }

  promote(id: NodeId): Promise<void> {
    return this.host.memberCall({ type: 'promote', node: id });
  }

  remove(id: NodeId): Promise<void> {
    return this.host.memberCall({ type: 'remove', node: id });
  }
}
