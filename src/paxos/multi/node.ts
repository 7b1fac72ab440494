import { assert, unreachable } from '../../kernel/assert.ts';
import { type Core, OutputBuffer, type Ready } from '../../kernel/core.ts';
import type { ClientId, NodeId } from '../../kernel/ids.ts';
import { assertNodeId, NO_NODE } from '../../kernel/ids.ts';
import { ThresholdQuorum } from '../../kernel/quorum.ts';
import type { Rng } from '../../kernel/rng.ts';
import {
  compareProposalIds,
  isZeroProposalId,
  maxProposalId,
  nextProposalId,
  type ProposalId,
  proposalIdEquals,
} from '../ballot.ts';
import { checkMultiInvariants } from '../core-invariants.ts';
import { initialMultiDurable } from './durable.ts';
import { type LeaderLimits, Leadership, recoverInstances } from './leader.ts';
import { ReplicaLog } from './log.ts';
import type {
  AcceptedInstance,
  Batch,
  ChosenInstance,
  MultiDurable,
  MultiMsg,
  MultiPersist,
  MultiRequest,
  MultiTypes,
} from './types.ts';

/** Test-only broken behaviours that the safety checks must catch. Never set in production. */
export interface MultiUnsafeTestingFaults {
  /** Promises and accepts are answered but never persisted. */
  readonly skipPersistBeforeReply?: true;
  /** A new leader fills every recovered instance with a no-op, ignoring accepted values. */
  readonly noopOverAccepted?: true;
}

export interface MultiPaxosConfig extends LeaderLimits {
  readonly id: NodeId;
  readonly members: readonly NodeId[];
  readonly heartbeatIntervalMs: number;
  /** A follower that hears no leader for a random time in [min, max] campaigns. */
  readonly electionTimeoutMinMs: number;
  readonly electionTimeoutMaxMs: number;
  /** Chosen instances per catch-up reply, at most. */
  readonly catchUpEntriesMax: number;
  readonly unsafeTestingFaults?: MultiUnsafeTestingFaults;
}

export const MULTI_PAXOS_DEFAULTS = {
  heartbeatIntervalMs: 50,
  electionTimeoutMinMs: 300,
  electionTimeoutMaxMs: 600,
  leaseDurationMs: 200,
  clockDriftMarginMs: 20,
  pipelineMax: 32,
  batchCommandsMax: 64,
  pendingRequestsMax: 4_096,
  catchUpEntriesMax: 256,
} as const;

function validate(c: MultiPaxosConfig): void {
  assertNodeId(c.id);
  assert(c.members.includes(c.id), `node ${c.id} is not among the members`);
  for (const [name, v] of Object.entries({
    pipelineMax: c.pipelineMax,
    batchCommandsMax: c.batchCommandsMax,
    pendingRequestsMax: c.pendingRequestsMax,
    catchUpEntriesMax: c.catchUpEntriesMax,
  })) {
    assert(Number.isInteger(v) && v >= 1, `${name} must be a positive integer, got ${v}`);
  }
  assert(c.heartbeatIntervalMs > 0, 'heartbeatIntervalMs must be positive');
  assert(
    c.clockDriftMarginMs >= 0 && c.clockDriftMarginMs < c.leaseDurationMs,
    'need 0 <= clockDriftMarginMs < leaseDurationMs',
  );
  assert(
    c.leaseDurationMs > c.heartbeatIntervalMs,
    'a lease must outlast a heartbeat interval to be renewed in time',
  );
  assert(
    c.electionTimeoutMinMs > c.leaseDurationMs && c.electionTimeoutMaxMs >= c.electionTimeoutMinMs,
    'elections must wait out a lease: need leaseDurationMs < electionTimeoutMinMs <= electionTimeoutMaxMs',
  );
}

type Role<C> =
  | { readonly type: 'follower'; readonly leader: NodeId }
  | {
      readonly type: 'candidate';
      readonly ballot: ProposalId;
      readonly fromInstance: number;
      readonly promises: Map<NodeId, readonly AcceptedInstance<C>[]>;
      lagBehind: NodeId;
    }
  | { readonly type: 'leader'; readonly lead: Leadership<C> };

/**
 * Multi-Paxos replica ("Paxos Made Simple", section 3; "Paxos Made Live"): a log of
 * instances, each a batch of client commands. A node that hears no leader campaigns with
 * phase 1 once for every instance from its first unchosen one; on winning it finishes the
 * instances it found half-done, fills gaps with no-ops, and then runs phase 2 alone per
 * batch, with up to `pipelineMax` in flight. Followers learn chosen instances from the
 * leader's commit index and catch up (entries or a snapshot) from any peer. Heartbeat acks
 * give the leader a lease for local reads: an acker refuses other candidates for the lease
 * duration, and a restarted node refuses every candidate for one lease duration.
 */
export class MultiPaxosNode<C, S> implements Core<MultiTypes<C, S>> {
  readonly id: NodeId;
  private readonly out = new OutputBuffer<MultiTypes<C, S>>();
  private readonly log: ReplicaLog<C, S>;
  private readonly quorum: ThresholdQuorum;
  private readonly faults: MultiUnsafeTestingFaults;
  private role: Role<C> = { type: 'follower', leader: NO_NODE };
  private lastProposalId: ProposalId;
  private highestSeen: ProposalId;
  /**
   * Started by the first input, counting from its `now` (a core has no clock of its own);
   * until then `deadline()` asks for a tick at once.
   */
  private timers: { electionAt: number; quarantineUntil: number } | undefined;
  private heartbeatAt = Number.POSITIVE_INFINITY;
  private grant: { ballot: ProposalId; expiresAt: number } | null = null;
  private readonly restarted: boolean;
  private lastCatchUpAt = Number.NEGATIVE_INFINITY;
  private now = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly config: MultiPaxosConfig,
    private readonly rng: Rng,
    durable: MultiDurable<C, S> = initialMultiDurable<C, S>(),
  ) {
    validate(config);
    this.id = config.id;
    this.quorum = ThresholdQuorum.majorityOf(config.members);
    this.faults = config.unsafeTestingFaults ?? {};
    this.log = new ReplicaLog(durable);
    this.lastProposalId = durable.lastProposalId;
    this.highestSeen = maxProposalId(durable.lastProposalId, durable.promised);
    this.restarted =
      !isZeroProposalId(durable.promised) || !isZeroProposalId(durable.lastProposalId);
  }

  // ---- introspection -------------------------------------------------------------------

  acceptorView(): { promised: ProposalId; accepted: AcceptedInstance<C>[] } {
    return { promised: this.log.promised, accepted: this.log.acceptedView() };
  }

  learnedView(): ChosenInstance<C>[] {
    return this.log.chosenView();
  }

  /** First instance not known to be chosen; everything below it was delivered. */
  commitIndex(): number {
    return this.log.frontier;
  }

  leaderHint(): NodeId {
    if (this.role.type === 'leader') return this.id;
    return this.role.type === 'follower' ? this.role.leader : NO_NODE;
  }

  isLeader(): boolean {
    return this.role.type === 'leader';
  }

  // ---- Core ----------------------------------------------------------------------------

  deadline(): number {
    if (this.timers === undefined) return Number.NEGATIVE_INFINITY;
    const role = this.role;
    if (role.type !== 'leader') return this.timers.electionAt;
    return Math.min(this.heartbeatAt, role.lead.checkQuorumAt);
  }

  ready(): Ready<MultiTypes<C, S>> | undefined {
    return this.out.ready();
  }

  advance(): void {
    this.out.advance();
  }

  tick(now: number): void {
    const { electionAt } = this.clock(now);
    if (this.role.type === 'leader') {
      const lead = this.role.lead;
      if (this.now >= lead.checkQuorumAt && !this.stillHasQuorum(lead)) {
        this.becomeFollower(NO_NODE);
      } else if (this.now >= this.heartbeatAt) {
        this.sendHeartbeat(lead);
      }
    } else if (this.now >= electionAt) {
      this.campaign();
    }
    this.checkInvariants();
  }

  receive(now: number, from: NodeId, msg: MultiMsg<C, S>): void {
    this.clock(now);
    if (!this.config.members.includes(from)) {
      this.out.emit({ type: 'dropped', from, reason: 'unknownPeer' });
    } else {
      if (this.role.type === 'leader') this.role.lead.heardOf(from);
      this.handle(from, msg);
    }
    this.checkInvariants();
  }

  request(now: number, client: ClientId, req: MultiRequest<C>): void {
    this.clock(now);
    this.answer(client, req);
    this.checkInvariants();
  }

  private answer(client: ClientId, req: MultiRequest<C>): void {
    const role = this.role;
    if (role.type !== 'leader') {
      this.out.reply(client, {
        type: 'notLeader',
        id: req.id,
        leaderHint: this.leaderHint(),
      });
      return;
    }
    const lead = role.lead;
    if (req.type === 'read') {
      const ready = lead.holdsLease(this.now) && this.log.frontier >= lead.recoveryEnd;
      this.out.reply(
        client,
        ready
          ? { type: 'readOk', id: req.id, readIndex: this.log.frontier }
          : { type: 'unavailable', id: req.id, reason: 'noLease' },
      );
      return;
    }
    if (!lead.enqueue({ client, id: req.id, command: req.command })) {
      this.out.reply(client, { type: 'unavailable', id: req.id, reason: 'busy' });
      return;
    }
    this.out.reply(client, { type: 'proposed', id: req.id });
    this.flush(lead);
  }

  /**
   * The host snapshotted its state after applying every instance up to `upTo` (below
   * `commitIndex()`): the log prefix is replaced by `data` and dropped from memory.
   */
  compact(upTo: number, data: S): void {
    assert(upTo < this.log.frontier, 'only delivered instances can be compacted');
    if (upTo <= this.log.snapshotUpTo) return;
    this.out.persist({ type: 'snapshot', upTo, data });
    this.log.installSnapshot(upTo, data);
    this.checkInvariants();
  }

  /** Asserts the node's local invariants (../core-invariants.ts); every input ends here. */
  private checkInvariants(): void {
    const role = this.role;
    checkMultiInvariants({
      id: this.id,
      promised: this.log.promised,
      highestAccepted: this.log.highestAccepted,
      lastProposalId: this.lastProposalId,
      highestSeen: this.highestSeen,
      role: role.type,
      ownBallot: this.ownBallot(),
      followed: role.type === 'follower' ? role.leader : NO_NODE,
      frontier: this.log.frontier,
      frontierChosen: this.log.chosenValue(this.log.frontier) !== undefined,
      snapshotUpTo: this.log.snapshotUpTo,
      queued: role.type === 'leader' ? role.lead.queued() : 0,
      pendingRequestsMax: this.config.pendingRequestsMax,
    });
  }

  // ---- messages ------------------------------------------------------------------------

  private handle(from: NodeId, msg: MultiMsg<C, S>): void {
    switch (msg.type) {
      case 'prepare':
        this.handlePrepare(from, msg.ballot, msg.fromInstance);
        break;
      case 'promise':
        this.handlePromise(from, msg);
        break;
      case 'nack':
        this.handleNack(msg.ballot, msg.promised);
        break;
      case 'accept':
        this.handleAccept(from, msg);
        break;
      case 'accepted':
        this.handleAccepted(from, msg.ballot, msg.instance);
        break;
      case 'heartbeat':
        this.handleHeartbeat(from, msg);
        break;
      case 'heartbeatAck':
        if (this.role.type === 'leader' && proposalIdEquals(this.role.lead.ballot, msg.ballot)) {
          this.role.lead.onHeartbeatAck(from, msg.seq);
        }
        break;
      case 'catchUp':
        this.handleCatchUp(from, msg.fromInstance);
        break;
      case 'chosenEntries':
        for (const e of msg.entries) this.persistIfAny(this.log.learn(e.instance, e.value));
        this.deliverReady();
        break;
      case 'snapshot':
        this.installPeerSnapshot(msg.upTo, msg.data);
        break;
      default:
        unreachable(msg, 'multi paxos message');
    }
  }

  private handlePrepare(from: NodeId, ballot: ProposalId, fromInstance: number): void {
    this.highestSeen = maxProposalId(this.highestSeen, ballot);
    const leased =
      this.grant !== null &&
      this.now < this.grant.expiresAt &&
      !proposalIdEquals(this.grant.ballot, ballot);
    const quarantined = this.now < this.started().quarantineUntil;
    if (leased || quarantined || !this.log.prepare(ballot)) {
      this.send(from, { type: 'nack', ballot, promised: this.log.promised });
      return;
    }
    if (!this.faults.skipPersistBeforeReply) this.out.persist({ type: 'promise', ballot });
    const accepted = this.log.acceptedFrom(fromInstance);
    this.send(from, { type: 'promise', ballot, accepted, snapshotUpTo: this.log.snapshotUpTo });
    this.stepDownIfBelow(ballot);
  }

  private handlePromise(from: NodeId, msg: Extract<MultiMsg<C, S>, { type: 'promise' }>): void {
    const role = this.role;
    if (role.type !== 'candidate' || !proposalIdEquals(role.ballot, msg.ballot)) return;
    role.promises.set(from, msg.accepted);
    // A promiser that compacted instances we have not learned could hide a chosen value.
    if (msg.snapshotUpTo >= role.fromInstance) role.lagBehind = from;
    if (!this.quorum.isQuorum(role.promises.keys())) return;
    if (role.lagBehind !== NO_NODE) {
      this.out.emit({ type: 'catchUpNeeded', fromInstance: this.log.frontier });
      this.send(role.lagBehind, { type: 'catchUp', fromInstance: this.log.frontier });
      this.becomeFollower(NO_NODE);
      return;
    }
    this.becomeLeader(role.ballot, role.fromInstance, role.promises);
  }

  private handleNack(ballot: ProposalId, promised: ProposalId): void {
    this.highestSeen = maxProposalId(this.highestSeen, promised);
    const own = this.ownBallot();
    if (own === null || !proposalIdEquals(own, ballot)) return;
    if (compareProposalIds(promised, own) > 0) this.becomeFollower(NO_NODE);
  }

  private handleAccept(from: NodeId, msg: Extract<MultiMsg<C, S>, { type: 'accept' }>): void {
    if (!this.log.accept(msg.ballot, msg.instance, msg.value)) {
      this.send(from, { type: 'nack', ballot: msg.ballot, promised: this.log.promised });
      return;
    }
    if (!this.faults.skipPersistBeforeReply) {
      this.out.persist({
        type: 'accept',
        instance: msg.instance,
        ballot: msg.ballot,
        value: msg.value,
      });
    }
    this.send(from, { type: 'accepted', ballot: msg.ballot, instance: msg.instance });
    this.followLeader(msg.ballot);
    this.learnCommitted(msg.ballot, msg.commitIndex);
  }

  private handleAccepted(from: NodeId, ballot: ProposalId, instance: number): void {
    if (this.role.type !== 'leader' || !proposalIdEquals(this.role.lead.ballot, ballot)) return;
    const lead = this.role.lead;
    const value = lead.onAccepted(from, instance);
    if (value === null) return;
    this.persistIfAny(this.log.learn(instance, value));
    this.deliverReady();
    this.flush(lead);
  }

  private handleHeartbeat(from: NodeId, msg: Extract<MultiMsg<C, S>, { type: 'heartbeat' }>): void {
    if (compareProposalIds(msg.ballot, this.log.promised) < 0) {
      this.send(from, { type: 'nack', ballot: msg.ballot, promised: this.log.promised });
      return;
    }
    this.followLeader(msg.ballot);
    this.grant = { ballot: msg.ballot, expiresAt: this.now + this.config.leaseDurationMs };
    this.send(from, { type: 'heartbeatAck', ballot: msg.ballot, seq: msg.seq });
    this.learnCommitted(msg.ballot, msg.commitIndex);
  }

  private handleCatchUp(from: NodeId, fromInstance: number): void {
    if (fromInstance <= this.log.snapshotUpTo && this.log.snapshotData !== null) {
      this.send(from, {
        type: 'snapshot',
        upTo: this.log.snapshotUpTo,
        data: this.log.snapshotData,
      });
      return;
    }
    const entries = this.log.chosenRange(fromInstance, this.config.catchUpEntriesMax);
    if (entries.length > 0) this.send(from, { type: 'chosenEntries', entries });
  }

  private installPeerSnapshot(upTo: number, data: S): void {
    if (upTo < this.log.frontier) return;
    this.out.persist({ type: 'snapshot', upTo, data });
    this.log.installSnapshot(upTo, data);
    this.out.deliver({ type: 'snapshot', upTo, data });
    this.deliverReady();
  }

  // ---- roles ---------------------------------------------------------------------------

  private campaign(): void {
    const ballot = nextProposalId(this.id, this.now, this.lastProposalId, this.highestSeen);
    this.lastProposalId = ballot;
    this.highestSeen = ballot;
    const fromInstance = this.log.frontier;
    this.role = {
      type: 'candidate',
      ballot,
      fromInstance,
      promises: new Map(),
      lagBehind: NO_NODE,
    };
    this.resetElectionTimer();
    this.out.persist({ type: 'proposalId', id: ballot });
    this.out.emit({ type: 'campaign', ballot, fromInstance });
    this.broadcast({ type: 'prepare', ballot, fromInstance });
  }

  private becomeLeader(
    ballot: ProposalId,
    fromInstance: number,
    promises: ReadonlyMap<NodeId, readonly AcceptedInstance<C>[]>,
  ): void {
    const recovered = recoverInstances(
      fromInstance,
      promises.values(),
      this.faults.noopOverAccepted === true,
    );
    const recoveryEnd = fromInstance + recovered.size;
    const checkAt = this.now + this.config.electionTimeoutMinMs;
    const lead = new Leadership<C>(
      ballot,
      this.quorum,
      this.config,
      fromInstance,
      recoveryEnd,
      checkAt,
      this.id,
    );
    this.role = { type: 'leader', lead };
    this.out.emit({ type: 'leader', ballot, recovered: recovered.size });
    for (const [instance, value] of recovered) {
      lead.propose(instance, value);
      this.broadcastAccept(lead, instance, value);
    }
    this.sendHeartbeat(lead);
    this.flush(lead);
  }

  private becomeFollower(leader: NodeId): void {
    if (this.role.type === 'leader') {
      // Commands never proposed will not be: tell their clients to go to the new leader.
      for (const c of this.role.lead.drainQueue()) {
        this.out.reply(c.client, { type: 'notLeader', id: c.id, leaderHint: leader });
      }
    }
    const changed = this.role.type !== 'follower' || this.role.leader !== leader;
    this.role = { type: 'follower', leader };
    this.resetElectionTimer();
    if (changed) this.out.emit({ type: 'follower', leader });
  }

  /** A message from a leader at `ballot`: follow it (stepping down if ours is older). */
  private followLeader(ballot: ProposalId): void {
    const own = this.ownBallot();
    if (own !== null && compareProposalIds(ballot, own) <= 0) return;
    this.highestSeen = maxProposalId(this.highestSeen, ballot);
    if (this.role.type !== 'follower' || this.role.leader !== ballot.node)
      this.becomeFollower(ballot.node);
    else this.resetElectionTimer();
  }

  private stepDownIfBelow(ballot: ProposalId): void {
    const own = this.ownBallot();
    if (own !== null && compareProposalIds(ballot, own) > 0) this.becomeFollower(NO_NODE);
  }

  private ownBallot(): ProposalId | null {
    if (this.role.type === 'leader') return this.role.lead.ballot;
    if (this.role.type === 'candidate') return this.role.ballot;
    return null;
  }

  // ---- leader duties -------------------------------------------------------------------

  /**
   * Check-quorum: a leader that heard from no quorum for an election timeout (the shortest,
   * electionTimeoutMinMs) steps down, so that its clients are refused at once ("not leader")
   * instead of waiting out their deadlines on proposals no quorum can accept. The followers
   * it lost elect another leader in about that time; one with a quorum never steps down,
   * since every follower answers each heartbeat (sent well within the period). Stepping
   * down emits 'follower' with no leader, on which the replica answers the commands it
   * proposed as of unknown outcome, at once rather than at their deadlines.
   */
  private stillHasQuorum(lead: Leadership<C>): boolean {
    return lead.checkQuorum(this.now, this.config.electionTimeoutMinMs, this.id);
  }

  private flush(lead: Leadership<C>): void {
    for (let batch = lead.nextBatch(); batch !== null; batch = lead.nextBatch()) {
      this.broadcastAccept(lead, batch.instance, batch.value);
      if (this.role.type !== 'leader') return; // our own acceptor may have stepped us down
    }
  }

  private broadcastAccept(
    lead: Leadership<C>,
    instance: number,
    value: Batch<C>,
    skip?: ReadonlySet<NodeId>,
  ): void {
    for (const member of this.config.members) {
      if (skip?.has(member)) continue;
      const commitIndex = this.log.frontier;
      this.send(member, { type: 'accept', ballot: lead.ballot, instance, value, commitIndex });
    }
  }

  /** Heartbeat, lease renewal, and a resend of every unacknowledged accept in the pipeline. */
  private sendHeartbeat(lead: Leadership<C>): void {
    this.heartbeatAt = this.now + this.config.heartbeatIntervalMs;
    const seq = lead.startHeartbeat(this.now);
    for (const [instance, slot] of [...lead.inflight]) {
      this.broadcastAccept(lead, instance, slot.value, new Set([...slot.acks, this.id]));
    }
    if (this.role.type !== 'leader') return;
    this.broadcast({ type: 'heartbeat', ballot: lead.ballot, seq, commitIndex: this.log.frontier });
  }

  // ---- learning ------------------------------------------------------------------------

  private learnCommitted(ballot: ProposalId, commitIndex: number): void {
    const { persist, gap } = this.log.learnCommitted(ballot, commitIndex);
    for (const item of persist) this.out.persist(item);
    this.deliverReady();
    if (gap && this.now >= this.lastCatchUpAt + this.config.heartbeatIntervalMs) {
      this.lastCatchUpAt = this.now;
      this.send(ballot.node, { type: 'catchUp', fromInstance: this.log.frontier });
    }
  }

  private deliverReady(): void {
    for (const c of this.log.advance())
      this.out.deliver({ type: 'chosen', instance: c.instance, value: c.value });
  }

  private persistIfAny(item: MultiPersist<C, S> | null): void {
    if (item !== null) this.out.persist(item);
  }

  // ---- plumbing ------------------------------------------------------------------------

  /** Moves the clock to `now`, starting the timers on the first input; returns them. */
  private clock(now: number): { readonly electionAt: number } {
    this.now = Math.max(this.now, now);
    if (this.timers === undefined) {
      // A restarted node may have granted a lease it no longer remembers: sit one out.
      const quarantineUntil = this.restarted ? this.now + this.config.leaseDurationMs : this.now;
      this.timers = { electionAt: this.now + this.electionTimeout(), quarantineUntil };
    }
    return this.timers;
  }

  private started(): { electionAt: number; quarantineUntil: number } {
    assert(this.timers !== undefined, 'every input starts the timers before it is handled');
    return this.timers;
  }

  private electionTimeout(): number {
    const { electionTimeoutMinMs: lo, electionTimeoutMaxMs: hi } = this.config;
    return this.rng.range(lo, hi);
  }

  private resetElectionTimer(): void {
    this.started().electionAt = this.now + this.electionTimeout();
  }

  private send(to: NodeId, msg: MultiMsg<C, S>): void {
    if (to === this.id) this.handle(this.id, msg);
    else this.out.send(to, msg);
  }

  private broadcast(msg: MultiMsg<C, S>): void {
    for (const member of this.config.members) this.send(member, msg);
  }
}
