import { assert } from '../kernel/assert.ts';
import { assertNodeId, type NodeId } from '../kernel/ids.ts';

/**
 * Settings of a gossip node. Defaults follow memberlist's LAN profile (probe 1 s, timeout
 * 500 ms, 3 indirect probes, gossip every 200 ms to 3 members, retransmit and suspicion
 * multipliers 4, awareness up to 8x) and add what memberlist lacks: the digest, the event
 * rumour settings, retention and the size limits. Every protocol formula is a named function
 * below with its default beside it.
 */
export interface GossipConfig {
  readonly id: NodeId;
  /** Nodes to join through (own id ignored); empty for the first node of a cluster. */
  readonly seeds: readonly NodeId[];
  /** This node's tags (UTF-8, at most `tagsBytesMax`). */
  readonly tags: string;
  readonly probeIntervalMs: number;
  readonly probeTimeoutMs: number;
  /** Members asked to probe indirectly (each also nacks, Lifeguard 4.1). */
  readonly indirectChecks: number;
  readonly gossipIntervalMs: number;
  /** Members each gossip round sends to. */
  readonly gossipNodes: number;
  /** A member dead this recently still gets gossip, so it learns and refutes. */
  readonly gossipToTheDeadMs: number;
  readonly retransmitMult: number;
  readonly suspicionMult: number;
  /** The longest suspicion is this multiple of the shortest (Lifeguard 4.2). */
  readonly suspicionMaxTimeoutMult: number;
  /** Health score 0..awarenessMax-1 multiplies our probe interval and timeout (Lifeguard 4.3). */
  readonly awarenessMax: number;
  /**
   * Lifeguard on (the default) or off, for measuring it: off is SWIM with suspicion as
   * memberlist ran before Lifeguard: no health score (probe interval and timeout never
   * stretch), relays send no nack, every suspicion lasts the shortest timeout whatever the
   * confirmations, and a suspect is not told with our ping or when it speaks to us.
   */
  readonly lifeguard: boolean;
  /** Periodic full state exchange, scaled by `pushPullScale`. */
  readonly pushPullIntervalMs: number;
  /**
   * Every this often we push-pull with one member we hold dead (not left), as serf's
   * reconnect does: after a long partition both sides hold the other dead, and nothing
   * else would ever make them talk again.
   */
  readonly reconnectIntervalMs: number;
  /** Dead members are reconnected to for this long after their death. */
  readonly reconnectTimeoutMs: number;
  /**
   * A member dead this long is forgotten (serf's reconnect timeout, 24 h): reconnects to it
   * have stopped, and its record would otherwise stay for ever after a replacement.
   */
  readonly reapDeadMs: number;
  /**
   * A member that left this long ago is forgotten (serf's tombstone timeout, 24 h). Its
   * record is what refuses a stale alive at its old incarnation, so it must outlive every
   * rumour and state exchange still carrying one; 24 h is many orders above that.
   */
  readonly reapLeftMs: number;
  /** A push-pull with no answer after this is abandoned. */
  readonly pushPullTimeoutMs: number;
  /** A digest mismatch lasting this many gossip rounds times the rumour's lifetime starts a push-pull. */
  readonly digestMismatchMult: number;
  /** Member entries per digest slice; event heads per digest slice. */
  readonly digestEntriesMax: number;
  readonly digestHeadsMax: number;
  /** Sends of one event rumour that told its receiver nothing new before we stop (rumour mongering, feedback variant). */
  readonly eventUselessSendsMax: number;
  readonly eventFanout: number;
  /** A leaving node keeps answering this long so its leave intent spreads. */
  readonly leaveGraceMs: number;
  /** The datagram budget of one message, encoded. */
  readonly packetBytesMax: number;
  readonly membersMax: number;
  readonly tagsBytesMax: number;
  /** Event name plus payload, UTF-8. */
  readonly eventBytesMax: number;
  readonly eventsRetainedMax: number;
  readonly eventsRetentionMs: number;
  /** A missing event with later ones waiting is declared a gap after this (its only holders crashed). */
  readonly eventHoleTimeoutMs: number;
  /** Events one push-pull carries; the rest follow in later exchanges. */
  readonly pushPullEventsMax: number;
  /** Indirect probes we relay at once for others. */
  readonly relaysMax: number;
  /**
   * Members a joiner tells of itself directly, one datagram each, once its seed's state
   * arrives (0: rumours only). Of two nodes joining through one seed at once, the later one
   * the seed served has the earlier in its reply; its datagram is how the earlier learns of
   * it without waiting for the rumour's epidemic.
   */
  readonly joinAnnounceNodes: number;
  /** Test-only broken behaviours the simulator must catch. */
  readonly unsafeTestingFaults?: GossipUnsafeTestingFaults;
}

export interface GossipUnsafeTestingFaults {
  /** Restart at incarnation 1 instead of above the persisted one. */
  readonly forgetIncarnation?: boolean;
  /** Never refute a suspicion or an accusation about ourselves. */
  readonly noRefutation?: boolean;
  /** Keep retransmitting membership rumours forever. */
  readonly unboundedRetransmits?: boolean;
}

export const GOSSIP_DEFAULTS = {
  seeds: [] as readonly NodeId[],
  tags: '',
  probeIntervalMs: 1_000,
  probeTimeoutMs: 500,
  indirectChecks: 3,
  gossipIntervalMs: 200,
  gossipNodes: 3,
  gossipToTheDeadMs: 30_000,
  retransmitMult: 4,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  awarenessMax: 8,
  lifeguard: true,
  pushPullIntervalMs: 30_000,
  pushPullTimeoutMs: 2_000,
  reconnectIntervalMs: 10_000,
  reconnectTimeoutMs: 24 * 3_600_000,
  reapDeadMs: 24 * 3_600_000,
  reapLeftMs: 24 * 3_600_000,
  digestMismatchMult: 2,
  digestEntriesMax: 16,
  digestHeadsMax: 8,
  eventUselessSendsMax: 6,
  eventFanout: 3,
  leaveGraceMs: 1_000,
  packetBytesMax: 1_400,
  membersMax: 10_000,
  tagsBytesMax: 512,
  eventBytesMax: 1_024,
  eventsRetainedMax: 4_096,
  eventsRetentionMs: 24 * 3_600_000,
  eventHoleTimeoutMs: 5_000,
  pushPullEventsMax: 256,
  relaysMax: 64,
  joinAnnounceNodes: 64,
} as const;

/** Membership rumours are piggybacked at most retransmitMult·⌈log10(n+1)⌉ times (4 → 8 at n = 50). */
export function retransmitLimit(retransmitMult: number, n: number): number {
  return retransmitMult * Math.ceil(Math.log10(n + 1));
}

/** Event rumours stop after this many sends even without feedback (lost `seen` replies): twice the membership limit. */
export function eventSendsMax(retransmitMult: number, n: number): number {
  return 2 * retransmitLimit(retransmitMult, n);
}

/** Shortest suspicion: suspicionMult·max(1, log10 n) probe intervals (4 s at n ≤ 10, 6.8 s at n = 50). */
export function suspicionMinTimeoutMs(
  suspicionMult: number,
  n: number,
  probeIntervalMs: number,
): number {
  return suspicionMult * Math.max(1, Math.log10(Math.max(1, n))) * probeIntervalMs;
}

/** Longest suspicion: suspicionMaxTimeoutMult times the shortest (6 → 41 s at n = 50). */
export function suspicionMaxTimeoutMs(minMs: number, suspicionMaxTimeoutMult: number): number {
  return minMs * suspicionMaxTimeoutMult;
}

/** Independent confirmations that bring a suspicion down to its shortest: suspicionMult − 2, and no more than the other members (Lifeguard 4.2). */
export function suspicionConfirmationsNeeded(suspicionMult: number, n: number): number {
  return Math.max(0, Math.min(suspicionMult - 2, n - 2));
}

/**
 * The suspicion timeout after `confirmations` independent suspicions: from max down to min
 * logarithmically, max − (max − min)·log(c + 1)/log(k + 1), never below min.
 */
export function suspicionTimeoutMs(
  confirmations: number,
  needed: number,
  minMs: number,
  maxMs: number,
): number {
  if (needed <= 0) return minMs;
  const frac = Math.log(confirmations + 1) / Math.log(needed + 1);
  return Math.max(minMs, Math.floor(maxMs - (maxMs - minMs) * frac));
}

/** Our probe interval and timeout stretched by our health score: base·(health + 1) (Lifeguard 4.3). */
export function awarenessScaledMs(baseMs: number, health: number): number {
  return baseMs * (health + 1);
}

/** Push-pull interval: unchanged up to 32 members, then one more multiple per doubling (30 s → 60 s at 64, 30 s·10 at 10,000). */
export function pushPullScaleMs(intervalMs: number, n: number): number {
  const threshold = 32;
  if (n <= threshold) return intervalMs;
  const mult = Math.ceil(Math.log2(n) - Math.log2(threshold)) + 1;
  return intervalMs * mult;
}

/** A digest mismatch is lasting after digestMismatchMult rumour lifetimes: mult·⌈limit/gossipNodes⌉ gossip rounds (2·3·200 ms = 1.2 s at n = 50). */
export function digestMismatchMs(
  digestMismatchMult: number,
  retransmits: number,
  gossipNodes: number,
  gossipIntervalMs: number,
): number {
  return digestMismatchMult * Math.ceil(retransmits / gossipNodes) * gossipIntervalMs;
}

/** A hash mismatch with one peer lasting four slice-evidence lifetimes starts a push-pull (4.8 s at n = 50). */
export function hashMismatchMs(lastingMs: number): number {
  return 4 * lastingMs;
}

/** A tick later than this after its deadline means our own process was paused. */
export function pauseThresholdMs(probeIntervalMs: number): number {
  return probeIntervalMs;
}

const positiveInts = [
  'probeIntervalMs',
  'probeTimeoutMs',
  'gossipIntervalMs',
  'gossipNodes',
  'retransmitMult',
  'suspicionMult',
  'suspicionMaxTimeoutMult',
  'awarenessMax',
  'pushPullIntervalMs',
  'pushPullTimeoutMs',
  'reconnectIntervalMs',
  'reconnectTimeoutMs',
  'reapDeadMs',
  'reapLeftMs',
  'digestMismatchMult',
  'eventUselessSendsMax',
  'eventFanout',
  'packetBytesMax',
  'membersMax',
  'eventBytesMax',
  'eventsRetainedMax',
  'eventsRetentionMs',
  'pushPullEventsMax',
  'eventHoleTimeoutMs',
  'relaysMax',
] as const;

const nonNegativeInts = [
  'indirectChecks',
  'gossipToTheDeadMs',
  'digestEntriesMax',
  'digestHeadsMax',
  'leaveGraceMs',
  'tagsBytesMax',
  'joinAnnounceNodes',
] as const;

/** The smallest packet that still carries a ping with one rumour of the largest tags. */
export const PACKET_BYTES_MIN = 576;

/** Throws a clear error naming the first bad setting. */
export function validateGossipConfig(c: GossipConfig): void {
  assertNodeId(c.id);
  for (const s of c.seeds) assertNodeId(s, 'seed id');
  for (const k of positiveInts) {
    const v = c[k];
    assert(Number.isSafeInteger(v) && v >= 1, `${k} must be a positive integer, got ${v}`);
  }
  for (const k of nonNegativeInts) {
    const v = c[k];
    assert(Number.isSafeInteger(v) && v >= 0, `${k} must be a non-negative integer, got ${v}`);
  }
  assert(
    c.probeTimeoutMs < c.probeIntervalMs,
    `probeTimeoutMs (${c.probeTimeoutMs}) must be below probeIntervalMs (${c.probeIntervalMs})`,
  );
  assert(c.suspicionMult >= 2, `suspicionMult must be >= 2, got ${c.suspicionMult}`);
  assert(
    c.packetBytesMax >= PACKET_BYTES_MIN && c.packetBytesMax <= 65_507,
    `packetBytesMax must be in ${PACKET_BYTES_MIN}..65507 (a UDP payload), got ${c.packetBytesMax}`,
  );
  assert(
    c.tagsBytesMax <= 512,
    `tagsBytesMax must be at most 512 (a rumour must fit a packet), got ${c.tagsBytesMax}`,
  );
  assert(c.membersMax <= 10_000, `membersMax must be at most 10000, got ${c.membersMax}`);
  assert(
    c.eventBytesMax + 64 <= c.packetBytesMax,
    `eventBytesMax (${c.eventBytesMax}) must leave 64 bytes of packetBytesMax (${c.packetBytesMax}) for headers`,
  );
  // A member reaped before gossip to the dead stops would be told of its death by no one.
  assert(
    c.reapDeadMs >= c.gossipToTheDeadMs,
    `reapDeadMs (${c.reapDeadMs}) must be at least gossipToTheDeadMs (${c.gossipToTheDeadMs})`,
  );
  assert(
    c.reapLeftMs >= c.leaveGraceMs,
    `reapLeftMs (${c.reapLeftMs}) must be at least leaveGraceMs (${c.leaveGraceMs})`,
  );
  assert(c.awarenessMax <= 64, `awarenessMax must be at most 64, got ${c.awarenessMax}`);
  assert(typeof c.lifeguard === 'boolean', `lifeguard must be true or false, got ${c.lifeguard}`);
}
