import { digestMismatchMs, eventSendsMax, GOSSIP_DEFAULTS } from '../../gossip/config.ts';
import { assert } from '../../kernel/assert.ts';
import type { Rng } from '../../kernel/rng.ts';

/**
 * A round-synchronous model of spreading one rumour among n nodes, fast enough for
 * n = 10,000 (the full cores hold n² member records at that size). It measures the
 * classic schemes against their theory and our scheme with the core's own formulas:
 *
 * - push: each informed node tells one random node per round (≈ log2 n + ln n rounds, Pittel).
 * - pull: each uninformed node asks one random node per round.
 * - push-pull: each node exchanges with one random node (≈ log3 n + O(ln ln n), Karp et al.).
 * - rumour+digest: the gossip core's event rumour: sent to `gossipNodes` random nodes per
 *   round, at most `eventSendsMax` times, stopping after `eventUselessSendsMax` sends that
 *   told the receiver nothing new; every round also carries a digest, and a node that a
 *   digest showed behind, still behind a mismatch lifetime later, push-pulls.
 */
export type Scheme = 'push' | 'pull' | 'push-pull' | 'rumour+digest';

export interface SpreadResult {
  /** Rounds until every node knew, or `roundsMax` + 1 if some never did. */
  readonly rounds: number;
  /** Messages sent by all nodes over those rounds (a request and its answer count two). */
  readonly messages: number;
  /** How many learned through a digest-triggered push-pull (rumour+digest only). */
  readonly viaDigest: number;
}

export const ROUNDS_MAX = 500;

function other(rng: Rng, n: number, self: number): number {
  const x = rng.int(n - 1);
  return x >= self ? x + 1 : x;
}

export function spread(scheme: Scheme, n: number, rng: Rng): SpreadResult {
  assert(Number.isInteger(n) && n >= 2, 'spread needs at least two nodes');
  const informed = new Uint8Array(n);
  informed[0] = 1;
  let count = 1;
  let messages = 0;
  if (scheme === 'rumour+digest') return rumourDigest(n, rng, informed);
  const next = new Uint8Array(n);
  for (let round = 1; round <= ROUNDS_MAX; round++) {
    next.set(informed);
    for (let i = 0; i < n; i++) {
      if (scheme === 'push' && informed[i] === 1) {
        next[other(rng, n, i)] = 1;
        messages++;
      } else if (scheme === 'pull' && informed[i] === 0) {
        const j = other(rng, n, i);
        messages += 2;
        if (informed[j] === 1) next[i] = 1;
      } else if (scheme === 'push-pull') {
        const j = other(rng, n, i);
        messages += 2;
        if (informed[i] === 1 || informed[j] === 1) {
          next[i] = 1;
          next[j] = 1;
        }
      }
    }
    informed.set(next);
    count = 0;
    for (let i = 0; i < n; i++) count += informed[i]!;
    if (count === n) return { rounds: round, messages, viaDigest: 0 };
  }
  return { rounds: ROUNDS_MAX + 1, messages, viaDigest: 0 };
}

function rumourDigest(n: number, rng: Rng, informed: Uint8Array): SpreadResult {
  const d = GOSSIP_DEFAULTS;
  const fanout = d.gossipNodes;
  const sendsMax = eventSendsMax(d.retransmitMult, n);
  const lastingRounds = Math.ceil(
    digestMismatchMs(d.digestMismatchMult, sendsMax / 2, fanout, d.gossipIntervalMs) /
      d.gossipIntervalMs,
  );
  const sends = new Int32Array(n);
  const useless = new Int32Array(n);
  /** Round at which a digest first showed node i behind (-1: not yet). */
  const behindSince = new Int32Array(n).fill(-1);
  const learnedAt = new Int32Array(n).fill(-1);
  learnedAt[0] = 0;
  let count = 1;
  let messages = 0;
  let viaDigest = 0;
  for (let round = 1; round <= ROUNDS_MAX; round++) {
    const learnNow: number[] = [];
    for (let i = 0; i < n; i++) {
      // Every gossip round sends `fanout` messages with the digest; an active rumour rides along.
      for (let f = 0; f < fanout; f++) {
        const j = other(rng, n, i);
        messages++;
        const knows = informed[i] === 1 && learnedAt[i]! < round;
        if (!knows) continue;
        const active = sends[i]! < sendsMax && useless[i]! < d.eventUselessSendsMax;
        if (active) {
          sends[i]!++;
          if (informed[j] === 1) {
            useless[i]!++;
            messages++; // the `seen` feedback
          } else learnNow.push(j);
        } else if (informed[j] === 0 && behindSince[j] === -1) {
          behindSince[j] = round;
        }
      }
    }
    for (const j of learnNow) {
      if (informed[j] === 0) {
        informed[j] = 1;
        learnedAt[j] = round;
        count++;
      }
    }
    for (let j = 0; j < n; j++) {
      if (informed[j] === 0 && behindSince[j] !== -1 && round - behindSince[j]! >= lastingRounds) {
        informed[j] = 1;
        learnedAt[j] = round;
        count++;
        viaDigest++;
        messages += 2;
      }
    }
    if (count === n) return { rounds: round, messages, viaDigest };
  }
  return { rounds: ROUNDS_MAX + 1, messages, viaDigest };
}

/** Theory: push ≈ log2 n + ln n; push-pull ≈ log3 n + ln ln n. */
export function theoryRounds(scheme: 'push' | 'push-pull', n: number): number {
  return scheme === 'push'
    ? Math.log2(n) + Math.log(n)
    : Math.log(n) / Math.log(3) + Math.log(Math.log(n));
}
