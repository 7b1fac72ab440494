import { assert } from '../kernel/assert.ts';
import { isNodeId, type NodeId } from '../kernel/ids.ts';

/**
 * Totem's settings. Defaults are corosync's (totem.conf(5), totemconfig.c), each with the
 * formula that derives it written beside it, and every limit is validated at construction
 * with an error that names the setting.
 */
export interface TotemConfig {
  readonly id: NodeId;
  /** Every node that may ever join (the nodelist): a join from any other id is refused. */
  readonly members: readonly NodeId[];
  /** Token timeout for a ring of two (corosync `token`); see `tokenTimeoutMs`. */
  readonly tokenBaseMs: number;
  /** Added to the token timeout per configured member above two (corosync `token_coefficient`). */
  readonly tokenPerMemberMs: number;
  /** Token retransmissions before the token counts as lost (corosync `token_retransmits_before_loss_const`). */
  readonly tokenRetransmitsBeforeLoss: number;
  /** How long a gatherer waits before resending its join (corosync `join`). */
  readonly joinMs: number;
  /** Consensus timeout as a multiple of the token timeout (corosync: consensus = 1.2 × token). */
  readonly consensusFactor: number;
  /** How often a ring representative probes for foreign rings (corosync `merge`). */
  readonly mergeMs: number;
  /** Datagrams a whole rotation may carry (corosync `window_size`). */
  readonly windowSize: number;
  /** Datagrams one token visit may carry (corosync `max_messages`). */
  readonly maxMessagesPerVisit: number;
  /** Largest datagram (corosync `netmtu`). */
  readonly mtuBytes: number;
  /** Largest message a client may publish; larger ones are fragmented into datagrams. */
  readonly messageBytesMax: number;
  /** Send queue bounds: a publish beyond either gets `backpressure`. */
  readonly sendQueueMessagesMax: number;
  readonly sendQueueBytesMax: number;
  /** Entries a token's retransmit list may hold (corosync RETRANSMIT_ENTRIES_MAX). */
  readonly retransmitEntriesMax: number;
  /** Empty rotations after which the representative holds the token instead of spinning it. */
  readonly emptyRotationsBeforeHold: number;
  /** How far above our aru a datagram's seq may be and still be stored. */
  readonly storeSpanMax: number;
  /**
   * Emit `received` and `assigned` events per datagram, for observers that check delivery
   * (the simulator's monitor); off by default, as they cost an event per datagram.
   */
  readonly observe: boolean;
}

export const TOTEM_DEFAULTS: Omit<TotemConfig, 'id' | 'members'> = {
  tokenBaseMs: 3000,
  tokenPerMemberMs: 650,
  tokenRetransmitsBeforeLoss: 4,
  joinMs: 50,
  consensusFactor: 1.2,
  mergeMs: 200,
  windowSize: 50,
  maxMessagesPerVisit: 17,
  mtuBytes: 1400,
  messageBytesMax: 1 << 20,
  sendQueueMessagesMax: 10_000,
  sendQueueBytesMax: 64 << 20,
  retransmitEntriesMax: 30,
  emptyRotationsBeforeHold: 3,
  storeSpanMax: 10_000,
  observe: false,
};

/** Token timeout: token + coefficient × (members − 2), as corosync (3,000 + 650 per member above 2). */
export function tokenTimeoutMs(c: TotemConfig): number {
  return c.tokenBaseMs + c.tokenPerMemberMs * Math.max(0, c.members.length - 2);
}

/** Token retransmit interval: token / (retransmits + 0.2), as corosync (714 ms at the defaults). */
export function tokenRetransmitMs(c: TotemConfig): number {
  return tokenTimeoutMs(c) / (c.tokenRetransmitsBeforeLoss + 0.2);
}

/** How long the representative holds an idle token: 0.8 × the retransmit interval, as corosync. */
export function tokenHoldMs(c: TotemConfig): number {
  return tokenRetransmitMs(c) * 0.8;
}

/** Consensus timeout: 1.2 × token, as corosync (4,380 ms for 3 members at the defaults). */
export function consensusTimeoutMs(c: TotemConfig): number {
  return tokenTimeoutMs(c) * c.consensusFactor;
}

/**
 * Bytes of a datagram's header and of each packed item's header, as the codec (codec.ts)
 * writes them: the header budget holds two headers, so that a datagram re-sent in Recovery
 * inside a datagram of the new ring still fits the mtu.
 */
export const DATAGRAM_HEADER_BYTES = 48;
export const ITEM_HEADER_BYTES = 24;
/** Largest mtu the codec's u16 item lengths allow. */
export const MTU_BYTES_MAX = 65_507;
/** Largest retransmit list and member count the codec's u8 / u16 counts allow. */
export const RETRANSMIT_ENTRIES_LIMIT = 255;
export const MEMBERS_LIMIT = 0xffff;

/** Payload bytes one datagram can carry in a single item. */
export function datagramPayloadBytes(c: TotemConfig): number {
  return c.mtuBytes - DATAGRAM_HEADER_BYTES - ITEM_HEADER_BYTES;
}

function positiveInt(value: number, name: string): void {
  assert(Number.isInteger(value) && value >= 1, `${name} must be a positive integer, got ${value}`);
}

/** Throws a clear error naming the first bad setting. */
export function validateTotemConfig(c: TotemConfig): void {
  assert(isNodeId(c.id), `id must be a node id, got ${c.id}`);
  assert(c.members.length >= 1, 'members must not be empty');
  assert(c.members.length <= MEMBERS_LIMIT, `members must be at most ${MEMBERS_LIMIT}`);
  assert(new Set(c.members).size === c.members.length, 'members must not repeat');
  assert(c.members.every(isNodeId), 'members must be node ids');
  assert(c.members.includes(c.id), `members must include this node (${c.id})`);
  assert(c.tokenBaseMs > 0 && c.tokenPerMemberMs >= 0, 'token timeouts must be positive');
  positiveInt(c.tokenRetransmitsBeforeLoss, 'tokenRetransmitsBeforeLoss');
  assert(c.joinMs > 0, `joinMs must be positive, got ${c.joinMs}`);
  assert(c.mergeMs > 0, `mergeMs must be positive, got ${c.mergeMs}`);
  assert(
    tokenRetransmitMs(c) < tokenTimeoutMs(c),
    `token retransmit interval (${tokenRetransmitMs(c)} ms) must be below the token timeout (${tokenTimeoutMs(c)} ms)`,
  );
  assert(
    consensusTimeoutMs(c) > c.joinMs,
    `consensus timeout (${consensusTimeoutMs(c)} ms) must exceed the join timeout (${c.joinMs} ms)`,
  );
  assert(
    consensusTimeoutMs(c) > tokenRetransmitMs(c),
    'consensus timeout must exceed the token retransmit interval',
  );
  positiveInt(c.windowSize, 'windowSize');
  positiveInt(c.maxMessagesPerVisit, 'maxMessagesPerVisit');
  assert(c.maxMessagesPerVisit <= c.windowSize, 'maxMessagesPerVisit must not exceed windowSize');
  assert(
    c.mtuBytes > DATAGRAM_HEADER_BYTES + ITEM_HEADER_BYTES + 64,
    `mtuBytes must exceed ${DATAGRAM_HEADER_BYTES + ITEM_HEADER_BYTES + 64}, got ${c.mtuBytes}`,
  );
  assert(
    c.mtuBytes <= MTU_BYTES_MAX,
    `mtuBytes must be at most ${MTU_BYTES_MAX}, got ${c.mtuBytes}`,
  );
  positiveInt(c.messageBytesMax, 'messageBytesMax');
  positiveInt(c.sendQueueMessagesMax, 'sendQueueMessagesMax');
  assert(
    c.sendQueueBytesMax >= c.messageBytesMax,
    'sendQueueBytesMax must hold at least one message of messageBytesMax',
  );
  positiveInt(c.retransmitEntriesMax, 'retransmitEntriesMax');
  assert(
    c.retransmitEntriesMax <= RETRANSMIT_ENTRIES_LIMIT,
    `retransmitEntriesMax must be at most ${RETRANSMIT_ENTRIES_LIMIT}, got ${c.retransmitEntriesMax}`,
  );
  positiveInt(c.emptyRotationsBeforeHold, 'emptyRotationsBeforeHold');
  assert(
    c.storeSpanMax >= c.windowSize * 4,
    `storeSpanMax must be at least 4 windows (${c.windowSize * 4}), got ${c.storeSpanMax}`,
  );
}
