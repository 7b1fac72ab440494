import type { CoreTypes } from '../kernel/core.ts';
import type { NodeId } from '../kernel/ids.ts';

/** A member as a node sees it. `left` is a graceful leave; `dead` a failure verdict. */
export type MemberStatus = 'alive' | 'suspect' | 'dead' | 'left';

export interface MemberRecord {
  readonly id: NodeId;
  readonly incarnation: number;
  readonly status: MemberStatus;
  readonly tags: string;
}

/** A user event: numbered 1, 2, 3... per origin. `name` plus `payload` at most `eventBytesMax`. */
export interface UserEvent {
  readonly origin: NodeId;
  readonly seq: number;
  readonly name: string;
  readonly payload: string;
}

/** What is piggybacked on probes and gossip (memberlist's broadcasts, plus events). */
export type Rumour =
  | {
      readonly kind: 'alive';
      readonly id: NodeId;
      readonly incarnation: number;
      readonly tags: string;
    }
  | {
      readonly kind: 'suspect';
      readonly id: NodeId;
      readonly incarnation: number;
      readonly from: NodeId;
    }
  | {
      readonly kind: 'dead';
      readonly id: NodeId;
      readonly incarnation: number;
      readonly from: NodeId;
    }
  /** A graceful leave intent, stamped with the leaver's Lamport clock. */
  | {
      readonly kind: 'leave';
      readonly id: NodeId;
      readonly incarnation: number;
      readonly ltime: number;
    }
  | { readonly kind: 'event'; readonly event: UserEvent };

/** One member in a digest slice: `gone` for dead or left. */
export interface DigestEntry {
  readonly id: NodeId;
  readonly incarnation: number;
  readonly gone: boolean;
}

/** The highest sequence delivered in order from `origin`. */
export interface EventHead {
  readonly origin: NodeId;
  readonly seq: number;
}

/** A head with the first sequence after those retention dropped (0: none dropped), so a peer behind retention learns of its gap. */
export interface RetainedHead extends EventHead {
  readonly oldest: number;
}

/** Compact view of the whole membership: a hash of all of it and a rotating slice. */
export interface Digest {
  readonly hash: number;
  readonly members: number;
  readonly entries: readonly DigestEntry[];
  readonly heads: readonly EventHead[];
}

/**
 * Peer messages. Datagrams (UDP, `packetBytesMax`) are every kind but those in
 * `streamKinds`, which the host sends over authenticated TCP. Codes in wire.ts are
 * append-only.
 */
export type GossipMsg =
  | {
      readonly type: 'ping';
      readonly seq: number;
      readonly target: NodeId;
      readonly rumours: readonly Rumour[];
    }
  | { readonly type: 'ack'; readonly seq: number; readonly rumours: readonly Rumour[] }
  | { readonly type: 'nack'; readonly seq: number }
  | {
      readonly type: 'ping-req';
      readonly seq: number;
      readonly target: NodeId;
      readonly rumours: readonly Rumour[];
    }
  | { readonly type: 'gossip'; readonly rumours: readonly Rumour[]; readonly digest?: Digest }
  /** Feedback: these events told us nothing new (rumour mongering stops after k of these). */
  | { readonly type: 'seen'; readonly events: readonly EventHead[] }
  | {
      readonly type: 'push-pull';
      readonly reply: boolean;
      readonly join: boolean;
      readonly members: readonly MemberRecord[];
      readonly heads: readonly RetainedHead[];
      readonly events: readonly UserEvent[];
    }
  | { readonly type: 'events'; readonly events: readonly UserEvent[] };

export type GossipMsgType = GossipMsg['type'];

/** Every message kind, checked against the union at compile time. */
const kindTable: { readonly [K in GossipMsgType]: 'datagram' | 'stream' } = {
  ping: 'datagram',
  ack: 'datagram',
  nack: 'datagram',
  'ping-req': 'datagram',
  gossip: 'datagram',
  seen: 'datagram',
  'push-pull': 'stream',
  events: 'stream',
};

export const gossipMsgTypes: readonly GossipMsgType[] = Object.keys(kindTable) as GossipMsgType[];
export const streamKinds: ReadonlySet<GossipMsgType> = new Set(
  gossipMsgTypes.filter((k) => kindTable[k] === 'stream'),
);

/** Whether the host must send `msg` over a stream (TCP) rather than a datagram. */
export function isStreamMessage(msg: GossipMsg): boolean {
  return streamKinds.has(msg.type);
}

/** The only durable state: the incarnation we may announce and the last event number we used. */
export interface GossipDurable {
  readonly incarnation: number;
  readonly eventSeq: number;
}

export type GossipPersist = { readonly type: 'hard-state' } & GossipDurable;

export type GossipRequest =
  | { readonly type: 'join'; readonly seeds: readonly NodeId[] }
  | { readonly type: 'leave' }
  | { readonly type: 'publish'; readonly name: string; readonly payload: string }
  | { readonly type: 'set-tags'; readonly tags: string };

/** Why a request was refused; `too-large` names the limit it broke. */
export type GossipRefusal =
  | {
      readonly code: 'too-large';
      readonly limit: 'eventBytesMax' | 'tagsBytesMax' | 'membersMax';
      readonly max: number;
      readonly got: number;
    }
  | { readonly code: 'not-member' };

export type GossipReply =
  | { readonly type: 'ok' }
  | { readonly type: 'published'; readonly origin: NodeId; readonly seq: number }
  | { readonly type: 'refused'; readonly reason: GossipRefusal };

/** In-order delivery per origin; a `gap` says events from..to are lost to retention. */
export type GossipDeliver =
  | { readonly type: 'event'; readonly event: UserEvent }
  | { readonly type: 'gap'; readonly origin: NodeId; readonly from: number; readonly to: number };

/** Why a push-pull started: joining, the periodic timer, a lasting digest mismatch, a reconnect to the dead. */
export type PushPullReason = 'join' | 'periodic' | 'mismatch' | 'reconnect';

export type GossipEvent =
  | {
      readonly type: 'member';
      readonly about: NodeId;
      readonly status: MemberStatus;
      readonly incarnation: number;
    }
  | { readonly type: 'verdict'; readonly about: NodeId; readonly incarnation: number }
  /** A dead or left member forgotten after its reap interval. */
  | { readonly type: 'reaped'; readonly about: NodeId; readonly incarnation: number }
  | { readonly type: 'refute'; readonly incarnation: number }
  | { readonly type: 'paused'; readonly ms: number }
  | {
      readonly type: 'push-pull';
      readonly with: NodeId;
      readonly reason: PushPullReason;
    }
  | { readonly type: 'dropped'; readonly reason: DropReason };

/** Why an input was dropped (each counted in `GossipStats.dropped`). */
export type DropReason = 'malformed' | 'too-large' | 'misdirected' | 'members-full' | 'not-member';

export interface GossipTypes extends CoreTypes {
  readonly msg: GossipMsg;
  readonly persist: GossipPersist;
  readonly deliver: GossipDeliver;
  readonly request: GossipRequest;
  readonly reply: GossipReply;
  readonly event: GossipEvent;
}
