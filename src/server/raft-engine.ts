import { randomInt } from 'node:crypto';
import { assert, unreachable } from '../kernel/assert.ts';
import { NO_NODE, type NodeId } from '../kernel/ids.ts';
import { Rng } from '../kernel/rng.ts';
import type { KvChange, KvCommand, KvResult } from '../kv/machine.ts';
import type { ResponseOp } from '../kv/ops.ts';
import { opSizeBytes } from '../kv/validate.ts';
import { defaultRaftOptions, type RaftOptions } from '../raft/config.ts';
import { isMember } from '../raft/membership.ts';
import type { MembershipChange, RaftConfig, RaftEvent } from '../raft/types.ts';
import { raftKvBinding } from '../replica/bindings.ts';
import { isReservedKey, memberKey, removedKey } from '../replica/members.ts';
import {
  defaultReplicaOptions,
  RaftKvReplica,
  type RaftKvTypes,
  type ReplicaOptions,
} from '../replica/raft-kv.ts';
import { classifyReplicaReply } from '../replica/refusal.ts';
import type { RouterTypes } from '../replica/router.ts';
import { type MemberAddress, RefusedError } from './engine.ts';
import { type Membership, NodeEngine, type ProtocolBinding } from './node-engine.ts';
import { encodeMemberRecord, MemberBook } from './raft-members.ts';
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
 * book kept in reserved keys (hidden from clients and watchers), membership changes, and
 * status from the Raft core.
 */
class RaftProtocol implements ProtocolBinding<RaftKvTypes, RaftKvReplica> {
  readonly protocol = 'raft';
  readonly router = raftBinding;
  readonly tickOnStart = false;
  readonly membership: Membership;
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
    this.membership = {
      addLearner: (member) => this.addLearner(member),
      promote: (id) => this.changeMembership({ type: 'promote', node: id }),
      remove: (id) => this.remove(id),
    };
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
   * Commits the member's addresses as a record in the replicated state, then the change:
   * by the time any replica commits the change it has applied the addresses.
   */
  private async addLearner(member: MemberAddress): Promise<void> {
    this.requireLeader();
    // Linearizable, so a tombstone this leader has committed but not applied yet counts.
    const tombstone = await this.host.read(
      { f: 'get', key: removedKey(member.id) },
      'linearizable',
    );
    if (tombstone.f === 'get' && tombstone.entry !== null) {
      throw new RefusedError({
        type: 'conflict',
        reason: `node id ${member.id} was removed from this cluster and is retired; add the node under a new id`,
      });
    }
    // A reserved key, written only here: never forwarded (a leader refuses it from a peer).
    await this.host.write(
      {
        session: 0,
        seq: 0,
        op: { f: 'put', key: memberKey(member.id), value: encodeMemberRecord(member) },
      },
      { forward: false, trusted: true },
    );
    await this.changeMembership({ type: 'addLearner', node: member.id });
  }

  /**
   * Commits the member's tombstone, then the change, then tells the member (it may be a
   * learner, which sends nothing it could be refused for). The tombstone comes first so that
   * no replica ever has the change without it; a tombstone whose change failed harms nothing
   * (a member still in the configuration is never told it was removed) and a retry completes.
   */
  private async remove(id: NodeId): Promise<void> {
    this.requireLeader();
    if (!isMember(this.replica.status().config, id)) {
      if (this.members.tombstoned(id)) return; // a retry of a removal that went through
      throw new RefusedError({ type: 'conflict', reason: `node ${id} is not a member` });
    }
    await this.host.write(
      { session: 0, seq: 0, op: { f: 'put', key: removedKey(id), value: '' } },
      { forward: false, trusted: true },
    );
    // Once it commits, the router tells the member and every node forgets its address.
    await this.changeMembership({ type: 'remove', node: id });
  }

  // -------------------------------------------------------------------------------------
  // Calls into the replica

  /**
   * Carries out a membership change; it resolves once the change is committed here. Another
   * change or a transfer under way is waited out by the router; any other refusal is final.
   */
  private async changeMembership(change: MembershipChange): Promise<void> {
    let unknowns = 0;
    for (;;) {
      const answer = await this.host.replicaCall(
        (id) => ({ type: 'changeMembership', id, change }),
        this.host.settings.callTimeoutMs,
      );
      if (answer !== 'timeout' && answer.type === 'done') return;
      // An earlier attempt of this very change may have gone through.
      if (changeVisible(this.replica.status().config, change)) return;
      if (answer === 'timeout') {
        throw new RefusedError({
          type: 'outcomeUnknown',
          reason: 'the change did not commit in time',
        });
      }
      // Its entry was lost to a leader change: proposing it again is safe (it is idempotent
      // once visible, checked above).
      if (answer.type === 'unknown' && ++unknowns <= this.host.settings.unknownRetriesMax) continue;
      const refused = classifyReplicaReply(answer, 'write');
      if (refused.type === 'result') return;
      const refusal = refused.refusal;
      throw this.host.refusedError(
        refusal.type === 'conflict'
          ? { type: 'conflict', reason: `membership change refused: ${refusal.reason}` }
          : refusal,
      );
    }
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

  private requireLeader(): void {
    const s = this.replica.status();
    if (s.role !== 'leader') throw this.host.refusedError({ type: 'notLeader', leader: s.leader });
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

function changeVisible(config: RaftConfig, change: MembershipChange): boolean {
  switch (change.type) {
    case 'addLearner':
      return config.learners.includes(change.node) || config.voters.includes(change.node);
    case 'promote':
      return config.voters.includes(change.node);
    case 'remove':
      return !config.learners.includes(change.node) && !config.voters.includes(change.node);
    default:
      return unreachable(change, 'membership change');
  }
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
