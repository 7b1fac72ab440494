import { assert } from '../../kernel/assert.ts';
import type { NodeId } from '../../kernel/ids.ts';
import type { QuorumSystem } from '../../kernel/quorum.ts';
import type { Rng } from '../../kernel/rng.ts';
import {
  compareProposalIds,
  maxProposalId,
  nextProposalId,
  type ProposalId,
  proposalIdEquals,
} from '../ballot.ts';
import type { AcceptedProposal, BasicEvent, BasicMsg, BasicPersist } from './types.ts';

/** Where the proposer's effects go; the node routes messages to itself locally. */
export interface ProposerSink<V> {
  persist(item: BasicPersist<V>): void;
  broadcast(msg: BasicMsg<V>): void;
  emit(event: BasicEvent): void;
}

export interface ProposerTiming {
  /** How long a phase may wait for a quorum before the proposer retries. */
  readonly phaseTimeoutMs: number;
  /** Randomized backoff after a NACK or timeout: uniform in [min, min(max, min * 2^attempts)]. */
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
}

type Phase<V> =
  | { readonly type: 'idle' }
  | {
      readonly type: 'preparing';
      readonly id: ProposalId;
      readonly promises: Map<NodeId, AcceptedProposal<V> | null>;
      readonly timeoutAt: number;
    }
  | {
      readonly type: 'accepting';
      readonly id: ProposalId;
      readonly value: V;
      readonly timeoutAt: number;
    }
  | { readonly type: 'backoff'; readonly resumeAt: number }
  | { readonly type: 'done' };

/** Read-only view for invariant checks and tests. */
export interface ProposerView<V> {
  /** The value this proposer's clients asked for, if any. */
  readonly ownValue: { readonly value: V } | null;
  /** The current or last phase-2 proposal it sent. */
  readonly lastProposal: AcceptedProposal<V> | null;
  readonly phase: Phase<V>['type'];
}

/**
 * The proposer role (Paxos Made Simple, 2.2). Ids come from `nextProposalId` over the
 * persisted last id; the id is persisted in the same batch as the Prepare that uses it.
 * After a NACK it jumps above the highest id seen and backs off for a random time, so
 * dueling proposers stop preempting each other.
 */
export class BasicProposer<V> {
  private phase: Phase<V> = { type: 'idle' };
  private ownValue: { value: V } | null = null;
  private lastProposal: AcceptedProposal<V> | null = null;
  private highestSeen: ProposalId;
  private attempts = 0;

  constructor(
    private readonly self: NodeId,
    private readonly quorum: QuorumSystem,
    private readonly timing: ProposerTiming,
    private readonly rng: Rng,
    private readonly sink: ProposerSink<V>,
    private lastUsed: ProposalId,
    private readonly ignorePromisedValues: boolean,
  ) {
    this.highestSeen = lastUsed;
  }

  view(): ProposerView<V> {
    return { ownValue: this.ownValue, lastProposal: this.lastProposal, phase: this.phase.type };
  }

  deadline(): number {
    switch (this.phase.type) {
      case 'preparing':
      case 'accepting':
        return this.phase.timeoutAt;
      case 'backoff':
        return this.phase.resumeAt;
      default:
        return Number.POSITIVE_INFINITY;
    }
  }

  /** A client asks for `value`; the first value a proposer is given stays its own. */
  propose(now: number, value: V): void {
    if (this.phase.type === 'done') return;
    if (this.ownValue === null) this.ownValue = { value };
    if (this.phase.type === 'idle') this.startPhase1(now);
  }

  /** The decree is decided: stop proposing for good. */
  finish(): void {
    this.phase = { type: 'done' };
  }

  tick(now: number): void {
    if (now < this.deadline()) return;
    if (this.phase.type === 'backoff') this.startPhase1(now);
    else if (this.phase.type === 'preparing' || this.phase.type === 'accepting') this.backOff(now);
  }

  onPromise(now: number, from: NodeId, id: ProposalId, accepted: AcceptedProposal<V> | null): void {
    const phase = this.phase;
    if (phase.type !== 'preparing' || !proposalIdEquals(phase.id, id)) return;
    if (accepted !== null) this.highestSeen = maxProposalId(this.highestSeen, accepted.id);
    phase.promises.set(from, accepted);
    if (!this.quorum.isQuorum(phase.promises.keys())) return;
    const value = this.pickValue(phase.promises);
    this.phase = { type: 'accepting', id, value, timeoutAt: now + this.timing.phaseTimeoutMs };
    this.lastProposal = { id, value };
    this.sink.emit({ type: 'phase2', id });
    this.sink.broadcast({ type: 'accept', id, value });
  }

  onNack(now: number, id: ProposalId, promised: ProposalId): void {
    this.highestSeen = maxProposalId(this.highestSeen, promised);
    const phase = this.phase;
    if (phase.type !== 'preparing' && phase.type !== 'accepting') return;
    // A NACK naming our own id is an echo of a duplicated Prepare; only a higher id preempts.
    if (!proposalIdEquals(phase.id, id) || compareProposalIds(promised, id) <= 0) return;
    this.sink.emit({ type: 'nacked', id, promised });
    this.backOff(now);
  }

  /** Phase 2a value rule: the highest-id accepted proposal among the promises, else our own. */
  private pickValue(promises: ReadonlyMap<NodeId, AcceptedProposal<V> | null>): V {
    let best: AcceptedProposal<V> | null = null;
    for (const accepted of promises.values()) {
      if (accepted !== null && (best === null || compareProposalIds(accepted.id, best.id) > 0)) {
        best = accepted;
      }
    }
    assert(this.ownValue !== null, 'a proposer only runs phase 2 for a client value');
    if (best === null || this.ignorePromisedValues) return this.ownValue.value;
    return best.value;
  }

  private startPhase1(now: number): void {
    const id = nextProposalId(this.self, now, this.lastUsed, this.highestSeen);
    this.lastUsed = id;
    this.highestSeen = id;
    this.phase = {
      type: 'preparing',
      id,
      promises: new Map(),
      timeoutAt: now + this.timing.phaseTimeoutMs,
    };
    this.sink.persist({ type: 'proposalId', id });
    this.sink.emit({ type: 'phase1', id });
    this.sink.broadcast({ type: 'prepare', id });
  }

  private backOff(now: number): void {
    const { backoffMinMs, backoffMaxMs } = this.timing;
    const ceiling = Math.min(backoffMaxMs, backoffMinMs * 2 ** Math.min(this.attempts, 30));
    this.attempts++;
    const resumeAt =
      now + this.rng.range(backoffMinMs, Math.max(backoffMinMs, Math.floor(ceiling)));
    this.phase = { type: 'backoff', resumeAt };
    this.sink.emit({ type: 'backoff', resumeAt });
  }
}
