import { assert, unreachable } from '../../kernel/assert.ts';
import { type Core, OutputBuffer, type Ready } from '../../kernel/core.ts';
import type { ClientId, NodeId } from '../../kernel/ids.ts';
import { assertNodeId } from '../../kernel/ids.ts';
import { fastPaxosQuorumSizes, quorumsIntersect, ThresholdQuorum } from '../../kernel/quorum.ts';
import type { Rng } from '../../kernel/rng.ts';
import { checkFastInvariants } from '../core-invariants.ts';
import { FastAcceptor, type FastAcceptorView, type FastUnsafeTestingFaults } from './acceptor.ts';
import { type CoordinatorSettings, FastCoordinator } from './coordinator.ts';
import { initialFastDurable } from './durable.ts';
import { FastLearner } from './learner.ts';
import {
  type FastQuorums,
  type FastRound,
  isCollision,
  pickValue,
  recoveryRound,
  roundEquals,
  type Vote,
} from './round.ts';
import type { FastDurable, FastMsg, FastRequest, FastTypes } from './types.ts';

export interface FastPaxosConfig extends CoordinatorSettings {
  readonly id: NodeId;
  /** Every member is acceptor and learner, and may coordinate. */
  readonly members: readonly NodeId[];
  /** The node that opens the first fast round at start-up. */
  readonly initialCoordinator: NodeId;
  /** Classic and fast quorums; default majorities and `fastPaxosQuorumSizes`. */
  readonly quorums?: FastQuorums;
  readonly pendingClientsMax: number;
  /** Value identity, used to group fast-round votes; JSON by default. */
  readonly valueKey?: (value: unknown) => string;
  /** Test-only broken behaviours; see `FastUnsafeTestingFaults`. */
  readonly unsafeTestingFaults?: FastUnsafeTestingFaults;
}

export const FAST_PAXOS_DEFAULTS = {
  phaseTimeoutMs: 200,
  backoffMinMs: 20,
  backoffMaxMs: 1_000,
  recovery: 'coordinated',
  pendingClientsMax: 1_024,
} as const;

/** Default quorums for `members`: classic = majority, fast = the smallest size Fast Paxos allows. */
export function defaultFastQuorums(members: readonly NodeId[]): FastQuorums {
  const sizes = fastPaxosQuorumSizes(members.length);
  return {
    classic: new ThresholdQuorum(members, sizes.classic),
    fast: new ThresholdQuorum(members, sizes.fast),
  };
}

/**
 * Validates Fast Paxos's quorum requirement (section 2.3 / 3.3): any two classic quorums
 * intersect, and any classic quorum intersects any two fast quorums.
 */
export function validateFastQuorums(q: FastQuorums): void {
  assert(
    quorumsIntersect([q.classic, q.classic]),
    `classic quorums ${q.classic.describe()} need not intersect`,
  );
  assert(
    quorumsIntersect([q.classic, q.fast, q.fast]),
    `a classic quorum (${q.classic.describe()}) and two fast quorums (${q.fast.describe()}) need not intersect`,
  );
}

/**
 * Single-decree Fast Paxos node (Lamport 2006): acceptor, learner and coordinator. Clients
 * send their value to every node (`FastPaxosClient`); in an open fast round each acceptor
 * votes for the first value it gets and tells every learner, so an uncontended value is
 * learned two message delays after the client sent it. Messages to itself are handled in
 * place, within the batch that persists what they depend on.
 */
export class FastPaxosNode<V> implements Core<FastTypes<V>> {
  readonly id: NodeId;
  readonly quorums: FastQuorums;
  private readonly out = new OutputBuffer<FastTypes<V>>();
  private readonly acceptor: FastAcceptor<V>;
  private readonly learner: FastLearner<V>;
  private readonly coordinator: FastCoordinator<V>;
  private readonly valueKey: (v: V) => string;
  private readonly pendingClients: ClientId[] = [];
  /** The first client value this acceptor got, voted for once a round opens. */
  private clientValue: { readonly value: V } | null = null;
  /** Uncoordinated recovery: votes seen in the latest fast round. */
  private roundVotes: { round: FastRound; votes: Map<NodeId, V> } | null = null;
  private now = 0;

  constructor(
    private readonly config: FastPaxosConfig,
    rng: Rng,
    durable: FastDurable<V> = initialFastDurable<V>(),
  ) {
    assertNodeId(config.id);
    assert(config.members.includes(config.id), `node ${config.id} is not among the members`);
    assert(
      config.members.includes(config.initialCoordinator),
      'the initial coordinator must be a member',
    );
    assert(config.phaseTimeoutMs > 0 && config.backoffMinMs > 0, 'timeouts must be positive');
    assert(config.backoffMaxMs >= config.backoffMinMs, 'backoffMaxMs must be >= backoffMinMs');
    assert(config.pendingClientsMax >= 1, 'pendingClientsMax must be positive');
    this.id = config.id;
    this.quorums = config.quorums ?? defaultFastQuorums(config.members);
    const faults = config.unsafeTestingFaults ?? {};
    if (!faults.skipQuorumValidation) validateFastQuorums(this.quorums);
    this.valueKey = config.valueKey ?? ((v: V) => JSON.stringify(v));
    this.acceptor = new FastAcceptor(durable, faults.skipPersistBeforeReply === true);
    this.learner = new FastLearner(this.quorums, this.valueKey, durable.learned);
    const sink = {
      persist: (item: FastTypes<V>['persist']) => this.out.persist(item),
      broadcast: (msg: FastMsg<V>) => this.broadcast(msg),
      emit: (event: FastTypes<V>['event']) => this.out.emit(event),
    };
    const initial = config.initialCoordinator === config.id && durable.learned === null;
    this.coordinator = new FastCoordinator(
      this.id,
      this.quorums,
      config,
      rng,
      sink,
      this.valueKey,
      durable.lastProposalId,
      initial,
    );
    if (durable.learned !== null) this.coordinator.finish();
  }

  acceptorView(): FastAcceptorView<V> {
    return this.acceptor.view();
  }

  learned(): { readonly value: V } | null {
    return this.learner.learned();
  }

  coordinatorPhase(): string {
    return this.coordinator.phaseName();
  }

  tick(now: number): void {
    this.now = Math.max(this.now, now);
    this.coordinator.tick(this.now);
    this.checkInvariants();
  }

  /** Asserts the node's local invariants (../core-invariants.ts); every input ends here. */
  private checkInvariants(): void {
    checkFastInvariants({
      acceptor: this.acceptor.view(),
      coordinatorPhase: this.coordinator.phaseName(),
      learned: this.learner.learned() !== null,
      pendingClients: this.pendingClients.length,
      pendingClientsMax: this.config.pendingClientsMax,
    });
  }

  deadline(): number {
    return this.coordinator.deadline();
  }

  ready(): Ready<FastTypes<V>> | undefined {
    return this.out.ready();
  }

  advance(): void {
    this.out.advance();
  }

  request(now: number, client: ClientId, req: FastRequest<V>): void {
    this.now = Math.max(this.now, now);
    this.answer(client, req);
    this.checkInvariants();
  }

  private answer(client: ClientId, req: FastRequest<V>): void {
    const learned = this.learner.learned();
    if (learned !== null) {
      this.out.reply(client, { type: 'chosen', value: learned.value });
      return;
    }
    if (this.pendingClients.length >= this.config.pendingClientsMax) {
      this.out.reply(client, { type: 'busy' });
      return;
    }
    this.pendingClients.push(client);
    if (this.clientValue === null) this.clientValue = { value: req.value };
    this.coordinator.noteClientValue(this.now, req.value);
    this.voteForClientValue();
  }

  receive(now: number, from: NodeId, msg: FastMsg<V>): void {
    this.now = Math.max(this.now, now);
    if (!this.config.members.includes(from)) {
      this.out.emit({ type: 'dropped', from, reason: 'unknownPeer' });
    } else {
      this.handle(from, msg);
    }
    this.checkInvariants();
  }

  private handle(from: NodeId, msg: FastMsg<V>): void {
    switch (msg.type) {
      case 'prepare': {
        const { outcome, persist } = this.acceptor.prepare(msg.round);
        if (persist !== null) this.out.persist(persist);
        if (outcome.type === 'promise') {
          this.send(from, { type: 'promise', round: msg.round, vote: outcome.vote });
        } else this.send(from, { type: 'nack', round: msg.round, promised: outcome.promised });
        break;
      }
      case 'promise':
        this.coordinator.onPromise(this.now, from, msg.round, msg.vote);
        break;
      case 'accept':
        this.castVote(from, msg.round, msg.value);
        break;
      case 'any': {
        const { outcome, persist } = this.acceptor.any(msg.round);
        if (persist !== null) this.out.persist(persist);
        if (outcome === 'open') this.voteForClientValue();
        break;
      }
      case 'voted':
        this.onVoted(from, msg.round, msg.value);
        break;
      case 'nack':
        this.coordinator.onNack(this.now, msg.round, msg.promised);
        break;
      case 'decided':
        if (this.learner.learn(msg.value)) this.onLearned(msg.value, null);
        break;
      default:
        unreachable(msg, 'fast paxos message');
    }
    this.tellDecided(from, msg);
  }

  private castVote(from: NodeId, round: FastRound, value: V): void {
    const { outcome, persist } = this.acceptor.vote(round, value);
    if (persist !== null) this.out.persist(persist);
    if (outcome.type === 'nack') {
      this.send(from, { type: 'nack', round, promised: outcome.promised });
      return;
    }
    this.broadcast({ type: 'voted', round: outcome.vote.round, value: outcome.vote.value });
  }

  private voteForClientValue(): void {
    const open = this.acceptor.openForClients();
    if (open !== null && this.clientValue !== null)
      this.castVote(this.id, open, this.clientValue.value);
  }

  private onVoted(from: NodeId, round: FastRound, value: V): void {
    const learnedIn = this.learner.onVoted(from, round, value);
    if (learnedIn !== null) {
      this.onLearned(value, learnedIn);
      return;
    }
    this.coordinator.onVoted(this.now, from, round, value);
    if (this.config.recovery === 'uncoordinated')
      this.maybeRecoverUncoordinated(from, round, value);
  }

  /**
   * Uncoordinated recovery (section 3.3): every acceptor that sees a collision in fast round
   * r picks a value by the coordinator's rule from the round-r votes and votes for it in the
   * fast recovery round of r, without waiting for a coordinator.
   */
  private maybeRecoverUncoordinated(from: NodeId, round: FastRound, value: V): void {
    if (!round.fast || round.recovery) return;
    if (this.roundVotes === null || !roundEquals(this.roundVotes.round, round)) {
      this.roundVotes = { round, votes: new Map() };
    }
    this.roundVotes.votes.set(from, value);
    if (!isCollision(this.roundVotes.votes, this.quorums, this.valueKey)) return;
    const asPromises = new Map<NodeId, Vote<V> | null>();
    for (const [acceptor, v] of this.roundVotes.votes)
      asPromises.set(acceptor, { round, value: v });
    this.roundVotes = null;
    const pick = pickValue(asPromises, this.quorums, this.valueKey);
    const chosen = pick.type === 'forced' ? pick.value : (pick.candidates[0] as V);
    this.castVote(this.id, recoveryRound(round, true), chosen);
  }

  private tellDecided(to: NodeId, msg: FastMsg<V>): void {
    const learned = this.learner.learned();
    if (learned === null || to === this.id) return;
    if (msg.type === 'prepare' || msg.type === 'accept' || msg.type === 'any') {
      this.send(to, { type: 'decided', value: learned.value });
    }
  }

  private onLearned(value: V, round: FastRound | null): void {
    this.coordinator.finish();
    this.out.persist({ type: 'learned', value });
    this.out.deliver({ value });
    if (round !== null) this.out.emit({ type: 'learned', round });
    for (const client of this.pendingClients) this.out.reply(client, { type: 'chosen', value });
    this.pendingClients.length = 0;
  }

  private send(to: NodeId, msg: FastMsg<V>): void {
    if (to === this.id) this.handle(this.id, msg);
    else this.out.send(to, msg);
  }

  private broadcast(msg: FastMsg<V>): void {
    for (const member of this.config.members) this.send(member, msg);
  }
}
