import { randomInt } from 'node:crypto';
import { assert, unreachable } from '../kernel/assert.ts';
import { NO_NODE, type NodeId } from '../kernel/ids.ts';
import { Rng } from '../kernel/rng.ts';
import type { KvChange, KvCommand, KvOp, KvResult } from '../kv/machine.ts';
import { defaultRaftOptions, type RaftOptions } from '../raft/config.ts';
import { isMember } from '../raft/membership.ts';
import type { MembershipChange, RaftConfig, RaftEvent, RaftMsg } from '../raft/types.ts';
import {
  defaultReplicaOptions,
  RaftKvReplica,
  type RaftKvTypes,
  type ReplicaOptions,
} from '../replica/raft-kv.ts';
import {
  type EngineStatus,
  type KvEngine,
  type MemberAddress,
  NotLeaderError,
  OverloadedError,
  type ReadConsistency,
  UnavailableError,
  type WatchHandle,
} from './engine.ts';
import { ApiError } from './errors.ts';
import type { HostMsg } from './peer-calls.ts';
import {
  encodeMemberRecord,
  guardReservedWrite,
  isReservedKey,
  MemberBook,
  memberKey,
  removedKey,
} from './raft-members.ts';
import { RaftStorage } from './raft-storage.ts';
import {
  type Answer,
  type HostTransport,
  type PeerSettings,
  peerTransport,
  ReplicaHost,
  type ReplicaHostSettings,
  silentMetrics,
} from './replica-host.ts';

/**
 * A real Raft node: hosts a `RaftKvReplica` on the runtime (WAL, hard-state and snapshot
 * stores, TCP transport, timers) and serves it as a `KvEngine` to the HTTP API.
 *
 * The host loop is `ReplicaHost` (persist, then send, answer and advance); this class adds
 * what is Raft's: the storage, the member address book kept in reserved keys (hidden from
 * clients and watchers), membership changes, and status from the Raft core.
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

/** How often a leaderless learner checks whether to probe its peers (see `Probe`). */
const PROBE_INTERVAL_MS = 2000;

const raftMsgTypes = new Set<string>([
  'requestVote',
  'requestVoteReply',
  'append',
  'appendReply',
  'heartbeat',
  'heartbeatReply',
  'snapshotChunk',
  'snapshotChunkReply',
  'commitHint',
  'timeoutNow',
]);

/** A KV command's byte size for Raft's flow control: close enough, stable, positive. */
function commandBytes(cmd: KvCommand): number {
  const op = cmd.op;
  const key = 'key' in op ? op.key.length : op.prefix.length;
  const value = 'value' in op ? op.value.length : 0;
  return 32 + 2 * (key + value);
}

export class RaftEngine implements KvEngine {
  readonly id: NodeId;
  private readonly host: ReplicaHost<RaftKvTypes>;
  private readonly members: MemberBook;
  private leader: NodeId = NO_NODE;
  private committed = 0;
  private removed = false;
  private probeTimer: NodeJS.Timeout | undefined;
  /** Whether the last probe check found this node a learner without a leader. */
  private orphaned = false;

  private constructor(
    private readonly replica: RaftKvReplica,
    private readonly storage: RaftStorage,
    transport: HostTransport<RaftKvTypes>,
    private readonly options: RaftEngineOptions,
  ) {
    this.id = options.id;
    this.host = new ReplicaHost<RaftKvTypes>({
      ...options,
      replica,
      transport,
      msgTypes: raftMsgTypes,
      tickOnStart: false,
      hooks: {
        persist: (items) => storage.persist(items),
        kvRequest: (req) => req,
        appliedRequest: (req) => req,
        observe: (event) => this.observe(event),
        changesApplied: (changes) => {
          if (changes === undefined) this.members.reload(replica.machine);
          else this.members.observe(changes);
          this.checkSelfRemoved();
        },
        visible: (change) => !isReservedKey(change.key),
        refusal: (answer, _deadline, kind) => this.refusal(answer, kind),
        admit: guardReservedWrite,
        leader: () => this.leader,
        removedPeer: (from) => this.members.tombstoned(from) && this.goneFromConfig(from),
        removedNotice: (from) => this.learnRemoved(from),
      },
    });
    const self = options.members.find((m) => m.id === options.id);
    assert(self !== undefined, `node ${options.id} is not in its own member list`);
    this.members = new MemberBook(self, options.members, (id, peer) => transport.addPeer(id, peer));
    this.committed = replica.status().commit;
  }

  /**
   * Opens the data directory and restores the node (hard state, newest snapshot, WAL after
   * it). Throws WalCorruptionError when a WAL record before the tail is damaged.
   */
  static async open(options: RaftEngineOptions): Promise<RaftEngine> {
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
    const transport = peerTransport<RaftMsg<KvCommand> | HostMsg>(options, listen);
    return new RaftEngine(replica, storage, transport, options);
  }

  /** Starts the peer listener and the timers. */
  async start(): Promise<void> {
    this.members.reload(this.replica.machine);
    await this.host.start();
    // A node restarted on the data of a member that had applied its own removal.
    this.checkSelfRemoved();
    this.probeTimer = setInterval(() => this.probeIfOrphaned(), PROBE_INTERVAL_MS);
    this.probeTimer.unref();
  }

  /** Finishes the batch being written, then closes the transport and the storage. */
  async stop(): Promise<void> {
    clearInterval(this.probeTimer);
    if (await this.host.stop()) await this.storage.close();
  }

  // -------------------------------------------------------------------------------------
  // KvEngine

  async write(cmd: KvCommand): Promise<KvResult> {
    guardReservedWrite(cmd.op);
    return this.host.write(cmd);
  }

  async read(
    op: Extract<KvOp, { f: 'get' } | { f: 'list' }>,
    consistency: ReadConsistency,
  ): Promise<KvResult> {
    return withoutReserved(await this.host.read(op, consistency));
  }

  watch(fromRevision: number, onChange: (change: KvChange) => void): WatchHandle | 'compacted' {
    return this.host.watch(fromRevision, onChange);
  }

  /** The leader's client URL while another node leads: where forwarded calls were served. */
  leaderHint(): string | undefined {
    if (this.leader === NO_NODE || this.leader === this.id) return undefined;
    return this.members.clientUrl(this.leader);
  }

  status(): EngineStatus {
    const s = this.replica.status();
    const leading = s.role === 'leader';
    return {
      id: this.id,
      protocol: 'raft',
      role: s.role,
      term: s.term,
      leader: s.leader,
      leaderClientUrl: s.leader === NO_NODE ? undefined : this.members.clientUrl(s.leader),
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
  async addLearner(member: MemberAddress): Promise<void> {
    this.requireLeader();
    // Linearizable, so a tombstone this leader has committed but not applied yet counts.
    const tombstone = await this.host.read(
      { f: 'get', key: removedKey(member.id) },
      'linearizable',
    );
    if (tombstone.f === 'get' && tombstone.entry !== null) {
      throw new ApiError(
        409,
        'invalid-request',
        `node id ${member.id} was removed from this cluster and is retired; add the node under a new id`,
      );
    }
    // A reserved key, written only here: never forwarded (a leader refuses it from a peer).
    await this.host.write(
      {
        session: 0,
        seq: 0,
        op: { f: 'put', key: memberKey(member.id), value: encodeMemberRecord(member) },
      },
      { forward: false },
    );
    await this.changeMembership({ type: 'addLearner', node: member.id });
  }

  promote(id: NodeId): Promise<void> {
    return this.changeMembership({ type: 'promote', node: id });
  }

  /**
   * Commits the member's tombstone, then the change, then tells the member (it may be a
   * learner, which sends nothing it could be refused for). The tombstone comes first so that
   * no replica ever has the change without it; a tombstone whose change failed harms nothing
   * (a member still in the configuration is never told it was removed) and a retry completes.
   */
  async remove(id: NodeId): Promise<void> {
    this.requireLeader();
    if (!isMember(this.replica.status().config, id)) {
      if (this.members.tombstoned(id)) return; // a retry of a removal that went through
      throw new ApiError(409, 'invalid-request', `node ${id} is not a member`);
    }
    await this.host.write(
      { session: 0, seq: 0, op: { f: 'put', key: removedKey(id), value: '' } },
      { forward: false },
    );
    await this.changeMembership({ type: 'remove', node: id });
    if (id !== this.id) this.host.tellRemoved(id);
  }

  // -------------------------------------------------------------------------------------
  // Calls into the replica

  /** Carries out a membership change; it resolves once the change is committed here. */
  private async changeMembership(change: MembershipChange): Promise<void> {
    const deadline = this.host.clock() + this.host.settings.callTimeoutMs;
    for (;;) {
      const answer = await this.host.call(
        (id) => ({ type: 'changeMembership', id, change }),
        deadline,
      );
      if (answer.type === 'done') return;
      if (answer.type === 'unknown') {
        if (changeVisible(this.replica.status().config, change)) return;
        continue;
      }
      if (answer.type === 'rejected') {
        const reason = answer.reason;
        if (reason === 'invalid-change' && changeVisible(this.replica.status().config, change)) {
          return; // an earlier attempt of this very change went through
        }
        if (reason === 'invalid-change' || reason === 'unknown-peer' || reason === 'not-a-voter') {
          throw new ApiError(409, 'invalid-request', `membership change refused: ${reason}`);
        }
      }
      await this.host.refused(answer, deadline, 'write');
    }
  }

  /** Throws for a final answer; returns for one worth retrying (a leader transfer passing). */
  private refusal(answer: Answer, kind: 'read' | 'write'): void {
    switch (answer.type) {
      case 'notLeader':
        throw new NotLeaderError(answer.leader, this.members.clientUrl(answer.leader));
      case 'timeout':
        throw new UnavailableError(`no answer within ${this.host.settings.callTimeoutMs} ms`);
      case 'rejected':
        if (
          answer.reason === 'overloaded' ||
          answer.reason === 'uncommitted-cap' ||
          answer.reason === 'read-cap'
        ) {
          throw new OverloadedError(answer.reason);
        }
        return;
      case 'unknown':
        if (kind === 'read') return;
        throw new UnavailableError('the outcome is unknown');
      case 'result':
      case 'done':
        throw new Error(`unexpected answer '${answer.type}' to a ${kind}`);
      default:
        unreachable(answer, 'answer');
    }
  }

  /** Whether `id` is in neither role of this node's configuration, and that is committed. */
  private goneFromConfig(id: NodeId): boolean {
    const s = this.replica.status();
    return s.commit >= s.configIndex && !isMember(s.config, id);
  }

  /**
   * A learner that has had no leader for two checks in a row probes every member it has an
   * address for (its log may not even hold its own addition, if it stopped right after
   * joining): if it was removed while it was down, a peer answers so. A voter needs no
   * probe: it campaigns, and the peers answer that.
   */
  private probeIfOrphaned(): void {
    const s = this.replica.status();
    const orphaned = !this.removed && s.leader === NO_NODE && !s.config.voters.includes(this.id);
    const probe = orphaned && this.orphaned;
    this.orphaned = orphaned;
    if (!probe) return;
    for (const id of this.members.known()) if (id !== this.id) this.host.probe(id);
  }

  private checkSelfRemoved(): void {
    if (this.members.tombstoned(this.id) && this.goneFromConfig(this.id)) {
      this.learnRemoved(this.id);
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
    if (s.role !== 'leader') throw new NotLeaderError(s.leader, this.members.clientUrl(s.leader));
  }

  // -------------------------------------------------------------------------------------
  // Events

  private observe(event: RaftEvent): void {
    const metrics = this.host.metrics;
    switch (event.type) {
      case 'roleChanged':
        if (event.leader !== this.leader) {
          this.leader = event.leader;
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
        this.checkSelfRemoved();
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
  if (result.f !== 'list') return result;
  const entries = result.entries.filter((e) => !isReservedKey(e.key));
  return entries.length === result.entries.length ? result : { ...result, entries };
}
