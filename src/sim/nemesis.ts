import { assert } from '../kernel/assert.ts';
import type { NodeId } from '../kernel/ids.ts';
import type { Rng } from '../kernel/rng.ts';

/**
 * One fault (or its repair), as the nemesis injects it and a scripted scenario lists it.
 * Nodes are named by id. `heal` repairs the network only (partitions, cuts, clogs, loss,
 * duplication, reordering); crashed and paused nodes come back with `restart`/`resume`.
 */
export type FaultAction =
  | { readonly type: 'partition'; readonly groups: readonly (readonly NodeId[])[] }
  | { readonly type: 'cut'; readonly from: NodeId; readonly to: NodeId }
  | { readonly type: 'clog'; readonly from: NodeId; readonly to: NodeId; readonly delayMs: number }
  | { readonly type: 'heal' }
  | { readonly type: 'crash'; readonly node: NodeId }
  | { readonly type: 'restart'; readonly node: NodeId }
  | { readonly type: 'pause'; readonly node: NodeId }
  | { readonly type: 'resume'; readonly node: NodeId }
  | { readonly type: 'loss'; readonly rate: number }
  | { readonly type: 'duplicate'; readonly rate: number }
  | { readonly type: 'reorder'; readonly rate: number; readonly maxMs: number }
  /** Jumps the node's clock forward by `jumpMs` and sets its rate (1 = true time). */
  | {
      readonly type: 'clock';
      readonly node: NodeId;
      readonly jumpMs: number;
      readonly rate: number;
    }
  /**
   * CPU starvation: each input of the node (a message, or a timer falling due) is handed to
   * its core an exponentially distributed time later, mean `delayMs`, each drawn on its own
   * from the seed, so inputs overtake one another as a loaded multi-threaded process's
   * handlers do: it answers probes late, and an ack can be handled after the timeout it
   * raced. 0 ends it; healing ends it too. Scripted scenarios only: the random nemesis does
   * not pick it.
   */
  | { readonly type: 'slow'; readonly node: NodeId; readonly delayMs: number }
  /** A protocol-specific fault, by the name the plugin gave it. */
  | { readonly type: 'protocol'; readonly name: string };

/** A scripted scenario step: `action` at global time `atMs`. */
export interface ScheduledAction {
  readonly atMs: number;
  readonly action: FaultAction;
}

/** Fault kinds every protocol gets, as named on the command line. */
export const genericFaults = [
  'partition',
  'cut',
  'clog',
  'crash',
  'pause',
  'loss',
  'dup',
  'reorder',
  'skew',
] as const;

export type ParsedFaults = { ok: true; faults: string[] } | { ok: false; error: string };

/** Parses `--faults`: `all`, `none`, or a comma list of generic and protocol fault names. */
export function parseFaults(raw: string, protocolFaults: readonly string[]): ParsedFaults {
  const known = [...genericFaults, ...protocolFaults];
  const text = raw.trim();
  if (text === 'all') return { ok: true, faults: known };
  if (text === 'none' || text === '') return { ok: true, faults: [] };
  const names = text.split(',').map((s) => s.trim());
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length > 0) {
    return {
      ok: false,
      error: `unknown fault '${unknown.join(',')}': choose from ${known.join(',')}, all or none`,
    };
  }
  // Canonical order, so the replay command and the run do not depend on how it was typed.
  return { ok: true, faults: known.filter((n) => names.includes(n)) };
}

/** What the random nemesis needs to know about the cluster to pick a sensible next fault. */
export interface NemesisState {
  isUp(node: NodeId): boolean;
  isPaused(node: NodeId): boolean;
  networkFaulty(): boolean;
}

/**
 * The random nemesis: at exponentially distributed intervals it picks one enabled fault
 * kind and either starts it or repairs it. `intensity` (0..1) shortens the intervals and
 * strengthens each fault (loss rate, clock drift, clog delay).
 */
export class RandomNemesis {
  private readonly intervalMeanMs: number;

  constructor(
    private readonly members: readonly NodeId[],
    private readonly enabled: readonly string[],
    private readonly intensity: number,
    private readonly rng: Rng,
  ) {
    assert(intensity >= 0 && intensity <= 1, `intensity must be in [0, 1], got ${intensity}`);
    assert(members.length >= 1, 'the nemesis needs at least one node');
    this.intervalMeanMs = 10 + 300 * (1 - intensity);
  }

  get active(): boolean {
    return this.enabled.length > 0 && this.intensity > 0;
  }

  nextDelayMs(): number {
    return this.rng.exponential(this.intervalMeanMs);
  }

  next(state: NemesisState): FaultAction {
    const kind = this.rng.pick(this.enabled);
    const repair = this.rng.chance(0.5);
    const x = this.intensity;
    const rng = this.rng;
    switch (kind) {
      case 'partition':
        return repair && state.networkFaulty() ? { type: 'heal' } : this.randomPartition();
      case 'cut': {
        if (repair && state.networkFaulty()) return { type: 'heal' };
        const [from, to] = this.randomLink();
        return { type: 'cut', from, to };
      }
      case 'clog': {
        if (repair && state.networkFaulty()) return { type: 'heal' };
        const [from, to] = this.randomLink();
        return { type: 'clog', from, to, delayMs: rng.exponential(20 + 200 * x) };
      }
      case 'crash':
        return this.toggleNode(repair, state, 'crash');
      case 'pause':
        return this.toggleNode(repair, state, 'pause');
      case 'loss':
        return { type: 'loss', rate: repair ? 0 : rng.next() * 0.4 * x };
      case 'dup':
        return { type: 'duplicate', rate: repair ? 0 : rng.next() * 0.4 * x };
      case 'reorder':
        return { type: 'reorder', rate: repair ? 0 : rng.next() * x, maxMs: 5 + 50 * x };
      case 'skew': {
        const node = rng.pick(this.members);
        const drift = 0.3 * x;
        const rate = repair ? 1 : 1 - drift + 2 * drift * rng.next();
        return { type: 'clock', node, jumpMs: repair ? 0 : rng.next() * 200 * x, rate };
      }
      default:
        return { type: 'protocol', name: kind };
    }
  }

  private randomPartition(): FaultAction {
    const shuffled = this.rng.shuffle([...this.members]);
    if (shuffled.length < 2) return { type: 'heal' };
    if (this.rng.chance(0.5)) {
      // Isolate one node: the classic way to strand a leader or primary.
      return { type: 'partition', groups: [shuffled.slice(0, 1), shuffled.slice(1)] };
    }
    const split = this.rng.range(1, shuffled.length - 1);
    return { type: 'partition', groups: [shuffled.slice(0, split), shuffled.slice(split)] };
  }

  private randomLink(): [NodeId, NodeId] {
    const from = this.rng.pick(this.members);
    if (this.members.length < 2) return [from, from];
    let to = this.rng.pick(this.members);
    while (to === from) to = this.rng.pick(this.members);
    return [from, to];
  }

  /**
   * Crashes and pauses together stay within a minority (f of 2f+1 nodes), the failures a
   * consensus protocol promises to survive while making progress. More would only stall the
   * run: clients time out, their writes become indeterminate, and the history grows hard to
   * check without testing anything new. Safety is still checked under every fault.
   */
  private toggleNode(repair: boolean, state: NemesisState, fault: 'crash' | 'pause'): FaultAction {
    const isFaulty = (n: NodeId) => (fault === 'crash' ? !state.isUp(n) : state.isPaused(n));
    const faulty = this.members.filter(isFaulty);
    const down = this.members.filter((n) => !state.isUp(n) || state.isPaused(n)).length;
    const downMax = Math.floor((this.members.length - 1) / 2);
    if ((repair || down >= downMax) && faulty.length > 0) {
      const node = this.rng.pick(faulty);
      return fault === 'crash' ? { type: 'restart', node } : { type: 'resume', node };
    }
    const candidates = this.members.filter((n) => state.isUp(n) && !state.isPaused(n));
    if (candidates.length === 0 || down >= downMax) return { type: 'heal' };
    const node = this.rng.pick(candidates);
    return { type: fault, node };
  }
}
