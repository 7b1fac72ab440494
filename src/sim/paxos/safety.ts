import { assert } from '../../kernel/assert.ts';
import type { Core, CoreTypes, Ready } from '../../kernel/core.ts';
import type { ClientId, NodeId } from '../../kernel/ids.ts';
import type { QuorumSystem } from '../../kernel/quorum.ts';
import type { AcceptedEntry, AcceptorSnapshot, BallotOrder } from '../../paxos/invariants.ts';
import type { Monitor } from '../protocol.ts';

/**
 * The Paxos safety checks of the simulator, fed with what an acceptor has *committed to*:
 * the promises and acceptances of each batch once the host has persisted and carried it out.
 *
 * Why batches and not snapshots taken after every step: in the simulator a node keeps
 * taking inputs while its previous batch is being fsynced, so its in-memory state runs
 * ahead of its disk. A crash then rightly rolls back a promise that nobody was ever told
 * about; a snapshot-based check would call that a broken promise. A batch's promise or
 * acceptance becomes a commitment exactly when `advance()` says the batch is durable and
 * its messages left, and that is where `ObservedCore` records it.
 *
 * Each committed batch contributes, in order: the persist items (every promise and every
 * acceptance, including the ones a node makes to itself in place), then the acceptor's
 * in-memory view as of the batch (which also exposes what a broken core told others
 * without persisting). The checks, per Paxos Made Simple 2.2 and Fast Paxos 2.3:
 *
 * - no acceptor breaks a promise: nothing it promises or accepts in a batch is below the
 *   promise level it had committed before that batch, and its promise never goes back;
 * - at most one value is chosen per instance, "chosen" meaning a quorum of the ballot's
 *   kind accepted it in that ballot at some time (tallies accumulate for the whole run);
 * - a chosen value was proposed (some node got it from a client);
 * - learners agree with each other and with the chosen value, and never change their minds.
 */

/** One commitment taken from a persist item, in batch order. */
export type Commitment<B, V> =
  | { readonly kind: 'promise'; readonly ballot: B }
  | ({ readonly kind: 'accept' } & AcceptedEntry<B, V>);

/** Everything one committed batch of one node tells the checker. */
export interface BatchEvidence<B, V> {
  readonly commitments: readonly Commitment<B, V>[];
  /** The acceptor's in-memory view when the batch was cut; undefined if not taken. */
  readonly view: AcceptorSnapshot<B, V> | undefined;
  /** Values (by learner instance) the node delivered in the batch. */
  readonly learned: readonly (readonly [number, V])[];
}

/** How one protocol's batches and requests read as Paxos evidence. */
export interface EvidenceReader<T extends CoreTypes, C extends Core<T>, B, V> {
  /** Called at `ready()`: the batch just cut, and the core as it is at that moment. */
  read(batch: Ready<T>, core: C): BatchEvidence<B, V>;
  /** The values a client request proposes (for "a chosen value was proposed"). */
  proposals(req: T['request']): readonly string[];
}

/**
 * A transparent wrapper around a core that queues the evidence of every batch the host
 * completes and every request it receives, for the monitor to drain after the step.
 */
export class ObservedCore<T extends CoreTypes, C extends Core<T>, B, V> implements Core<T> {
  readonly id: NodeId;
  private out: BatchEvidence<B, V> | undefined = undefined;
  private readonly committed: BatchEvidence<B, V>[] = [];
  private readonly proposed: string[] = [];

  constructor(
    readonly inner: C,
    private readonly reader: EvidenceReader<T, C, B, V>,
  ) {
    this.id = inner.id;
  }

  tick(now: number): void {
    this.inner.tick(now);
  }

  receive(now: number, from: NodeId, msg: T['msg']): void {
    this.inner.receive(now, from, msg);
  }

  request(now: number, client: ClientId, req: T['request']): void {
    for (const p of this.reader.proposals(req)) this.proposed.push(p);
    this.inner.request(now, client, req);
  }

  deadline(): number {
    return this.inner.deadline();
  }

  ready(): Ready<T> | undefined {
    const rd = this.inner.ready();
    if (rd !== undefined) this.out = this.reader.read(rd, this.inner);
    return rd;
  }

  advance(): void {
    assert(this.out !== undefined, 'advance() without a batch from ready()');
    this.committed.push(this.out);
    this.out = undefined;
    this.inner.advance();
  }

  /** Hands over (and forgets) the evidence gathered since the last call. */
  drain(): Drained<B, V> {
    return { batches: this.committed.splice(0), proposed: this.proposed.splice(0) };
  }
}

/** What `ObservedCore.drain` hands over. */
export interface Drained<B, V> {
  readonly batches: readonly BatchEvidence<B, V>[];
  /** Keys of the values proposed by the requests the node received. */
  readonly proposed: readonly string[];
}

export interface PaxosSafetyOptions<B, V> {
  readonly order: BallotOrder<B>;
  /** The quorum whose acceptance of one ballot makes its value chosen. */
  quorumFor(ballot: B): QuorumSystem;
  /** Identity of values; called once per distinct value object. */
  valueKey(value: V): string;
  /** Whether a value was proposed, given the keys of every client proposal so far. */
  wasProposed(value: V, proposed: ReadonlySet<string>): boolean;
}

/** The first violation found by the run, checked incrementally. */
export class PaxosSafety<B, V> {
  private readonly proposed = new Set<string>();
  private readonly floor = new Map<NodeId, B>();
  /** Per acceptor and instance, the acceptance last recorded (to skip unchanged entries). */
  private readonly lastAccepted = new Map<NodeId, Map<number, { ballot: B; value: V }>>();
  private readonly tallies = new Map<string, Set<NodeId>>();
  private readonly chosen = new Map<number, { key: string; ballot: string }>();
  private readonly learned = new Map<NodeId, Map<number, string>>();
  private readonly keys = new WeakMap<object, string>();
  private readonly quorums = new Map<string, QuorumSystem>();

  constructor(private readonly options: PaxosSafetyOptions<B, V>) {}

  chosenCount(): number {
    return this.chosen.size;
  }

  /** The chosen value's key in `instance`, if one is chosen. */
  chosenKey(instance: number): string | undefined {
    return this.chosen.get(instance)?.key;
  }

  /** Feeds one node's drained evidence; returns the first violation, if any. */
  observe(node: NodeId, evidence: Drained<B, V>): string | undefined {
    for (const p of evidence.proposed) this.proposed.add(p);
    for (const batch of evidence.batches) {
      const v = this.acceptorBatch(node, batch) ?? this.learnerBatch(node, batch.learned);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  private acceptorBatch(acceptor: NodeId, batch: BatchEvidence<B, V>): string | undefined {
    const { order } = this.options;
    const floor = this.floor.get(acceptor);
    let high = floor;
    const below = (b: B) => floor !== undefined && order.compare(b, floor) < 0;
    const raise = (b: B) => {
      if (high === undefined || order.compare(b, high) > 0) high = b;
    };
    for (const c of batch.commitments) {
      if (below(c.ballot)) {
        const what = c.kind === 'promise' ? 'promised' : `accepted in instance ${c.instance}`;
        return `promise broken: acceptor ${acceptor} ${what} ${order.key(c.ballot)} after promising ${order.key(floor as B)}`;
      }
      raise(c.ballot);
      if (c.kind === 'accept') {
        const v = this.recordAcceptance(acceptor, c);
        if (v !== undefined) return v;
      }
    }
    const view = batch.view;
    if (view !== undefined) {
      if (below(view.promised)) {
        return `promise broken: acceptor ${acceptor}'s promise went back from ${order.key(floor as B)} to ${order.key(view.promised)}`;
      }
      raise(view.promised);
      for (const entry of view.accepted) {
        if (this.isRecorded(acceptor, entry)) continue;
        if (below(entry.ballot)) {
          return `promise broken: acceptor ${acceptor} accepted ${order.key(entry.ballot)} in instance ${entry.instance} after promising ${order.key(floor as B)}`;
        }
        raise(entry.ballot);
        const v = this.recordAcceptance(acceptor, entry);
        if (v !== undefined) return v;
      }
    }
    if (high !== undefined) this.floor.set(acceptor, high);
    return undefined;
  }

  private isRecorded(acceptor: NodeId, entry: AcceptedEntry<B, V>): boolean {
    const last = this.lastAccepted.get(acceptor)?.get(entry.instance);
    return (
      last !== undefined &&
      this.options.order.compare(last.ballot, entry.ballot) === 0 &&
      (last.value === entry.value || this.key(last.value) === this.key(entry.value))
    );
  }

  private recordAcceptance(acceptor: NodeId, entry: AcceptedEntry<B, V>): string | undefined {
    let mine = this.lastAccepted.get(acceptor);
    if (mine === undefined) {
      mine = new Map();
      this.lastAccepted.set(acceptor, mine);
    }
    mine.set(entry.instance, { ballot: entry.ballot, value: entry.value });
    const ballot = this.options.order.key(entry.ballot);
    const value = this.key(entry.value);
    const tallyKey = `${entry.instance}/${ballot}/${value}`;
    let tally = this.tallies.get(tallyKey);
    if (tally === undefined) {
      tally = new Set();
      this.tallies.set(tallyKey, tally);
    }
    if (tally.has(acceptor)) return undefined;
    tally.add(acceptor);
    if (!this.quorumOf(entry.ballot, ballot).isQuorum(tally)) return undefined;
    const earlier = this.chosen.get(entry.instance);
    if (earlier !== undefined) {
      if (earlier.key === value) return undefined;
      return `two values chosen in instance ${entry.instance}: ${earlier.key} (ballot ${earlier.ballot}) and ${value} (ballot ${ballot})`;
    }
    this.chosen.set(entry.instance, { key: value, ballot });
    if (!this.options.wasProposed(entry.value, this.proposed)) {
      return `chosen value was never proposed: ${value} in instance ${entry.instance}`;
    }
    return undefined;
  }

  private learnerBatch(
    learner: NodeId,
    learned: BatchEvidence<B, V>['learned'],
  ): string | undefined {
    let mine = this.learned.get(learner);
    if (mine === undefined) {
      mine = new Map();
      this.learned.set(learner, mine);
    }
    for (const [instance, value] of learned) {
      const key = this.key(value);
      const before = mine.get(instance);
      if (before !== undefined && before !== key) {
        return `learner ${learner} changed its mind in instance ${instance}: ${before}, then ${key}`;
      }
      mine.set(instance, key);
      const chosen = this.chosen.get(instance);
      if (chosen === undefined) {
        return `learner ${learner} learned ${key} in instance ${instance}, which no quorum accepted`;
      }
      if (chosen.key !== key) {
        return `learners disagree in instance ${instance}: learner ${learner} learned ${key}, the chosen value is ${chosen.key}`;
      }
    }
    return undefined;
  }

  private quorumOf(ballot: B, key: string): QuorumSystem {
    let q = this.quorums.get(key);
    if (q === undefined) {
      q = this.options.quorumFor(ballot);
      this.quorums.set(key, q);
    }
    return q;
  }

  private key(value: V): string {
    if (typeof value !== 'object' || value === null) return this.options.valueKey(value);
    let k = this.keys.get(value);
    if (k === undefined) {
      k = this.options.valueKey(value);
      this.keys.set(value, k);
    }
    return k;
  }
}

/**
 * The simulator monitor around `PaxosSafety`: after every step it drains the stepped node's
 * `ObservedCore` (the plugin's `createCore` must return one) and checks what it committed.
 */
export function evidenceMonitor<T extends CoreTypes, Durable, B, V>(
  safety: PaxosSafety<B, V>,
  /** Where the `ObservedCore` sits in a node's core (the node itself by default). */
  observedOf: (core: Core<T>) => unknown = (core) => core,
): Monitor<T, Durable> {
  return {
    afterStep(view, node) {
      const hosted = view.core(node);
      if (hosted === undefined) return undefined;
      const core = observedOf(hosted);
      assert(core instanceof ObservedCore, `node ${node} is not hosted through ObservedCore`);
      return safety.observe(node, (core as ObservedCore<CoreTypes, Core<CoreTypes>, B, V>).drain());
    },
  };
}
