import { unreachable } from '../kernel/assert.ts';
import { OutputBuffer } from '../kernel/core.ts';
import type { ClientId, NodeId } from '../kernel/ids.ts';
import {
  consensusTimeoutMs,
  datagramPayloadBytes,
  type TotemConfig,
  tokenHoldMs,
  tokenRetransmitMs,
  tokenTimeoutMs,
  validateTotemConfig,
} from './config.ts';
import { SendQueue } from './flow.ts';
import type { RecoveryPlan } from './membership.ts';
import type { Ring } from './ring.ts';
import { Reassembler } from './store.ts';
import type {
  CommitEntry,
  DropReason,
  Join,
  Mcast,
  RingId,
  Token,
  TotemDurable,
  TotemState,
  TotemTypes,
} from './types.ts';
import type { WireLimits } from './wire.ts';

/**
 * Deliberately broken behaviour, for the simulator's tests that prove its checks catch it.
 * Never set outside tests.
 */
export interface TotemUnsafeTestingFaults {
  /** Deliver the next held datagram even when one before it is missing. */
  readonly deliverAcrossGap?: boolean;
  /** Free on one rotation's aru instead of two. */
  readonly freeOneRotationEarly?: boolean;
  /** Install the new ring without re-sending the old ring's messages survivors lack. */
  readonly skipRecovery?: boolean;
}

/**
 * One Totem node's state, shared by the phases of the protocol that each live in their own
 * file (gather.ts, commit.ts, recovery.ts, operational.ts) as functions of it. Only
 * `TotemNode` (node.ts) holds one; nothing outside src/totem sees it.
 */
export class NodeCtx {
  readonly id: NodeId;
  readonly out = new OutputBuffer<TotemTypes>();
  readonly tokenMs: number;
  readonly retransmitMs: number;
  readonly holdMs: number;
  readonly consensusMs: number;
  readonly limits: WireLimits;
  readonly faults: TotemUnsafeTestingFaults;
  readonly boot: number;
  /** Highest ring seq seen; persisted before any message that depends on it leaves. */
  ringSeqMax: number;

  state: TotemState = 'gather';
  /** The installed regular ring (undefined until the first one forms). */
  regular: Ring | undefined = undefined;
  /** The ring being formed (Commit, Recovery). */
  forming: Ring | undefined = undefined;
  entries: readonly CommitEntry[] = [];
  plan: RecoveryPlan | undefined = undefined;
  recoveryQueue: Mcast[] = [];

  procs = new Set<NodeId>();
  failed = new Set<NodeId>();
  readonly joins = new Map<NodeId, Join>();
  /** Consensus timeouts in a row that spared a member which answered but disagreed. */
  consensusRounds = 0;
  /** When our sets last came to agree with every live member's (waiting for a commit token). */
  agreedAt: number | undefined = undefined;

  tokenAt = Number.POSITIVE_INFINITY;
  joinAt = Number.POSITIVE_INFINITY;
  consensusAt = Number.POSITIVE_INFINITY;
  holdAt = Number.POSITIVE_INFINITY;
  mergeAt = Number.POSITIVE_INFINITY;
  /** A token kept back: an idle ring's, or a singleton ring's own. */
  held: Token | undefined = undefined;

  readonly queue: SendQueue;
  published = 0;
  /** Our messages not yet delivered here, and who asked (answered on local delivery). */
  readonly awaiting = new Map<number, { client: ClientId; ref: number }>();
  readonly assembler = new Reassembler();
  readonly drops = new Map<DropReason, number>();

  constructor(
    readonly config: TotemConfig,
    durable: TotemDurable,
    faults: TotemUnsafeTestingFaults = {},
  ) {
    validateTotemConfig(config);
    this.id = config.id;
    this.tokenMs = tokenTimeoutMs(config);
    this.retransmitMs = tokenRetransmitMs(config);
    this.holdMs = tokenHoldMs(config);
    this.consensusMs = consensusTimeoutMs(config);
    this.faults = faults;
    this.limits = {
      retransmitEntriesMax: config.retransmitEntriesMax,
      membersMax: config.members.length,
      mtuBytes: config.mtuBytes,
    };
    this.queue = new SendQueue(
      config.sendQueueMessagesMax,
      config.sendQueueBytesMax,
      datagramPayloadBytes(config),
      config.mtuBytes,
    );
    this.boot = durable.boot + 1;
    this.ringSeqMax = durable.ringSeq;
    // The boot number makes message origins unique across restarts: durable before any send.
    this.out.persist({ type: 'boot', boot: this.boot });
  }

  drop(reason: DropReason): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1);
    this.out.emit({ type: 'dropped', reason });
  }

  activeRing(): Ring | undefined {
    switch (this.state) {
      case 'operational':
        return this.regular;
      case 'commit':
      case 'recovery':
        return this.forming;
      case 'gather':
        return undefined;
      default:
        return unreachable(this.state, 'state');
    }
  }

  setState(state: TotemState, ring: RingId): void {
    this.state = state;
    this.out.emit({ type: 'state', state, ring });
  }

  /** Raises the persisted ring seq; the caller's messages leave only once it is durable. */
  raiseRingSeq(seq: number): void {
    if (seq <= this.ringSeqMax) return;
    this.ringSeqMax = seq;
    this.out.persist({ type: 'ringSeq', seq });
  }

  observeReceived(ring: RingId, seq: number): void {
    if (this.config.observe) this.out.emit({ type: 'received', ring, seq });
  }

  broadcast(ring: Ring, m: Mcast): void {
    for (const to of ring.members) if (to !== this.id) this.out.send(to, m);
  }
}
