import type { NodeId } from '../../kernel/ids.ts';
import type { Rng } from '../../kernel/rng.ts';
import { maxProposalId, nextProposalId, type ProposalId } from '../ballot.ts';
import {
  compareRounds,
  type FastQuorums,
  type FastRound,
  isCollision,
  pickValue,
  recoveryRound,
  roundEquals,
  type Vote,
} from './round.ts';
import type { FastEvent, FastMsg, FastPersist } from './types.ts';

export interface CoordinatorSink<V> {
  persist(item: FastPersist<V>): void;
  broadcast(msg: FastMsg<V>): void;
  emit(event: FastEvent): void;
}

export interface CoordinatorSettings {
  readonly phaseTimeoutMs: number;
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  readonly recovery: 'coordinated' | 'uncoordinated';
}

type Phase<V> =
  | { readonly type: 'idle' }
  | { readonly type: 'waiting'; readonly resumeAt: number; readonly nextFast: boolean }
  | {
      readonly type: 'preparing';
      readonly round: FastRound;
      readonly promises: Map<NodeId, Vote<V> | null>;
      readonly timeoutAt: number;
    }
  /** "any" sent: watching the round's votes for a collision. */
  | {
      readonly type: 'fast';
      readonly round: FastRound;
      readonly votes: Map<NodeId, V>;
      readonly timeoutAt: number;
    }
  /** A value sent in phase 2a (a classic round, a constrained fast round or a recovery round). */
  | { readonly type: 'accepting'; readonly round: FastRound; readonly timeoutAt: number }
  | { readonly type: 'done' };

/**
 * The Fast Paxos coordinator role of one node. The initial coordinator opens a fast round
 * (phase 1, then "any") as soon as it starts; any node holding a client value that is not
 * decided within `phaseTimeoutMs` starts a classic round of its own (the fallback), with
 * randomized backoff between attempts so competing coordinators stop preempting each other.
 * On a collision in its fast round it recovers in the recovery round, using the fast-round
 * votes as phase-1b messages (coordinated recovery, section 3.3).
 */
export class FastCoordinator<V> {
  private phase: Phase<V>;
  private ownValue: { readonly value: V } | null = null;
  private highestSeen: ProposalId;
  private attempts = 0;

  constructor(
    private readonly self: NodeId,
    private readonly quorums: FastQuorums,
    private readonly settings: CoordinatorSettings,
    private readonly rng: Rng,
    private readonly sink: CoordinatorSink<V>,
    private readonly valueKey: (v: V) => string,
    private lastUsed: ProposalId,
    initialCoordinator: boolean,
  ) {
    this.highestSeen = lastUsed;
    this.phase = initialCoordinator
      ? { type: 'waiting', resumeAt: Number.NEGATIVE_INFINITY, nextFast: true }
      : { type: 'idle' };
  }

  phaseName(): Phase<V>['type'] {
    return this.phase.type;
  }

  deadline(): number {
    const p = this.phase;
    if (p.type === 'waiting') return p.resumeAt;
    if (p.type === 'preparing' || p.type === 'accepting') return p.timeoutAt;
    if (p.type === 'fast')
      return this.ownValue === null && p.votes.size === 0 ? Infinity : p.timeoutAt;
    return Number.POSITIVE_INFINITY;
  }

  /** A client value reached this node: remember it for classic rounds and watch for a decision. */
  noteClientValue(now: number, value: V): void {
    if (this.ownValue === null) this.ownValue = { value };
    if (this.phase.type === 'idle') {
      this.phase = {
        type: 'waiting',
        resumeAt: now + this.settings.phaseTimeoutMs,
        nextFast: false,
      };
    }
  }

  finish(): void {
    this.phase = { type: 'done' };
  }

  tick(now: number): void {
    if (now < this.deadline()) return;
    const p = this.phase;
    if (p.type === 'waiting') this.startRound(now, p.nextFast);
    else if (p.type !== 'idle' && p.type !== 'done') this.backOff(now);
  }

  onPromise(now: number, from: NodeId, round: FastRound, vote: Vote<V> | null): void {
    const p = this.phase;
    if (p.type !== 'preparing' || !roundEquals(p.round, round)) return;
    p.promises.set(from, vote);
    if (!this.quorums.classic.isQuorum(p.promises.keys())) return;
    const pick = pickValue(p.promises, this.quorums, this.valueKey);
    if (pick.type === 'free' && round.fast) {
      this.phase = {
        type: 'fast',
        round,
        votes: new Map(),
        timeoutAt: now + this.settings.phaseTimeoutMs,
      };
      this.sink.emit({ type: 'anySent', round });
      this.sink.broadcast({ type: 'any', round });
      return;
    }
    const value =
      pick.type === 'forced' ? pick.value : (pick.candidates[0] ?? this.ownValue?.value);
    if (value === undefined) {
      this.backOff(now); // a classic round with nothing to propose: wait for a client value
      return;
    }
    this.sendAccept(now, round, value);
  }

  onVoted(now: number, from: NodeId, round: FastRound, value: V): void {
    const p = this.phase;
    if (p.type !== 'fast' || !roundEquals(p.round, round)) return;
    p.votes.set(from, value);
    if (!isCollision(p.votes, this.quorums, this.valueKey)) return;
    this.sink.emit({ type: 'collision', round, recovery: this.settings.recovery });
    if (this.settings.recovery === 'uncoordinated') return; // acceptors recover by themselves
    const asPromises = new Map<NodeId, Vote<V> | null>();
    for (const [acceptor, v] of p.votes) asPromises.set(acceptor, { round, value: v });
    const pick = pickValue(asPromises, this.quorums, this.valueKey);
    const chosen = pick.type === 'forced' ? pick.value : (pick.candidates[0] as V);
    this.sendAccept(now, recoveryRound(round, false), chosen);
  }

  onNack(now: number, round: FastRound, promised: FastRound): void {
    this.highestSeen = maxProposalId(this.highestSeen, promised.id);
    const p = this.phase;
    if (p.type !== 'preparing' && p.type !== 'accepting' && p.type !== 'fast') return;
    if (!roundEquals(p.round, round) || compareRounds(promised, round) <= 0) return;
    this.backOff(now);
  }

  private sendAccept(now: number, round: FastRound, value: V): void {
    this.phase = { type: 'accepting', round, timeoutAt: now + this.settings.phaseTimeoutMs };
    this.sink.broadcast({ type: 'accept', round, value });
  }

  private startRound(now: number, fast: boolean): void {
    const id = nextProposalId(this.self, now, this.lastUsed, this.highestSeen);
    this.lastUsed = id;
    this.highestSeen = id;
    const round: FastRound = { id, recovery: false, fast };
    const timeoutAt = now + this.settings.phaseTimeoutMs;
    this.phase = { type: 'preparing', round, promises: new Map(), timeoutAt };
    this.sink.persist({ type: 'proposalId', id });
    this.sink.emit({ type: 'roundStarted', round });
    this.sink.broadcast({ type: 'prepare', round });
  }

  /** After a failed round the next one is classic: the fallback that guarantees progress. */
  private backOff(now: number): void {
    const { backoffMinMs, backoffMaxMs } = this.settings;
    const ceiling = Math.min(backoffMaxMs, backoffMinMs * 2 ** Math.min(this.attempts, 30));
    this.attempts++;
    const resumeAt =
      now + this.rng.range(backoffMinMs, Math.max(backoffMinMs, Math.floor(ceiling)));
    this.phase = { type: 'waiting', resumeAt, nextFast: false };
    this.sink.emit({ type: 'backoff', resumeAt });
  }
}
