import { unreachable } from '../kernel/assert.ts';
import { type ClientId, NO_NODE, type NodeId } from '../kernel/ids.ts';
import type { Rng } from '../kernel/rng.ts';
import type { RaftOptions } from './config.ts';
import { initialDurableState, type RaftDurableState } from './durable.ts';
import type { RaftLogView } from './log.ts';
import { applyChange } from './membership.ts';
import { RaftNode } from './node.ts';
import type { ProgressState } from './progress.ts';
import type { RestoreOptions } from './state.ts';
import type {
  DropReason,
  MembershipChange,
  RaftConfig,
  RaftReply,
  RaftRequest,
  RejectReason,
  Role,
} from './types.ts';

export interface ProgressView {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly inflightMsgs: number;
  readonly inflightBytes: number;
  readonly recentActive: boolean;
}

/** A read-only picture of a node's state for checkers, metrics and the visualizer. */
export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly vote: NodeId;
  readonly leader: NodeId;
  readonly commit: number;
  /** Last index handed to the host for applying (a snapshot counts as its index). */
  readonly applied: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  readonly config: RaftConfig;
  /** Where `config` was appended: it is committed once `commit` reaches this index. */
  readonly configIndex: number;
  readonly transferee: NodeId;
  /** Per-peer replication progress; empty unless leader. */
  readonly progress: ReadonlyMap<NodeId, ProgressView>;
  readonly pendingReads: number;
  readonly dropped: Readonly<Record<DropReason, number>>;
}

/**
 * A Raft node for hosts: the protocol (node.ts) plus client requests and introspection.
 * Create a fresh node with `RaftCore.create`, or rebuild one after a crash with
 * `RaftCore.restore` from the state `applyPersist` made durable; then drive it through the
 * kernel `Core` contract.
 */
export class RaftCore<C> extends RaftNode<C> {
  /** A brand-new node whose log starts under `config` (empty for a node to be added later). */
  static create<C>(id: NodeId, config: RaftConfig, opts: RaftOptions<C>, rng: Rng): RaftCore<C> {
    return new RaftCore(id, initialDurableState<C>(config), opts, rng, {});
  }

  /** A node restarting after a crash from what `applyPersist` made durable. */
  static restore<C>(
    id: NodeId,
    durable: RaftDurableState<C>,
    opts: RaftOptions<C>,
    rng: Rng,
    restoreOpts: RestoreOptions = {},
  ): RaftCore<C> {
    return new RaftCore(id, durable, opts, rng, restoreOpts);
  }

  request(now: number, client: ClientId, req: RaftRequest<C>): void {
    this.setNow(now);
    const reply = this.handleRequest(client, req);
    if (reply !== undefined) this.out.reply(client, reply);
    this.finish();
  }

  status(): RaftStatus {
    const progress = new Map<NodeId, ProgressView>();
    for (const [id, pr] of this.progress) {
      progress.set(id, {
        match: pr.match,
        next: pr.next,
        state: pr.state,
        inflightMsgs: pr.inflights.count,
        inflightBytes: pr.inflights.bytes,
        recentActive: pr.recentActive,
      });
    }
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leader: this.leader,
      commit: this.raftLog.commit,
      applied: this.applied,
      lastIndex: this.raftLog.lastIndex,
      snapshotIndex: this.raftLog.snapshotIndex,
      config: this.config,
      configIndex: this.configIndex,
      transferee: this.transferee,
      progress,
      pendingReads: this.reads.size,
      dropped: { ...this.drops },
    };
  }

  /** The leader this node knows of (NO_NODE when none): `status().leader`, without its copying. */
  knownLeader(): NodeId {
    return this.leader;
  }

  /** The live log, read-only. */
  log(): RaftLogView<C> {
    return this.raftLog;
  }

  /** The answer to `req`, or undefined when it comes later (a read waiting for its round). */
  private handleRequest(client: ClientId, req: RaftRequest<C>): RaftReply | undefined {
    const id = req.id;
    switch (req.type) {
      case 'campaign':
        if (!this.promotable()) return rejected(id, 'not-a-voter');
        this.hup(false);
        return { type: 'done', id };
      case 'compact':
        return this.compact(id, req.index, req.data);
      default:
        break;
    }
    if (this.role !== 'leader') return { type: 'notLeader', id, leaderHint: this.leader };
    switch (req.type) {
      case 'propose':
        return this.propose(id, req.data, req.origin);
      case 'read':
        if (this.reads.full()) return rejected(id, 'read-cap');
        this.serveRead({ client, id });
        return undefined;
      case 'transferLeadership':
        return this.startTransfer(id, req.to);
      case 'changeMembership':
        return this.changeMembership(id, req.change);
      default:
        return unreachable(req, 'request');
    }
  }

  /** Whether a new entry may be appended now, or why not. */
  private admission(): RejectReason | undefined {
    if (this.transferee !== NO_NODE) return 'transfer-in-progress';
    const uncommitted = this.raftLog.lastIndex - this.raftLog.commit;
    if (uncommitted >= this.opts.uncommittedEntriesMax) return 'uncommitted-cap';
    return undefined;
  }

  private propose(id: number, data: C, origin: NodeId | undefined): RaftReply {
    const refused = this.admission();
    if (refused !== undefined) return rejected(id, refused);
    const index = this.raftLog.lastIndex + 1;
    this.appendLocal({ index, term: this.term, kind: 'normal', data });
    if (origin !== undefined) this.wantHint(origin, index);
    return { type: 'accepted', id, index, term: this.term };
  }

  /**
   * One single-server change at a time (dissertation 4.1), and only once this term has
   * committed an entry: without that, a change appended by a new leader can conflict with an
   * uncommitted one of its predecessor (Ongaro, raft-dev, "bug in single-server membership
   * changes", 2015).
   */
  private changeMembership(id: number, change: MembershipChange): RaftReply {
    const refused = this.admission();
    if (refused !== undefined) return rejected(id, refused);
    const log = this.raftLog;
    if (this.configIndex > log.commit || log.term(log.commit) !== this.term) {
      return rejected(id, 'change-in-progress');
    }
    const config = applyChange(this.config, change);
    if (config === undefined) return rejected(id, 'invalid-change');
    if (change.type === 'promote') {
      const match = this.progress.get(change.node)?.match ?? 0;
      if (log.lastIndex - match > this.opts.appendEntriesMax) {
        return rejected(id, 'learner-not-caught-up');
      }
    }
    const index = log.lastIndex + 1;
    this.appendLocal({ index, term: this.term, kind: 'config', change, config });
    return { type: 'accepted', id, index, term: this.term };
  }

  /**
   * Leadership transfer (dissertation 3.10): stop taking proposals, bring the target up to
   * date, then tell it to campaign at once. Aborted after a minimum election timeout.
   */
  private startTransfer(id: number, to: NodeId): RaftReply {
    if (to === this.id) return { type: 'done', id };
    if (this.transferee !== NO_NODE) return rejected(id, 'transfer-in-progress');
    const pr = this.progress.get(to);
    if (pr === undefined || !this.config.voters.includes(to)) return rejected(id, 'not-a-voter');
    this.transferee = to;
    this.transferDeadline = this.now + this.opts.electionTimeoutMinMs;
    if (pr.match === this.raftLog.lastIndex) {
      this.out.send(to, { type: 'timeoutNow', term: this.term });
    } else {
      this.appendsDue.add(to);
    }
    return { type: 'done', id };
  }

  /** Log compaction (paper section 7): the host's state machine state at applied `index`. */
  private compact(id: number, index: number, data: Uint8Array): RaftReply {
    const log = this.raftLog;
    if (!Number.isSafeInteger(index) || index <= log.snapshotIndex || index > this.applied) {
      return rejected(id, 'compact-out-of-range');
    }
    if (data.length > this.opts.snapshotBytesMax) return rejected(id, 'snapshot-too-large');
    const snapshot = log.compact(index, data);
    this.out.persist({ kind: 'snapshot', snapshot });
    return { type: 'done', id };
  }
}

function rejected(id: number, reason: RejectReason): RaftReply {
  return { type: 'rejected', id, reason };
}
