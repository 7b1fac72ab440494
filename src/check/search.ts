import { assert } from '../kernel/index.ts';
import type { Budget } from './budget.ts';
import { type CompiledKey, step } from './model.ts';

/**
 * Lowe's just-in-time linearization search ("Testing for linearizability", 2017), the
 * improved Wing & Gong algorithm also used by porcupine, over the operations of one key.
 *
 * Call and return events sit in one doubly linked list in real-time order. Walking from the
 * head, a call whose operation can be applied to the current state is linearized: its call
 * and return leave the list (dancing-links style, so backtracking restores them in O(1))
 * and the walk restarts. Reaching a return means that operation's deadline passed without it
 * being linearized, so the search backtracks. Visited (linearized set, state) pairs are
 * cached: a configuration seen before cannot lead anywhere new.
 *
 * An indeterminate operation's return sits at +infinity, after every finite event. Because
 * such operations are always legal at the end, the search succeeds as soon as every ok
 * operation is linearized.
 */

/** Where every legal order got stuck: the basis of a violation's explanation. */
export interface Frontier {
  /** The operation (index into `model.ops`) whose return no legal order got past. */
  readonly blocked: number;
  /** One longest legal order, as indices into `model.ops`, in linearization order. */
  readonly order: readonly number[];
  /** States (value ids) in which legal orders reached the blocked return, at most `frontierStatesMax`. */
  readonly states: readonly number[];
}

export type SearchOutcome =
  | { readonly kind: 'linearizable' }
  | { readonly kind: 'violation'; readonly frontier: Frontier }
  | { readonly kind: 'unknown'; readonly reason: string };

/** How many distinct states at the frontier an explanation lists. */
export const frontierStatesMax = 8;
/** Steps between two looks at the budget: a clock read is far dearer than a step. */
const chargeEvery = 1024;
const head = 0;

/** Finalisation mix of MurmurHash3: spreads bits so nearby integers hash far apart. */
function mix32(input: number): number {
  let h = input | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

/**
 * The set of visited configurations (linearized set, state), open-addressed. Bitsets live in
 * one flat word array; the hash of a set is the XOR of per-operation keys (Zobrist), kept
 * incrementally by the search.
 */
class VisitedSet {
  private table = new Int32Array(2048);
  private hashes = new Int32Array(1024);
  private states = new Int32Array(1024);
  private bits: Uint32Array;
  size = 0;

  constructor(
    private readonly words: number,
    readonly entriesMax: number,
  ) {
    assert(Number.isSafeInteger(entriesMax) && entriesMax > 0, 'cacheEntriesMax is positive');
    this.bits = new Uint32Array(1024 * words);
  }

  /** Adds (set, state): 1 if added, 0 if already present, -1 if the set is full. */
  add(set: Uint32Array, state: number, hash: number): number {
    const mask = this.table.length - 1;
    let slot = hash & mask;
    for (let entry = this.table[slot]!; entry !== 0; entry = this.table[slot]!) {
      if (this.matches(entry - 1, set, state, hash)) return 0;
      slot = (slot + 1) & mask;
    }
    if (this.size >= this.entriesMax) return -1;
    const entry = this.size++;
    if (entry === this.hashes.length) this.grow();
    this.hashes[entry] = hash;
    this.states[entry] = state;
    this.bits.set(set, entry * this.words);
    if (this.size * 2 > this.table.length) this.rehash();
    else this.table[slot] = entry + 1;
    return 1;
  }

  private matches(entry: number, set: Uint32Array, state: number, hash: number): boolean {
    if (this.hashes[entry] !== hash || this.states[entry] !== state) return false;
    const base = entry * this.words;
    for (let w = 0; w < this.words; w++) if (this.bits[base + w] !== set[w]) return false;
    return true;
  }

  private grow(): void {
    const capacity = this.hashes.length * 2;
    const hashes = new Int32Array(capacity);
    hashes.set(this.hashes);
    this.hashes = hashes;
    const states = new Int32Array(capacity);
    states.set(this.states);
    this.states = states;
    const bits = new Uint32Array(capacity * this.words);
    bits.set(this.bits);
    this.bits = bits;
  }

  private rehash(): void {
    this.table = new Int32Array(this.table.length * 2);
    const mask = this.table.length - 1;
    for (let entry = 0; entry < this.size; entry++) {
      let slot = this.hashes[entry]! & mask;
      while (this.table[slot] !== 0) slot = (slot + 1) & mask;
      this.table[slot] = entry + 1;
    }
  }
}

/** Searches for a linearization of one key's operations. */
export function searchLinearization(
  model: CompiledKey,
  budget: Budget,
  cacheEntriesMax: number,
): SearchOutcome {
  return new Search(model, budget, cacheEntriesMax).run();
}

class Search {
  private readonly n: number;
  private readonly tail: number;
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  /** Position of each node in real-time order: how far a stuck search got. */
  private readonly rank: Int32Array;
  private readonly zobrist: Int32Array;
  private readonly linearized: Uint32Array;
  private readonly visited: VisitedSet;
  private readonly opStack: Int32Array;
  private readonly stateStack: Int32Array;
  private depth = 0;
  private state: number;
  private setHash = 0;
  private okRemaining = 0;
  private frontier: { rank: number; blocked: number; order: number[]; states: number[] } = {
    rank: -1,
    blocked: -1,
    order: [],
    states: [],
  };

  constructor(
    private readonly model: CompiledKey,
    private readonly budget: Budget,
    cacheEntriesMax: number,
  ) {
    const n = model.ops.length;
    this.n = n;
    this.tail = 2 * n + 1;
    this.next = new Int32Array(2 * n + 2);
    this.prev = new Int32Array(2 * n + 2);
    this.rank = new Int32Array(2 * n + 2);
    this.linkInRealTimeOrder();
    this.zobrist = new Int32Array(n);
    for (let i = 0; i < n; i++) this.zobrist[i] = mix32(Math.imul(i + 1, 0x9e3779b9));
    const words = Math.max(1, Math.ceil(n / 32));
    this.linearized = new Uint32Array(words);
    this.visited = new VisitedSet(words, cacheEntriesMax);
    this.opStack = new Int32Array(n);
    this.stateStack = new Int32Array(n);
    this.state = model.initial;
    for (const op of model.ops) if (op.outcome !== 'info') this.okRemaining++;
  }

  /** Node 0 is the head, 1 + 2i the call of operation i, 2 + 2i its return, 2n + 1 the tail. */
  private linkInRealTimeOrder(): void {
    const nodes: number[] = [];
    const position = new Float64Array(this.tail + 1);
    this.model.ops.forEach((op, i) => {
      assert(op.callIndex < op.returnIndex, 'an operation returns after it is called');
      position[1 + 2 * i] = op.callIndex;
      position[2 + 2 * i] = op.returnIndex;
      nodes.push(1 + 2 * i, 2 + 2 * i);
    });
    nodes.sort((x, y) => position[x]! - position[y]! || x - y);
    let last = head;
    nodes.forEach((node, order) => {
      this.next[last] = node;
      this.prev[node] = last;
      this.rank[node] = order + 1;
      last = node;
    });
    this.next[last] = this.tail;
    this.prev[this.tail] = last;
    this.rank[this.tail] = nodes.length + 1;
  }

  run(): SearchOutcome {
    let node = this.next[head]!;
    let sinceCharge = 0;
    while (this.okRemaining > 0) {
      if (++sinceCharge === chargeEvery) {
        sinceCharge = 0;
        const spent = this.budget.charge(chargeEvery);
        if (spent !== undefined) return { kind: 'unknown', reason: spent };
      }
      assert(node !== this.tail, 'the return of an unlinearized ok operation is still listed');
      if ((node & 1) === 1) {
        node = this.tryLinearize(node);
        if (node < 0) {
          const max = this.visited.entriesMax;
          return { kind: 'unknown', reason: `search cache reached cacheEntriesMax (${max})` };
        }
        continue;
      }
      this.noteFrontier(node);
      if (this.depth === 0) return { kind: 'violation', frontier: this.finishedFrontier() };
      node = this.backtrack();
    }
    this.budget.charge(sinceCharge);
    return { kind: 'linearizable' };
  }

  /** Linearizes the call at `node` if legal and new: the next node to visit, or -1 when full. */
  private tryLinearize(node: number): number {
    const op = (node - 1) >> 1;
    const nextState = step(this.model, op, this.state);
    if (nextState < 0) return this.next[node]!;
    const word = op >>> 5;
    const bit = 1 << (op & 31);
    const setHash = this.setHash ^ this.zobrist[op]!;
    this.linearized[word]! |= bit;
    const added = this.visited.add(this.linearized, nextState, setHash ^ mix32(nextState + 1));
    if (added !== 1) {
      this.linearized[word]! &= ~bit;
      return added === 0 ? this.next[node]! : -1;
    }
    this.opStack[this.depth] = op;
    this.stateStack[this.depth] = this.state;
    this.depth++;
    this.state = nextState;
    this.setHash = setHash;
    if (this.model.ops[op]!.outcome !== 'info') this.okRemaining--;
    this.lift(node);
    return this.next[head]!;
  }

  /** Undoes the last linearization: the node after its call, where the walk resumes. */
  private backtrack(): number {
    assert(this.depth > 0, 'backtracking needs a linearized operation');
    this.depth--;
    const op = this.opStack[this.depth]!;
    this.state = this.stateStack[this.depth]!;
    this.linearized[op >>> 5]! &= ~(1 << (op & 31));
    this.setHash ^= this.zobrist[op]!;
    if (this.model.ops[op]!.outcome !== 'info') this.okRemaining++;
    const call = 1 + 2 * op;
    this.unlift(call);
    return this.next[call]!;
  }

  private lift(call: number): void {
    const ret = call + 1;
    this.next[this.prev[call]!] = this.next[call]!;
    this.prev[this.next[call]!] = this.prev[call]!;
    this.next[this.prev[ret]!] = this.next[ret]!;
    this.prev[this.next[ret]!] = this.prev[ret]!;
  }

  /** Reverses `lift`: removed nodes kept their links, and lifts are undone last-first. */
  private unlift(call: number): void {
    const ret = call + 1;
    this.next[this.prev[ret]!] = ret;
    this.prev[this.next[ret]!] = ret;
    this.next[this.prev[call]!] = call;
    this.prev[this.next[call]!] = call;
  }

  /** Remembers the furthest return any legal order reached without linearizing it. */
  private noteFrontier(ret: number): void {
    const rank = this.rank[ret]!;
    const best = this.frontier;
    if (rank > best.rank) {
      this.frontier = {
        rank,
        blocked: (ret - 2) >> 1,
        order: Array.from(this.opStack.subarray(0, this.depth)),
        states: [this.state],
      };
    } else if (
      rank === best.rank &&
      best.states.length < frontierStatesMax &&
      !best.states.includes(this.state)
    ) {
      best.states.push(this.state);
    }
  }

  private finishedFrontier(): Frontier {
    const { blocked, order, states } = this.frontier;
    assert(blocked >= 0 && blocked < this.n, 'a violation has a blocked operation');
    return { blocked, order, states };
  }
}
