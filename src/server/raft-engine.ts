import { randomInt } from 'node:crypto';
import { assert, unreachable } from '../kernel/assert.ts';
import { NO_NODE, type NodeId } from '../kernel/ids.ts';
import { Rng } from '../kernel/rng.ts';
import type { KvChange, KvCommand, KvResult } from '../kv/machine.ts';
import type { ResponseOp } from '../kv/ops.ts';
import { opSizeBytes } from '../kv/validate.ts';
import { defaultRaftOptions, type RaftOptions } from '../raft/config.ts';
import type { RaftConfig, RaftEvent } from '../raft/types.ts';
import { raftKvBinding } from '../replica/bindings.ts';
import { isReservedKey } from '../replica/members.ts';
import {
  defaultReplicaOptions,
  RaftKvReplica,
  type RaftKvTypes,
  type ReplicaOptions,
} from '../replica/raft-kv.ts';
import type { RouterTypes } from '../replica/router.ts';
import type { MemberAddress } from './engine.ts';
import { NodeEngine, type ProtocolBinding } from './node-engine.ts';
import { MemberBook } from './raft-members.ts';
import { RaftStorage } from './raft-storage.ts';
import {
  type HostTransport,
  type PeerSettings,
  peerTransport,
  type ReplicaHost,
  type ReplicaHostSettings,
  silentMetrics,
} from './replica-host.ts';

/**
 * A real Raft node: a `RaftKvReplica` on the runtime (WAL, hard-state and snapshot stores,
 * TCP transport, timers), served as a `KvEngine` by the one engine of every protocol
 * (node-engine.ts) with the Raft binding below.
 */
export interface RaftEngineOptions extends PeerSettings, ReplicaHostSettings {
  readonly dataDir: string;
  /** Every member known at start (this node included), with its addresses. */
  readonly members: readonly MemberAddress[];
  /** Start with an empty configuration and wait to be added by the cluster's leader. */
  readonly join?: boolean;
  readonly raft?: Partial<Omit<RaftOptions<KvCommand>, 'sizeOf'>>;
  readonly replica?: Partial<ReplicaOptions>;
  /**
   * Called once when this node learns it was removed from the cluster: `toldBy` is the peer
   * that said so, or this node's own id when it applied its removal itself. It will never be
   * a member again (its id is retired); `quorate node` shuts down, as etcd does.
   */
  readonly onRemoved?: (detail: { readonly toldBy: NodeId }) => void;
}

const raftBinding = raftKvBinding<RaftKvReplica>((r) => r);

/** A KV command's byte size for Raft's flow control: close enough, stable, positive. */
function commandBytes(cmd: KvCommand): number {
  return 2 * opSizeBytes(cmd.op);
}

/**
 * What is Raft's in a real node (node-engine.ts hosts it): the storage, the member address
 * book kept in reserved keys (hidden from clients and watchers; the router's membership
 * steps write them, src/replica/bindings.ts), and
 * status from the Raft core.
 */
class RaftProtocol implements ProtocolBinding<RaftKvTypes, RaftKvReplica> {
  readonly protocol = 'raft';
  readonly router = raftBinding;
  readonly tickOnStart = false;
  private readonly id: NodeId;
  private readonly members: MemberBook;
  private host!: ReplicaHost<RaftKvTypes, RaftKvReplica>;
  /** The leader last logged, to log changes only (who leads is the router's to say). */
  private loggedLeader: NodeId = NO_NODE;
  private committed: number;
  private removed = false;

  constructor(
    readonly replica: RaftKvReplica,
    private readonly storage: RaftStorage,
    transport: HostTransport<RaftKvTypes>,
    private readonly options: RaftEngineOptions,
  ) {
    this.id = options.id;
    const self = options.members.find((m) => m.id === options.id);
    assert(self !== undefined, `node ${options.id} is not in its own member list`);
    this.members = new MemberBook(self, options.members, (id, peer) => transport.addPeer(id, peer));
    this.committed = replica.status().commit;
  }

  persist(items: readonly RaftKvTypes['persist'][]): Promise<void> {
    return this.storage.persist(items);
  }

  close(): Promise<void> {
    return this.storage.close();
  }

  attach(host: ReplicaHost<RaftKvTypes, RaftKvReplica>) {
    this.host = host;
    return {
      observe: (event: RaftEvent) => this.observe(event),
      changesApplied: (changes: readonly KvChange[] | undefined) => {
        if (changes === undefined) this.members.reload(this.replica.machine);
        else this.members.observe(changes);
      },
      visible: (change: KvChange) => !isReservedKey(change.key),
      clientUrl: (id: NodeId) => this.members.clientUrl(id),
      peerAddress: (id: NodeId) => this.members.peerAddress(id),
      removed: (toldBy: NodeId) => this.learnRemoved(toldBy),
      peerRemoved: (id: NodeId) => this.members.forget(id),
    };
  }

  beforeStart(): void {
    this.members.reload(this.replica.machine);
  }

  /**
   * Peers are dialed once the log is replayed, so a member whose removal it holds (and the
   * tombstone of which it applies only now) is never dialed again after a restart.
   */
  started(): void {
    this.members.open();
  }

  readResult(result: KvResult): KvResult {
    return withoutReserved(result);
  }

  status() {
    const s = this.replica.status();
    const leading = s.role === 'leader';
    return {
      role: s.role,
      term: s.term,
      commitIndex: s.commit,
      appliedIndex: this.replica.machine.appliedIndex,
      revision: this.replica.machine.currentRevision,
      members: this.members.members(s.config),
      progress: leading
        ? [...s.progress].map(([id, p]) => ({
            id,
            match: p.match,
            next: p.next,
            state: p.state,
            recentActive: p.recentActive,
          }))
        : undefined,
    };
  }

  /**
   * A peer's word is enough: it is authenticated by the cluster secret, and says so only once
   * it has applied this node's tombstone and committed a configuration without it.
   */
  private learnRemoved(toldBy: NodeId): void {
    if (this.removed) return;
    this.removed = true;
    this.options.logger?.warn(
      { toldBy },
      toldBy === this.id
        ? 'this node applied its own removal from the cluster'
        : 'a peer says this node was removed from the cluster',
    );
    this.options.onRemoved?.({ toldBy });
  }

  // -------------------------------------------------------------------------------------
  // Events

  private observe(event: RaftEvent): void {
    const metrics = this.host.metrics;
    switch (event.type) {
      case 'roleChanged':
        if (event.leader !== this.loggedLeader) {
          this.loggedLeader = event.leader;
          metrics.leaderChange();
          this.options.logger?.info(
            { role: event.role, term: event.term, leader: event.leader },
            'leader changed',
          );
        }
        return;
      case 'electionStarted':
        if (!event.preVote) metrics.election();
        return;
      case 'committed':
        metrics.commit(event.index - this.committed);
        this.committed = Math.max(this.committed, event.index);
        metrics.applyLag(this.committed - this.replica.machine.appliedIndex);
        return;
      case 'configChanged':
        this.options.logger?.info({ config: event.config, index: event.index }, 'configuration');
        return;
      case 'snapshotInstalled':
        this.options.logger?.info({ index: event.index }, 'installed a snapshot from the leader');
        return;
      case 'elected':
      case 'transferAborted':
      case 'dropped':
        return;
      default:
        unreachable(event, 'raft event');
    }
  }
}

/** A real Raft node: a `RaftKvReplica` on the runtime, served as a `KvEngine`. */
export type RaftEngine = NodeEngine<RaftKvTypes, RaftKvReplica>;

export const RaftEngine = {
  /**
   * Opens the data directory and restores the node (hard state, newest snapshot, WAL after
   * it). Throws WalCorruptionError when a WAL record before the tail is damaged.
   */
  async open(options: RaftEngineOptions): Promise<RaftEngine> {
    const metrics = options.metrics ?? silentMetrics;
    const bootstrap: RaftConfig = options.join
      ? { voters: [], learners: [] }
      : { voters: options.members.map((m) => m.id).sort((a, b) => a - b), learners: [] };
    const storage = await RaftStorage.open({
      dir: options.dataDir,
      id: options.id,
      bootstrap,
      walMetrics: { fsync: (ms) => metrics.observeFsync(ms / 1000) },
    });
    const raftOptions: RaftOptions<KvCommand> = {
      ...defaultRaftOptions<KvCommand>(commandBytes),
      ...options.raft,
    };
    const replica = RaftKvReplica.restore(
      options.id,
      storage.restored,
      raftOptions,
      Rng.fromSeed(randomInt(2 ** 47)),
      { ...defaultReplicaOptions, ...options.replica },
    );
    const self = options.members.find((m) => m.id === options.id);
    const listen = options.peerListen ?? peerListenOf(self?.peerAddress);
    const transport = peerTransport<RouterTypes<RaftKvTypes>['msg']>(options, listen);
    const protocol = new RaftProtocol(replica, storage, transport, options);
    return new NodeEngine(protocol, transport, {
      ...options,
      peers: options.members.map((m) => m.id),
    });
  },
};

function peerListenOf(address: string | undefined): { host: string; port: number } {
  const match = address === undefined ? null : /^(.*):(\d+)$/.exec(address);
  assert(match !== null, `this node's peer address '${address}' is not host:port`);
  return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port: Number(match[2]) };
}

function withoutReserved(result: KvResult): KvResult {
  switch (result.f) {
    case 'list': {
      const entries = result.entries.filter((e) => !isReservedKey(e.key));
      return entries.length === result.entries.length ? result : { ...result, entries };
    }
    case 'range':
    case 'txn':
      return withoutReservedOp(result);
    default:
      return result;
  }
}

/** An etcd range (or a txn's ranges) without the reserved keys, counted out too. */
function withoutReservedOp(result: ResponseOp): ResponseOp {
  if (result.f === 'txn') return { ...result, responses: result.responses.map(withoutReservedOp) };
  if (result.f !== 'range') return result;
  const kvs = result.kvs.filter((kv) => !isReservedKey(kv.key));
  if (kvs.length === result.kvs.length) return result;
  return { ...result, kvs, count: result.count - (result.kvs.length - kvs.length) };
}
