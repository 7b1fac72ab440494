import { randomInt } from 'node:crypto';
import { assert, unreachable } from '../kernel/assert.ts';
import type { Ready } from '../kernel/core.ts';
import { NO_NODE, type NodeId } from '../kernel/ids.ts';
import { Rng } from '../kernel/rng.ts';
import { formatProposalId, maxProposalId, type ProposalId } from '../paxos/ballot.ts';
import { MULTI_PAXOS_DEFAULTS, type MultiPaxosConfig } from '../paxos/multi/node.ts';
import type { MultiEvent } from '../paxos/multi/types.ts';
import { multiPaxosKvBinding } from '../replica/bindings.ts';
import {
  defaultMultiKvReplicaOptions,
  type MultiKvReplicaOptions,
  MultiPaxosKvReplica,
  type MultiPaxosKvTypes,
} from '../replica/multipaxos-kv.ts';
import type { RouterTypes } from '../replica/router.ts';
import type { MemberAddress } from './engine.ts';
import { MultiPaxosStorage } from './multipaxos-storage.ts';
import { NodeEngine, type ProtocolBinding } from './node-engine.ts';
import { parsePeerAddress } from './raft-members.ts';
import {
  type HostTransport,
  type PeerSettings,
  peerTransport,
  type ReplicaHost,
  type ReplicaHostSettings,
  silentMetrics,
} from './replica-host.ts';

/**
 * A real Multi-Paxos node: hosts a `MultiPaxosKvReplica` on the runtime (WAL, snapshot
 * store, TCP transport, timers) and serves it as a `KvEngine`, so the HTTP API, client, CLI
 * and end-to-end tests are the Raft node's.
 *
 * The engine is the Raft node's (node-engine.ts): a batch costs one WAL append and one
 * fdatasync. The binding below adds what is Multi-Paxos's.
 *
 * The membership is fixed at start: Multi-Paxos reconfiguration is not implemented, and
 * the membership calls are refused as 'unsupported' (HTTP 501).
 */
export interface MultiPaxosEngineOptions extends PeerSettings, ReplicaHostSettings {
  readonly dataDir: string;
  /** Every member (this node included), with its addresses. */
  readonly members: readonly MemberAddress[];
  readonly paxos?: Partial<Omit<MultiPaxosConfig, 'id' | 'members' | 'unsafeTestingFaults'>>;
  readonly replica?: Partial<MultiKvReplicaOptions>;
}

const multiBinding = multiPaxosKvBinding<MultiPaxosKvReplica>((r) => r);

type Msg = RouterTypes<MultiPaxosKvTypes>['msg'];
type Role = 'follower' | 'candidate' | 'leader';

/**
 * What is Multi-Paxos's in a real node (node-engine.ts hosts it): its storage, and the role
 * and ballot that status reports, read from core events and durable batches.
 */
class MultiPaxosProtocol implements ProtocolBinding<MultiPaxosKvTypes, MultiPaxosKvReplica> {
  readonly protocol = 'multipaxos';
  readonly router = multiBinding;
  // The first tick arms the election timer (a restarted node first sits out a lease).
  readonly tickOnStart = true;
  private readonly id: NodeId;
  private host!: ReplicaHost<MultiPaxosKvTypes, MultiPaxosKvReplica>;
  private readonly clientUrls = new Map<NodeId, string>();
  private role: Role = 'follower';
  /** The leader last logged, to log changes only (who leads is the router's to say). */
  private loggedLeader: NodeId = NO_NODE;
  /** The highest ballot this node made durable (promised or accepted under): its "term". */
  private ballot: ProposalId;
  private chosenBelow: number;

  constructor(
    readonly replica: MultiPaxosKvReplica,
    private readonly storage: MultiPaxosStorage,
    transport: HostTransport<MultiPaxosKvTypes>,
    private readonly options: MultiPaxosEngineOptions,
    promised: ProposalId,
  ) {
    this.id = options.id;
    for (const m of options.members) {
      this.clientUrls.set(m.id, m.clientUrl);
      if (m.id === options.id) continue;
      const peer = parsePeerAddress(m.peerAddress);
      assert(
        peer !== undefined,
        `member ${m.id}'s peer address '${m.peerAddress}' is not host:port`,
      );
      transport.addPeer(m.id, peer);
    }
    this.ballot = promised;
    this.chosenBelow = replica.paxos.commitIndex();
  }

  persist(items: readonly MultiPaxosKvTypes['persist'][]): Promise<void> {
    return this.storage.persist(items);
  }

  close(): Promise<void> {
    return this.storage.close();
  }

  attach(host: ReplicaHost<MultiPaxosKvTypes, MultiPaxosKvReplica>) {
    this.host = host;
    return {
      durable: (rd: Ready<RouterTypes<MultiPaxosKvTypes>>) => this.noteBallots(rd.persist),
      observe: (event: MultiEvent) => this.observe(event),
      delivered: (rd: Ready<RouterTypes<MultiPaxosKvTypes>>) => this.delivered(rd.deliver),
      clientUrl: (id: NodeId) => this.clientUrls.get(id),
    };
  }

  status() {
    return {
      role: this.role,
      term: this.ballot.round,
      // Instances play the part of log indexes: the last chosen one, the last applied one.
      commitIndex: this.replica.paxos.commitIndex() - 1,
      appliedIndex: this.replica.lastApplied,
      revision: this.replica.machine.currentRevision,
      members: this.options.members.map((m) => ({ ...m, role: 'voter' as const })),
      progress: undefined,
    };
  }

  // -------------------------------------------------------------------------------------
  // Events

  /** Raises the reported ballot to the highest one the batch made durable. */
  private noteBallots(persist: Ready<MultiPaxosKvTypes>['persist']): void {
    for (const p of persist) {
      if (p.type === 'promise' || p.type === 'accept') {
        this.ballot = maxProposalId(this.ballot, p.ballot);
      }
    }
  }

  /** Commit metrics for the instances chosen by this batch, and snapshots taken from peers. */
  private delivered(deliver: Ready<MultiPaxosKvTypes>['deliver']): void {
    for (const d of deliver) {
      if (d.type === 'snapshot') {
        this.options.logger?.info({ upTo: d.upTo }, 'installed a snapshot from a peer');
      }
    }
    const chosenBelow = this.replica.paxos.commitIndex();
    this.host.metrics.commit(chosenBelow - this.chosenBelow);
    this.chosenBelow = chosenBelow;
    this.host.metrics.applyLag(chosenBelow - 1 - this.replica.lastApplied);
  }

  private observe(event: MultiEvent): void {
    switch (event.type) {
      case 'campaign':
        this.role = 'candidate';
        this.host.metrics.election();
        this.setLeader(NO_NODE, { ballot: formatProposalId(event.ballot) });
        return;
      case 'leader':
        this.role = 'leader';
        this.setLeader(this.id, {
          ballot: formatProposalId(event.ballot),
          recovered: event.recovered,
        });
        return;
      case 'follower':
        this.role = 'follower';
        this.setLeader(event.leader ?? NO_NODE, {});
        return;
      case 'catchUpNeeded':
        this.options.logger?.info({ from: event.fromInstance }, 'catching up from a peer');
        return;
      case 'dropped':
        this.options.logger?.warn({ from: event.from }, 'dropped a message from an unknown peer');
        return;
      default:
        unreachable(event, 'multi-paxos event');
    }
  }

  private setLeader(leader: NodeId, detail: Record<string, unknown>): void {
    if (leader === this.loggedLeader) return;
    this.loggedLeader = leader;
    this.host.metrics.leaderChange();
    this.options.logger?.info({ role: this.role, leader, ...detail }, 'leader changed');
  }
}

/** A real Multi-Paxos node: a `MultiPaxosKvReplica` on the runtime, served as a `KvEngine`. */
export type MultiPaxosEngine = NodeEngine<MultiPaxosKvTypes, MultiPaxosKvReplica>;

export const MultiPaxosEngine = {
  /**
   * Opens the data directory and restores the node (newest snapshot, then the WAL folded
   * over it). Throws WalCorruptionError when a WAL record before the tail is damaged.
   */
  async open(options: MultiPaxosEngineOptions): Promise<MultiPaxosEngine> {
    const metrics = options.metrics ?? silentMetrics;
    const self = options.members.find((m) => m.id === options.id);
    assert(self !== undefined, `node ${options.id} is not in its own member list`);
    const storage = await MultiPaxosStorage.open({
      dir: options.dataDir,
      id: options.id,
      walMetrics: { fsync: (ms) => metrics.observeFsync(ms / 1000) },
    });
    const config: MultiPaxosConfig = {
      ...MULTI_PAXOS_DEFAULTS,
      ...options.paxos,
      id: options.id,
      members: options.members.map((m) => m.id).sort((a, b) => a - b),
    };
    const durable = storage.durable();
    const replica = MultiPaxosKvReplica.restore(config, Rng.fromSeed(randomInt(2 ** 47)), durable, {
      ...defaultMultiKvReplicaOptions,
      ...options.replica,
    });
    const listen = options.peerListen ?? parsePeerAddress(self.peerAddress);
    assert(listen !== undefined, `this node's peer address '${self.peerAddress}' is not host:port`);
    const transport = peerTransport<Msg>(options, listen);
    const protocol = new MultiPaxosProtocol(replica, storage, transport, options, durable.promised);
    return new NodeEngine(protocol, transport, {
      ...options,
      peers: options.members.map((m) => m.id),
    });
  },
};
