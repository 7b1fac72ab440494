/**
 * Scuttlebutt flow control (van Renesse et al. 2008, section 4), as small named formulas.
 *
 * Each participant has an allowed update rate (updates/s) and a desired one (what its
 * application tries to write). Both travel on every gossip exchange. After an exchange:
 * - if the exchange was overloaded (either side had more deltas for the other than the mtu
 *   let it send), the side with the larger allowed rate of the two decreases it
 *   multiplicatively: rates converge to equal shares, and the sum shrinks until the
 *   deltas produced fit what gossip carries;
 * - otherwise a side whose allowed rate is below its desired rate increases it additively.
 * Local writes are held to the allowed rate by a token bucket; a write with no token is
 * refused `rate-limited` with the time until the next token, never queued.
 */

export interface FlowConfig {
  /** Allowed rate a node starts with, updates/s. Default 1. */
  readonly rateInitialPerSecond: number;
  /** The allowed rate never drops below this, updates/s. Default 0.01 (one per 100 s). */
  readonly rateMinPerSecond: number;
  /** Additive increase per non-overloaded exchange, updates/s. Default 0.1. */
  readonly rateIncreasePerSecond: number;
  /** Multiplicative decrease on an overloaded exchange. Default 0.75. */
  readonly rateDecreaseFactor: number;
  /** Tokens a node may save up (a burst), updates. Default 4. */
  readonly burstUpdates: number;
  /** Weight of the newest interval in the desired-rate average. Default 0.5. */
  readonly desiredSmoothing: number;
}

export const FLOW_DEFAULTS: FlowConfig = {
  rateInitialPerSecond: 1,
  rateMinPerSecond: 0.01,
  rateIncreasePerSecond: 0.1,
  rateDecreaseFactor: 0.75,
  burstUpdates: 4,
  desiredSmoothing: 0.5,
};

export interface RateInfo {
  /** Allowed rate, updates/s. */
  readonly rate: number;
  /** Desired rate, updates/s. */
  readonly desired: number;
}

/** AIMD multiplicative decrease, floored at the minimum rate. */
export function aimdDecrease(rate: number, c: FlowConfig): number {
  return Math.max(c.rateMinPerSecond, rate * c.rateDecreaseFactor);
}

/** AIMD additive increase, capped at what the node wants (but never below the minimum). */
export function aimdIncrease(rate: number, desired: number, c: FlowConfig): number {
  return Math.max(
    c.rateMinPerSecond,
    Math.min(Math.max(desired, rate), rate + c.rateIncreasePerSecond),
  );
}

/** Our allowed rate after one exchange with a peer (see the module comment). */
export function adaptRate(
  mine: RateInfo,
  peer: RateInfo,
  overloaded: boolean,
  c: FlowConfig,
): number {
  if (overloaded) return mine.rate >= peer.rate ? aimdDecrease(mine.rate, c) : mine.rate;
  return mine.rate < mine.desired ? aimdIncrease(mine.rate, mine.desired, c) : mine.rate;
}

/** Exponentially smoothed desired rate from the writes attempted in one interval. */
export function smoothDesired(
  previous: number,
  attempts: number,
  intervalMs: number,
  c: FlowConfig,
): number {
  const observed = (attempts * 1_000) / intervalMs;
  return previous * (1 - c.desiredSmoothing) + observed * c.desiredSmoothing;
}

/** Token bucket holding local writes to the allowed rate. */
export interface Bucket {
  tokens: number;
  at: number;
}

export function refill(
  b: Bucket,
  now: number,
  rate: number,
  c: Pick<FlowConfig, 'burstUpdates'>,
): void {
  if (now > b.at) b.tokens = Math.min(c.burstUpdates, b.tokens + ((now - b.at) * rate) / 1_000);
  b.at = Math.max(b.at, now);
}

/** Milliseconds until the bucket holds one token at `rate`. */
export function retryAfterMs(b: Bucket, rate: number): number {
  return Math.max(1, Math.ceil(((1 - b.tokens) * 1_000) / rate));
}
