import type { NodeId } from '../kernel/ids.ts';
import type { QuorumSystem } from '../kernel/quorum.ts';
import { compareProposalIds, formatProposalId, type ProposalId } from './ballot.ts';

/**
 * Safety checks shared by every Paxos-family core, run by the simulator (and by the tests'
 * harness) after every step. They sit outside the replicas and look only at read-only views:
 *
 * - at most one value is chosen per instance, "chosen" meaning a quorum of acceptors has
 *   accepted one ballot with that value at some time (accumulated across observations, so a
 *   value stays chosen after acceptors move on, crash or forget);
 * - a chosen value was proposed (by a client, or is a protocol no-op the caller allows);
 * - no acceptor breaks a promise: its promise never decreases, and a newly accepted ballot
 *   is never below the promise it had when last observed;
 * - learners agree with each other and with what was chosen, and never change their minds.
 *
 * Observe a node when no batch is out with its host (after `advance`): views show
 * in-memory state, which equals durable state plus nothing unsent at that point.
 */

/** How the checks compare and name ballots (Paxos ids, Fast Paxos rounds...). */
export interface BallotOrder<B> {
  compare(a: B, b: B): number;
  key(b: B): string;
}

export const proposalIdOrder: BallotOrder<ProposalId> = {
  compare: compareProposalIds,
  key: formatProposalId,
};

export interface AcceptedEntry<B, V> {
  readonly instance: number;
  readonly ballot: B;
  readonly value: V;
}

/** What the checks need to see of one acceptor. Single-decree protocols use instance 0. */
export interface AcceptorSnapshot<B, V> {
  readonly promised: B;
  readonly accepted: readonly AcceptedEntry<B, V>[];
}

export type SafetyViolation =
  | {
      readonly type: 'twoValuesChosen';
      readonly instance: number;
      readonly values: readonly [string, string];
    }
  | { readonly type: 'chosenNotProposed'; readonly instance: number; readonly value: string }
  | {
      readonly type: 'promiseBroken';
      readonly acceptor: NodeId;
      readonly detail: string;
    }
  | {
      readonly type: 'learnersDisagree';
      readonly instance: number;
      readonly learner: NodeId;
      readonly learned: string;
      readonly expected: string;
    }
  | {
      readonly type: 'learnedNotChosen';
      readonly instance: number;
      readonly learner: NodeId;
      readonly learned: string;
    };

/**
 * Promise-keeping between two observations of one acceptor: the promise never decreases,
 * and an entry accepted since `before` has a ballot at least `before.promised`.
 */
export function checkPromiseKept<B, V>(
  acceptor: NodeId,
  before: AcceptorSnapshot<B, V> | undefined,
  after: AcceptorSnapshot<B, V>,
  order: BallotOrder<B>,
  valueKey: (v: V) => string,
): SafetyViolation[] {
  if (before === undefined) return [];
  const out: SafetyViolation[] = [];
  if (order.compare(after.promised, before.promised) < 0) {
    const detail = `promise went back from ${order.key(before.promised)} to ${order.key(after.promised)}`;
    out.push({ type: 'promiseBroken', acceptor, detail });
  }
  const old = new Map(before.accepted.map((e) => [e.instance, e]));
  for (const entry of after.accepted) {
    const prior = old.get(entry.instance);
    const unchanged =
      prior !== undefined &&
      order.compare(prior.ballot, entry.ballot) === 0 &&
      (prior.value === entry.value || valueKey(prior.value) === valueKey(entry.value));
    if (unchanged || order.compare(entry.ballot, before.promised) >= 0) continue;
    const detail = `accepted ${order.key(entry.ballot)} in instance ${entry.instance} after promising ${order.key(before.promised)}`;
    out.push({ type: 'promiseBroken', acceptor, detail });
  }
  return out;
}

/** One value chosen by a quorum: which ballot, which acceptors. */
export interface ChosenValue {
  readonly instance: number;
  readonly ballot: string;
  readonly value: string;
}

/**
 * The values chosen per instance, from every acceptance ever observed: a (ballot, value)
 * accepted by a quorum of `quorumFor(ballot)` is chosen.
 */
export function chosenValues<B, V>(
  acceptances: Iterable<{ readonly acceptor: NodeId } & AcceptedEntry<B, V>>,
  quorumFor: (ballot: B) => QuorumSystem,
  order: BallotOrder<B>,
  valueKey: (v: V) => string,
): ChosenValue[] {
  const tally = new Map<string, { entry: AcceptedEntry<B, V>; acceptors: Set<NodeId> }>();
  for (const a of acceptances) {
    const key = `${a.instance}/${order.key(a.ballot)}/${valueKey(a.value)}`;
    let t = tally.get(key);
    if (t === undefined) {
      t = { entry: a, acceptors: new Set() };
      tally.set(key, t);
    }
    t.acceptors.add(a.acceptor);
  }
  const chosen: ChosenValue[] = [];
  for (const { entry, acceptors } of tally.values()) {
    if (!quorumFor(entry.ballot).isQuorum(acceptors)) continue;
    chosen.push({
      instance: entry.instance,
      ballot: order.key(entry.ballot),
      value: valueKey(entry.value),
    });
  }
  return chosen;
}

/** At most one value per instance among `chosen`. */
export function checkAtMostOneChosen(chosen: readonly ChosenValue[]): SafetyViolation[] {
  const first = new Map<number, string>();
  const out: SafetyViolation[] = [];
  for (const c of chosen) {
    const seen = first.get(c.instance);
    if (seen === undefined) first.set(c.instance, c.value);
    else if (seen !== c.value) {
      out.push({ type: 'twoValuesChosen', instance: c.instance, values: [seen, c.value] });
    }
  }
  return out;
}

export function checkChosenWasProposed(
  chosen: readonly ChosenValue[],
  wasProposed: (instance: number, valueKey: string) => boolean,
): SafetyViolation[] {
  return chosen
    .filter((c) => !wasProposed(c.instance, c.value))
    .map((c) => ({ type: 'chosenNotProposed', instance: c.instance, value: c.value }) as const);
}

/** Every learner's value for an instance equals the chosen one (and so each other's). */
export function checkLearnersAgree(
  learned: ReadonlyMap<NodeId, ReadonlyMap<number, string>>,
  chosen: readonly ChosenValue[],
): SafetyViolation[] {
  const chosenBy = new Map<number, string>();
  for (const c of chosen) if (!chosenBy.has(c.instance)) chosenBy.set(c.instance, c.value);
  const firstLearned = new Map<number, string>();
  const out: SafetyViolation[] = [];
  for (const [learner, values] of learned) {
    for (const [instance, value] of values) {
      const expected = chosenBy.get(instance) ?? firstLearned.get(instance);
      if (!chosenBy.has(instance)) {
        out.push({ type: 'learnedNotChosen', instance, learner, learned: value });
      }
      if (expected !== undefined && expected !== value) {
        out.push({ type: 'learnersDisagree', instance, learner, learned: value, expected });
      }
      if (!firstLearned.has(instance)) firstLearned.set(instance, value);
    }
  }
  return out;
}

export interface SafetyMonitorOptions<B, V> {
  readonly order: BallotOrder<B>;
  /** The quorum that makes a ballot's value chosen (classic, or fast for fast rounds). */
  quorumFor(ballot: B): QuorumSystem;
  /** Whether a value (by key) was ever proposed for the instance. */
  wasProposed(instance: number, valueKey: string): boolean;
  /** Identity of values; JSON by default. */
  readonly valueKey?: (value: V) => string;
}

/**
 * The checks above, accumulated over a run: feed it each node's views after every step and
 * read `violations`. Its memory grows with the distinct acceptances of a run, which suits a
 * bounded simulation, not a production node.
 */
export class SafetyMonitor<B, V> {
  readonly violations: SafetyViolation[] = [];
  private readonly lastSnapshot = new Map<NodeId, AcceptorSnapshot<B, V>>();
  private readonly tallies = new Map<string, { entry: ChosenValue; acceptors: Set<NodeId> }>();
  private readonly quorums = new Map<string, QuorumSystem>();
  private readonly chosen = new Map<number, ChosenValue>();
  private readonly learned = new Map<NodeId, Map<number, string>>();
  /** The value objects last seen per learner and instance, to skip re-serialising them. */
  private readonly learnedRefs = new Map<NodeId, Map<number, V>>();
  private readonly valueKey: (value: V) => string;

  constructor(private readonly options: SafetyMonitorOptions<B, V>) {
    this.valueKey = options.valueKey ?? ((v) => JSON.stringify(v));
  }

  /** The value chosen in `instance` so far (by key), if any. */
  chosenValue(instance: number): string | undefined {
    return this.chosen.get(instance)?.value;
  }

  chosenCount(): number {
    return this.chosen.size;
  }

  observeAcceptor(acceptor: NodeId, snapshot: AcceptorSnapshot<B, V>): SafetyViolation[] {
    const { order } = this.options;
    const found = checkPromiseKept(
      acceptor,
      this.lastSnapshot.get(acceptor),
      snapshot,
      order,
      this.valueKey,
    );
    const previous = new Map(this.lastSnapshot.get(acceptor)?.accepted.map((e) => [e.instance, e]));
    this.lastSnapshot.set(acceptor, snapshot);
    for (const entry of snapshot.accepted) {
      const prior = previous.get(entry.instance);
      // Already recorded at the last observation (same ballot, same value object): skip the
      // value's serialisation, which dominates the cost of observing a long log.
      if (
        prior !== undefined &&
        prior.value === entry.value &&
        order.compare(prior.ballot, entry.ballot) === 0
      ) {
        continue;
      }
      found.push(...this.recordAcceptance(acceptor, entry));
    }
    this.violations.push(...found);
    return found;
  }

  observeLearner(learner: NodeId, learned: Iterable<readonly [number, V]>): SafetyViolation[] {
    let mine = this.learned.get(learner);
    if (mine === undefined) {
      mine = new Map();
      this.learned.set(learner, mine);
    }
    let refs = this.learnedRefs.get(learner);
    if (refs === undefined) {
      refs = new Map();
      this.learnedRefs.set(learner, refs);
    }
    const fresh = new Map<number, string>();
    const found: SafetyViolation[] = [];
    for (const [instance, value] of learned) {
      if (refs.get(instance) === value) continue;
      refs.set(instance, value);
      const key = this.valueKey(value);
      const before = mine.get(instance);
      if (before === key) continue;
      if (before !== undefined) {
        found.push({ type: 'learnersDisagree', instance, learner, learned: key, expected: before });
      }
      mine.set(instance, key);
      fresh.set(instance, key);
    }
    const chosen = [...fresh.keys()].flatMap((i) => {
      const c = this.chosen.get(i);
      return c === undefined ? [] : [c];
    });
    found.push(...checkLearnersAgree(new Map([[learner, fresh]]), chosen));
    this.violations.push(...found);
    return found;
  }

  private recordAcceptance(acceptor: NodeId, entry: AcceptedEntry<B, V>): SafetyViolation[] {
    const { order } = this.options;
    const value = this.valueKey(entry.value);
    const ballot = order.key(entry.ballot);
    const key = `${entry.instance}/${ballot}/${value}`;
    let tally = this.tallies.get(key);
    if (tally === undefined) {
      tally = { entry: { instance: entry.instance, ballot, value }, acceptors: new Set() };
      this.tallies.set(key, tally);
    }
    if (tally.acceptors.has(acceptor)) return [];
    tally.acceptors.add(acceptor);
    let quorum = this.quorums.get(ballot);
    if (quorum === undefined) {
      quorum = this.options.quorumFor(entry.ballot);
      this.quorums.set(ballot, quorum);
    }
    if (!quorum.isQuorum(tally.acceptors)) return [];
    const newly = tally.entry;
    const earlier = this.chosen.get(entry.instance);
    if (earlier === undefined) this.chosen.set(entry.instance, newly);
    const found = checkAtMostOneChosen(earlier === undefined ? [newly] : [earlier, newly]);
    if (earlier === undefined || earlier.value !== newly.value) {
      found.push(...checkChosenWasProposed([newly], this.options.wasProposed));
    }
    return found;
  }
}
