import { assert, unreachable } from '../kernel/assert.ts';
import type { Core, Ready } from '../kernel/core.ts';
import { type ClientId, NO_NODE, type NodeId } from '../kernel/ids.ts';
import { committedIndex, voteResult } from '../kernel/quorum.ts';
import { entryBytes } from './log.ts';
import { isMember, peersOf, sameConfig } from './membership.ts';
import { Progress } from './progress.ts';
import type { ReadTicket } from './read-index.ts';
import { snapshotChunk } from './snapshot.ts';
import { RaftState } from './state.ts';
import type {
  AppendMsg,
  AppendReplyMsg,
  Entry,
  HeartbeatMsg,
  RaftMsg,
  RaftRequest,
  RaftTypes,
  RequestVoteMsg,
  RequestVoteReplyMsg,
  Snapshot,
  SnapshotChunkMsg,
  SnapshotChunkReplyMsg,
} from './types.ts';

type Msg<C> = RaftMsg<C>;

/**
 * The protocol of a Raft node (Ongaro & Ousterhout 2014; Ongaro's dissertation 2014) as a
 * pure state machine over `RaftState`; `RaftCore` (core.ts) adds client requests and
 * introspection. Shaped like etcd-io/raft: `step` does the term checks every role shares, then dispatches to
 * `stepLeader` / `stepCandidate` / `stepFollower`; roles change only in `becomeX`; per-peer
 * replication is a `Progress` state machine; quorum math comes from the kernel.
 *
 * Durability: term, vote and entries are persisted in the same batch as the messages that
 * depend on them (the kernel's `Ready` rule), and items are ordered so that any prefix of a
 * batch is a safe state to restart from: hard state precedes the entries it makes valid.
 */
export abstract class RaftNode<C> extends RaftState<C> implements Core<RaftTypes<C>> {
  abstract request(now: number, client: ClientId, req: RaftRequest<C>): void;

  // -------------------------------------------------------------------------------------
  // Core contract

  tick(now: number): void {
    this.setNow(now);
    if (this.role === 'leader') this.tickLeader();
    else if (now >= this.electionDeadline && this.promotable()) this.hup(false);
    this.finish();
  }

  receive(now: number, from: NodeId, msg: Msg<C>): void {
    this.setNow(now);
    this.step(from, msg);
    this.finish();
  }

  deadline(): number {
    // Output waiting for the next batch (more entries to deliver than one batch holds, appends
    // due) asks for a tick now, so a host that schedules only by deadline still drains it.
    // Not while a batch is out: that would only make the host spin until advance().
    if (!this.out.isOut() && this.hasWorkForNextBatch()) return this.now;
    if (this.role !== 'leader') return this.electionDeadline;
    return Math.min(
      this.heartbeatDeadline,
      this.checkQuorumDeadline,
      this.transferDeadline,
      this.commitNoticeDeadline,
    );
  }

  ready(): Ready<RaftTypes<C>> | undefined {
    if (this.out.isOut()) return undefined;
    if (this.role === 'leader') {
      this.sendCommitHints();
      this.flushLeaderSends();
    }
    this.queueDeliveries();
    const rd = this.out.ready();
    if (rd !== undefined) this.batchCut();
    return rd;
  }

  advance(): void {
    this.out.advance();
    // The leader's own entries count towards commit once its disk holds them. With two or
    // more voters a quorum needs a follower's ack, which only covers entries of batches
    // already durable here, but a lone voter (with learners to tell) counts on itself alone.
    if (!this.batchDurable()) return;
    if (this.role === 'leader') this.maybeCommit();
    else this.commitByHint(); // a hint may have waited for this node's own write
    this.finish();
  }

  // -------------------------------------------------------------------------------------
  // Role transitions (the only place `role` changes)

  protected becomeFollower(term: number, leader: NodeId): void {
    assert(term >= this.term, 'becomeFollower to an older term');
    const wasLeader = this.role === 'leader';
    if (term > this.term) {
      this.term = term;
      this.vote = NO_NODE;
      this.forgetLeaderMatch();
    }
    this.setRole('follower', leader);
    if (wasLeader) this.loseLeadership();
    if (leader !== NO_NODE) this.lastHeardFromLeaderAt = this.now;
    this.resetElectionTimer();
  }

  protected becomePreCandidate(): void {
    assert(this.role !== 'leader', 'a leader cannot become a pre-candidate');
    this.setRole('preCandidate', NO_NODE);
    this.votes = new Map();
    this.resetElectionTimer();
  }

  protected becomeCandidate(): void {
    assert(this.role !== 'leader', 'a leader cannot become a candidate');
    this.term++;
    this.vote = this.id;
    this.setRole('candidate', NO_NODE);
    this.votes = new Map();
    this.resetElectionTimer();
  }

  protected becomeLeader(): void {
    assert(this.role === 'candidate', 'only a candidate becomes leader');
    assert(this.vote === this.id, 'a leader voted for itself');
    this.setRole('leader', this.id);
    this.progress = new Map();
    for (const peer of peersOf(this.config, this.id)) this.addProgress(peer);
    this.heartbeatDeadline = this.now;
    this.checkQuorumDeadline = this.now + this.opts.electionTimeoutMinMs;
    this.electionDeadline = Number.POSITIVE_INFINITY;
    this.out.emit({ type: 'elected', term: this.term });
    // Section 5.4.2 / 8: a leader commits its predecessors' entries only through one of its own.
    this.appendLocal({ index: this.raftLog.lastIndex + 1, term: this.term, kind: 'noop' });
  }

  protected loseLeadership(): void {
    for (const t of this.reads.clear()) this.replyNotLeader(t);
    this.progress = new Map();
    this.transferee = NO_NODE;
    this.transferDeadline = Number.POSITIVE_INFINITY;
    this.heartbeatDeadline = Number.POSITIVE_INFINITY;
    this.checkQuorumDeadline = Number.POSITIVE_INFINITY;
    this.commitNoticeDeadline = Number.POSITIVE_INFINITY;
    this.appendsDue.clear();
    this.hintsWanted.clear();
    this.hintedIndex = 0;
  }

  // -------------------------------------------------------------------------------------
  // Timers

  protected tickLeader(): void {
    if (this.now >= this.commitNoticeDeadline) this.sendCommitNotices();
    if (this.now >= this.heartbeatDeadline) {
      this.bcastHeartbeat();
      this.heartbeatDeadline = this.now + this.opts.heartbeatIntervalMs;
    }
    if (this.now >= this.checkQuorumDeadline) {
      this.checkQuorumDeadline = this.now + this.opts.electionTimeoutMinMs;
      if (this.opts.checkQuorum && !this.quorumActive()) {
        this.becomeFollower(this.term, NO_NODE); // dissertation 6.2
        return;
      }
      for (const pr of this.progress.values()) pr.recentActive = false;
    }
    if (this.now >= this.transferDeadline) this.abortTransfer();
  }

  protected quorumActive(): boolean {
    const active = new Map<NodeId, boolean>();
    for (const v of this.config.voters) {
      active.set(v, v === this.id || this.progress.get(v)?.recentActive === true);
    }
    return voteResult(this.config.voters, active) === 'won';
  }

  // -------------------------------------------------------------------------------------
  // Elections (paper section 5.2, pre-vote dissertation 9.6)

  protected hup(transfer: boolean): void {
    if (this.role === 'leader' || !this.promotable()) return;
    if (this.opts.preVote && !transfer) {
      this.becomePreCandidate();
      this.campaign(true, false);
    } else {
      this.becomeCandidate();
      this.campaign(false, transfer);
    }
  }

  protected campaign(preVote: boolean, transfer: boolean): void {
    const term = preVote ? this.term + 1 : this.term;
    this.out.emit({ type: 'electionStarted', term, preVote });
    this.votes.set(this.id, true);
    if (this.tallyVotes(preVote)) return;
    const msg: RequestVoteMsg = {
      type: 'requestVote',
      term,
      lastLogIndex: this.raftLog.lastIndex,
      lastLogTerm: this.raftLog.lastTerm,
      preVote,
      transfer,
    };
    for (const v of this.config.voters) if (v !== this.id) this.out.send(v, msg);
  }

  /** Count votes; acts on a decided election and returns whether it was decided. */
  protected tallyVotes(preVote: boolean): boolean {
    const result = voteResult(this.config.voters, this.votes);
    if (result === 'pending') return false;
    if (result === 'lost') this.becomeFollower(this.term, NO_NODE);
    else if (preVote) {
      this.becomeCandidate();
      this.campaign(false, false);
    } else this.becomeLeader();
    return true;
  }

  protected handleVote(from: NodeId, m: RequestVoteMsg): void {
    const canVote =
      this.vote === from ||
      (this.vote === NO_NODE && this.leader === NO_NODE) ||
      (m.preVote && m.term > this.term);
    const upToDate =
      this.opts.unsafeTestingFaults?.voteIgnoringLogs === true ||
      this.raftLog.isUpToDate(m.lastLogIndex, m.lastLogTerm);
    if (canVote && upToDate) {
      this.out.send(from, {
        type: 'requestVoteReply',
        term: m.term,
        granted: true,
        preVote: m.preVote,
      });
      if (!m.preVote) {
        this.vote = from;
        this.resetElectionTimer();
      }
    } else {
      this.out.send(from, {
        type: 'requestVoteReply',
        term: this.term,
        granted: false,
        preVote: m.preVote,
      });
    }
  }

  /** Whether this node still trusts a leader it heard from recently (leader stickiness, 6.2 / 4.2.3). */
  protected inLease(): boolean {
    if (!this.opts.checkQuorum) return false;
    if (this.role === 'leader') return true;
    // After a restart it cannot know whether it heard a leader just before the crash; waiting
    // one minimum timeout keeps that leader's lease (6.4.1) valid across follower restarts.
    const sinceStart = this.now - (this.startedAt ?? this.now);
    if (this.recovered && sinceStart < this.opts.electionTimeoutMinMs) return true;
    return (
      this.leader !== NO_NODE &&
      this.now - this.lastHeardFromLeaderAt < this.opts.electionTimeoutMinMs
    );
  }

  // -------------------------------------------------------------------------------------
  // Step: term checks shared by all roles, then per-role dispatch

  protected step(from: NodeId, m: Msg<C>): void {
    if (m.term > this.term) {
      if (m.type === 'requestVote' && !m.transfer && this.inLease()) {
        this.drop(from, m, 'leader-lease');
        return;
      }
      const keepTerm =
        (m.type === 'requestVote' && m.preVote) ||
        (m.type === 'requestVoteReply' && m.preVote && m.granted);
      if (!keepTerm) {
        const fromLeader =
          m.type === 'append' ||
          m.type === 'heartbeat' ||
          m.type === 'snapshotChunk' ||
          m.type === 'commitHint';
        this.becomeFollower(m.term, fromLeader ? from : NO_NODE);
      }
    } else if (m.term < this.term) {
      this.answerStale(from, m);
      this.drop(from, m, 'stale-term');
      return;
    }
    switch (m.type) {
      case 'requestVote':
        this.handleVote(from, m);
        return;
      case 'timeoutNow':
        if (this.role !== 'leader') this.hup(true);
        return;
      default:
        break;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(from, m);
        return;
      case 'preCandidate':
      case 'candidate':
        this.stepCandidate(from, m);
        return;
      case 'follower':
        this.stepFollower(from, m);
        return;
      default:
        unreachable(this.role, 'role');
    }
  }

  /** Tell a node with an old term about ours, so a deposed leader or stale candidate steps down. */
  protected answerStale(from: NodeId, m: Msg<C>): void {
    if (
      m.type === 'append' ||
      m.type === 'heartbeat' ||
      m.type === 'snapshotChunk' ||
      m.type === 'commitHint'
    ) {
      this.out.send(from, { type: 'heartbeatReply', term: this.term, round: 0 });
    } else if (m.type === 'requestVote') {
      this.out.send(from, {
        type: 'requestVoteReply',
        term: this.term,
        granted: false,
        preVote: m.preVote,
      });
    }
  }

  protected stepLeader(from: NodeId, m: Msg<C>): void {
    if (
      m.type === 'append' ||
      m.type === 'heartbeat' ||
      m.type === 'snapshotChunk' ||
      m.type === 'commitHint'
    ) {
      assert(false, `two leaders in term ${this.term}: ${this.id} and ${from}`);
    }
    if (m.type === 'timeoutNow' || m.type === 'requestVote' || m.type === 'requestVoteReply') {
      this.drop(from, m, 'stale-reply');
      return;
    }
    const pr = this.progress.get(from);
    if (pr === undefined) {
      this.drop(from, m, 'unknown-peer');
      return;
    }
    pr.recentActive = true;
    switch (m.type) {
      case 'appendReply':
        this.handleAppendReply(from, pr, m);
        return;
      case 'heartbeatReply':
        this.handleHeartbeatReply(from, pr, m.round);
        return;
      case 'snapshotChunkReply':
        this.handleSnapshotChunkReply(from, pr, m);
        return;
      default:
        unreachable(m, 'leader message');
    }
  }

  protected stepCandidate(from: NodeId, m: Msg<C>): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshotChunk':
      case 'commitHint':
        this.becomeFollower(this.term, from);
        this.stepFollower(from, m);
        return;
      case 'requestVoteReply':
        this.handleVoteReply(from, m);
        return;
      default:
        this.drop(from, m, 'stale-reply');
    }
  }

  protected handleVoteReply(from: NodeId, m: RequestVoteReplyMsg): void {
    const preVote = this.role === 'preCandidate';
    if (m.preVote !== preVote) {
      this.drop(from, m, 'stale-reply');
      return;
    }
    if (!this.votes.has(from)) this.votes.set(from, m.granted);
    this.tallyVotes(preVote);
  }

  protected stepFollower(from: NodeId, m: Msg<C>): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshotChunk':
      case 'commitHint':
        if (this.leader !== from) this.setRole('follower', from);
        this.lastHeardFromLeaderAt = this.now;
        this.resetElectionTimer();
        if (m.type === 'append') this.handleAppend(from, m);
        else if (m.type === 'heartbeat') this.handleHeartbeat(from, m);
        else if (m.type === 'commitHint') this.handleCommitHint(m.index);
        else this.handleSnapshotChunk(from, m);
        return;
      default:
        this.drop(from, m, 'stale-reply');
    }
  }

  // -------------------------------------------------------------------------------------
  // Follower side of replication (figure 2, section 5.3)

  protected handleAppend(from: NodeId, m: AppendMsg<C>): void {
    const log = this.raftLog;
    if (m.prevIndex < log.commit) {
      // Everything up to our commit matches the leader; tell it where to continue.
      this.leaderMatch = Math.max(this.leaderMatch, log.commit);
      this.out.send(from, {
        type: 'appendReply',
        term: this.term,
        success: true,
        index: log.commit,
      });
      return;
    }
    const outcome = log.tryAppend(m.prevIndex, m.prevTerm, m.entries);
    if (!outcome.ok) {
      this.out.send(from, {
        type: 'appendReply',
        term: this.term,
        success: false,
        rejectedIndex: m.prevIndex,
        hintIndex: outcome.hintIndex,
        hintTerm: outcome.hintTerm,
      });
      return;
    }
    if (outcome.written.length > 0) {
      this.persistEntries(outcome.written as readonly Entry<C>[]);
      this.refreshConfig();
    }
    this.leaderMatch = Math.max(this.leaderMatch, outcome.lastNewIndex);
    this.commitTo(Math.min(m.commit, outcome.lastNewIndex));
    this.out.send(from, {
      type: 'appendReply',
      term: this.term,
      success: true,
      index: outcome.lastNewIndex,
    });
  }

  protected handleCommitHint(index: number): void {
    this.hintedCommit = Math.max(this.hintedCommit, index);
    this.commitByHint();
  }

  /**
   * Commits what the leader's hint proves: the quorum it counted holds the hinted entry if
   * this node does, so the entries this node's disk holds (written in batches already
   * advanced) and shares with the leader are committed, provided the last of them is of the
   * current term. An older term's entry is not committed by being on a quorum (figure 8).
   */
  protected commitByHint(): void {
    const index = Math.min(this.hintedCommit, this.leaderMatch, this.stableIndex);
    if (index <= this.raftLog.commit || this.raftLog.term(index) !== this.term) return;
    this.commitTo(index);
  }

  protected handleHeartbeat(from: NodeId, m: HeartbeatMsg): void {
    this.commitTo(Math.min(m.commit, this.raftLog.lastIndex));
    // Round 0 only carries a commit index (one per commit under load): the leader's periodic
    // heartbeats, which are numbered, are the ones it needs answered.
    if (m.round === 0) return;
    this.out.send(from, { type: 'heartbeatReply', term: this.term, round: m.round });
  }

  protected handleSnapshotChunk(from: NodeId, m: SnapshotChunkMsg): void {
    const log = this.raftLog;
    if (m.meta.index <= log.commit) {
      this.receiver.reset();
      this.out.send(from, {
        type: 'appendReply',
        term: this.term,
        success: true,
        index: log.commit,
      });
      return;
    }
    const outcome = this.receiver.accept(m);
    switch (outcome.kind) {
      case 'tooLarge':
        this.drop(from, m, 'snapshot-too-large');
        return;
      case 'progress':
        if (outcome.nextOffset !== m.offset + m.data.length)
          this.drop(from, m, 'snapshot-out-of-order');
        this.out.send(from, {
          type: 'snapshotChunkReply',
          term: this.term,
          index: m.meta.index,
          nextOffset: outcome.nextOffset,
        });
        return;
      case 'complete':
        this.installSnapshot(outcome.snapshot);
        this.leaderMatch = Math.max(this.leaderMatch, m.meta.index);
        this.out.send(from, {
          type: 'appendReply',
          term: this.term,
          success: true,
          index: m.meta.index,
        });
        return;
      default:
        unreachable(outcome, 'chunk outcome');
    }
  }

  protected installSnapshot(snapshot: Snapshot): void {
    this.flushHardState();
    this.raftLog.restore(snapshot);
    this.out.persist({ kind: 'snapshot', snapshot });
    this.persistLogReplaced(snapshot.meta.index);
    this.applied = snapshot.meta.index;
    this.snapshotToDeliver = snapshot;
    this.out.emit({
      type: 'snapshotInstalled',
      index: snapshot.meta.index,
      term: snapshot.meta.term,
    });
    this.refreshConfig();
  }

  // -------------------------------------------------------------------------------------
  // Leader side of replication

  protected addProgress(peer: NodeId): void {
    const pr = new Progress(
      this.raftLog.lastIndex + 1,
      this.opts.inflightMsgsMax,
      this.opts.inflightBytesMax,
    );
    pr.recentActive = true; // a fresh peer gets one check-quorum period before it counts as absent
    this.progress.set(peer, pr);
  }

  protected appendLocal(entry: Entry<C>): void {
    assert(this.role === 'leader', 'only the leader appends locally');
    assert(
      entry.index === this.raftLog.lastIndex + 1 && entry.term === this.term,
      'local entry out of place',
    );
    this.raftLog.append([entry]);
    this.persistEntries([entry]);
    if (entry.kind === 'config') this.refreshConfig();
    this.dueAll();
    this.maybeCommit();
  }

  protected handleAppendReply(from: NodeId, pr: Progress, m: AppendReplyMsg): void {
    if (!m.success) {
      const inLog = m.hintTerm > 0 ? this.raftLog.lastIndexOfTerm(m.hintTerm, m.rejectedIndex) : 0;
      const hintNext = inLog > 0 ? inLog + 1 : m.hintIndex;
      if (pr.maybeDecrTo(m.rejectedIndex, hintNext)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.appendsDue.add(from);
      } else this.drop(from, m, 'stale-reply');
      return;
    }
    const updated = pr.maybeUpdate(m.index);
    if (pr.state === 'probe' || (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot)) {
      pr.becomeReplicate();
    }
    if (updated) this.maybeCommit();
    this.appendsDue.add(from);
    if (from === this.transferee && pr.match === this.raftLog.lastIndex) {
      this.out.send(from, { type: 'timeoutNow', term: this.term });
    }
  }

  protected handleHeartbeatReply(from: NodeId, pr: Progress, round: number): void {
    pr.probeSent = false;
    const log = this.raftLog;
    if (pr.match < log.lastIndex || pr.state === 'snapshot') this.appendsDue.add(from);
    if (pr.state === 'snapshot') this.sendSnapshotChunk(from, pr);
    const stalled = pr.next > log.lastIndex || pr.inflights.full();
    if (pr.state === 'replicate' && pr.match < log.lastIndex && stalled) {
      // Nothing more can be sent, but appends in flight may have been lost: an empty append
      // at the end is either acknowledged (freeing the window) or refused, and a refusal
      // falls back to probing (section 5.3).
      const prevIndex = pr.next - 1;
      const prevTerm = log.term(prevIndex) as number;
      const commit = Math.min(log.commit, pr.match);
      this.sendAsLeader(from, {
        type: 'append',
        term: this.term,
        prevIndex,
        prevTerm,
        entries: [],
        commit,
      });
    }
    if (round > pr.ackedRound) {
      pr.ackedRound = round;
      this.releaseReads();
    }
  }

  protected handleSnapshotChunkReply(from: NodeId, pr: Progress, m: SnapshotChunkReplyMsg): void {
    if (pr.state !== 'snapshot' || pr.pendingSnapshot !== m.index) {
      this.drop(from, m, 'stale-reply');
      return;
    }
    pr.snapshotOffset = m.nextOffset;
    this.sendSnapshotChunk(from, pr);
  }

  /** Commit the highest index a quorum holds, if it is of this term (section 5.4.2, figure 8). */
  protected maybeCommit(): void {
    const log = this.raftLog;
    const acked = (id: NodeId) =>
      id === this.id ? this.stableIndex : (this.progress.get(id)?.match ?? 0);
    const index = committedIndex(this.config.voters, acked);
    const ownTermOnly = this.opts.unsafeTestingFaults?.commitPriorTermsByCounting !== true;
    if (index <= log.commit || (ownTermOnly && log.term(index) !== this.term)) return;
    this.commitTo(index);
    this.dueAll(); // followers learn the new commit index
    for (const t of this.reads.takeWaiting()) this.serveRead(t);
    if (!this.config.voters.includes(this.id) && log.commit >= this.configIndex) {
      this.becomeFollower(this.term, NO_NODE); // removed from the configuration (dissertation 4.2.2)
    }
  }

  /** A follower forwarded the proposal at `index` for its client: hint it until it commits. */
  protected wantHint(origin: NodeId, index: number): void {
    if (this.opts.commitHints !== 'origin' || !this.progress.has(origin)) return;
    this.hintsWanted.set(origin, Math.max(this.hintsWanted.get(origin) ?? 0, index));
  }

  /**
   * For each follower that wants hints: the highest index of this term a quorum holds when the
   * follower is counted as holding all it was sent, if that is beyond the commit index and
   * news to it. Everything counted is durable (this node up to its stable index, others up to
   * what they acknowledged), so the hint leaves at once.
   */
  protected sendCommitHints(): void {
    const mode = this.opts.commitHints;
    if (mode === 'off' || (mode === 'origin' && this.hintsWanted.size === 0)) return;
    const log = this.raftLog;
    for (const [peer, pr] of this.progress) {
      const wanted = mode === 'all' ? Number.POSITIVE_INFINITY : this.hintsWanted.get(peer);
      if (wanted === undefined) continue;
      if (log.commit >= wanted || pr.state !== 'replicate') {
        // Committed: the answer goes the usual way. Not replicating: nothing sent is known to fit.
        this.hintsWanted.delete(peer);
        continue;
      }
      if (!this.config.voters.includes(peer)) continue;
      const sent = pr.next - 1;
      const counted = (id: NodeId) =>
        id === peer
          ? sent
          : id === this.id
            ? this.stableIndex
            : (this.progress.get(id)?.match ?? 0);
      const index = committedIndex(this.config.voters, counted);
      if (index <= log.commit || index <= pr.sentHint || log.term(index) !== this.term) continue;
      this.sendAsLeader(peer, { type: 'commitHint', term: this.term, index });
      pr.sentHint = index;
      this.hintedIndex = Math.max(this.hintedIndex, index);
      if (index >= wanted) this.hintsWanted.delete(peer);
    }
  }

  private dueAll(): void {
    for (const peer of this.progress.keys()) this.appendsDue.add(peer);
  }

  /** Send what each peer is due: entries (pipelined in replicate state) or a snapshot chunk. */
  protected flushLeaderSends(): void {
    if (this.reads.needsRound()) this.bcastHeartbeat();
    for (const peer of this.appendsDue) {
      const pr = this.progress.get(peer);
      while (pr !== undefined && this.sendAppend(peer, pr)) {
        // keep filling the in-flight window
      }
    }
    this.appendsDue.clear();
  }

  /** Sends one append if the peer is not paused; returns whether entries went out. */
  protected sendAppend(peer: NodeId, pr: Progress): boolean {
    if (pr.isPaused()) return false;
    const log = this.raftLog;
    const prevIndex = pr.next - 1;
    const prevTerm = log.term(prevIndex);
    if (prevTerm === undefined) {
      pr.becomeSnapshot(log.snapshotIndex);
      this.sendSnapshotChunk(peer, pr);
      return false;
    }
    const budget = Math.max(
      1,
      Math.min(this.opts.appendBytesMax, this.opts.inflightBytesMax - pr.inflights.bytes),
    );
    const entries = log.slice(
      pr.next,
      log.lastIndex,
      this.opts.appendEntriesMax,
      budget,
      this.opts.sizeOf,
    );
    if (entries.length === 0 && pr.state === 'replicate') {
      // Everything is in flight or acknowledged: only a newer commit index is news, and a
      // heartbeat carries it without an append that could be refused while others are in flight.
      if (Math.min(log.commit, pr.match) <= pr.knownCommit()) return false;
      if (this.opts.commitNoticeDelayMs === 0) this.sendCommitNotice(peer, pr);
      else if (this.commitNoticeDeadline === Number.POSITIVE_INFINITY) {
        this.commitNoticeDeadline = this.now + this.opts.commitNoticeDelayMs;
      }
      return false;
    }
    const commit = log.commit;
    this.sendAsLeader(peer, {
      type: 'append',
      term: this.term,
      prevIndex,
      prevTerm,
      entries,
      commit,
    });
    const lastSent = prevIndex + entries.length;
    pr.sentCommit = Math.max(pr.sentCommit, Math.min(commit, lastSent));
    let bytes = 0;
    for (const e of entries) bytes += entryBytes(e, this.opts.sizeOf);
    pr.sentEntries(lastSent, bytes);
    return entries.length > 0 && pr.state === 'replicate';
  }

  /** A heartbeat of round 0: the commit index the peer does not know yet, and no question. */
  protected sendCommitNotice(peer: NodeId, pr: Progress): void {
    const commit = Math.min(this.raftLog.commit, pr.match);
    if (commit <= pr.knownCommit()) return;
    this.sendAsLeader(peer, { type: 'heartbeat', term: this.term, commit, round: 0 });
    pr.sentCommit = commit;
  }

  /** The held-back notices are due: peers that got no append since learn the commit now. */
  protected sendCommitNotices(): void {
    this.commitNoticeDeadline = Number.POSITIVE_INFINITY;
    for (const [peer, pr] of this.progress) {
      if (pr.state === 'replicate') this.sendCommitNotice(peer, pr);
    }
  }

  protected sendSnapshotChunk(peer: NodeId, pr: Progress): void {
    const snap = this.raftLog.snapshot;
    if (pr.pendingSnapshot !== snap.meta.index) pr.becomeSnapshot(snap.meta.index); // compacted again
    const data = snapshotChunk(snap, pr.snapshotOffset, this.opts.snapshotChunkBytes);
    this.sendAsLeader(peer, {
      type: 'snapshotChunk',
      term: this.term,
      meta: snap.meta,
      totalBytes: snap.data.length,
      offset: pr.snapshotOffset,
      data,
    });
  }

  protected bcastHeartbeat(): void {
    const round = this.reads.startRound(this.now);
    for (const [peer, pr] of this.progress) {
      const commit = Math.min(this.raftLog.commit, pr.match);
      this.sendAsLeader(peer, { type: 'heartbeat', term: this.term, commit, round });
      pr.sentCommit = Math.max(pr.sentCommit, commit);
    }
    this.releaseReads(); // a single-voter cluster confirms its own rounds
  }

  // -------------------------------------------------------------------------------------
  // Reads (dissertation 6.4)

  /**
   * What a read must see: the commit index, or a hinted index above it, as a follower may
   * have committed through a hint, and answered a write there, before this leader counts the
   * acks that tell it (CommitHintMsg).
   */
  protected readIndex(): number {
    if (this.opts.unsafeTestingFaults?.readsIgnoringHints === true) return this.raftLog.commit;
    return Math.max(this.raftLog.commit, this.hintedIndex);
  }

  protected serveRead(t: ReadTicket): void {
    const log = this.raftLog;
    if (log.term(log.commit) !== this.term) {
      this.reads.waitForCommit(t);
    } else if (
      this.opts.leaseReads &&
      this.transferee === NO_NODE &&
      this.reads.leaseValid(this.now)
    ) {
      this.out.reply(t.client, { type: 'readReady', id: t.id, index: this.readIndex() });
    } else {
      this.reads.add(t, this.readIndex());
      if (this.config.voters.length === 1) this.releaseReads();
    }
  }

  protected releaseReads(): void {
    const acked = (id: NodeId) =>
      id === this.id ? this.reads.round : (this.progress.get(id)?.ackedRound ?? 0);
    const round = committedIndex(this.config.voters, acked);
    for (const r of this.reads.confirm(Math.min(round, this.reads.round))) {
      this.out.reply(r.client, { type: 'readReady', id: r.id, index: r.index });
    }
  }

  protected replyNotLeader(t: ReadTicket): void {
    this.out.reply(t.client, { type: 'notLeader', id: t.id, leaderHint: this.leader });
  }

  protected abortTransfer(): void {
    this.out.emit({ type: 'transferAborted', to: this.transferee, term: this.term });
    this.transferee = NO_NODE;
    this.transferDeadline = Number.POSITIVE_INFINITY;
  }

  // -------------------------------------------------------------------------------------
  // Configuration, persistence, delivery, invariants

  /** The log's latest config entry changed (appended, truncated or installed): adopt it. */
  protected refreshConfig(): void {
    const index = this.raftLog.configIndex();
    const config = this.raftLog.config();
    if (index === this.configIndex && sameConfig(config, this.config)) return;
    this.config = config;
    this.configIndex = index;
    this.out.emit({ type: 'configChanged', config, index });
    if (this.role === 'leader') {
      for (const peer of peersOf(config, this.id))
        if (!this.progress.has(peer)) this.addProgress(peer);
      for (const peer of [...this.progress.keys()])
        if (!isMember(config, peer)) this.progress.delete(peer);
      if (this.transferee !== NO_NODE && !config.voters.includes(this.transferee))
        this.abortTransfer();
    } else if (!this.promotable()) {
      this.electionDeadline = Number.POSITIVE_INFINITY;
    } else if (this.electionDeadline === Number.POSITIVE_INFINITY) {
      this.resetElectionTimer();
    }
  }
}
