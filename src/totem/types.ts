import type { CoreTypes } from '../kernel/core.ts';
import type { ClientId, NodeId } from '../kernel/ids.ts';

/**
 * Totem's vocabulary: the ring id, the wire messages (datagram, token, join, commit token,
 * merge probe), what a node persists, delivers, is asked and answers.
 */

/** A ring: its sequence number (grows for ever, persisted) and its representative (lowest id). */
export interface RingId {
  readonly seq: number;
  readonly rep: NodeId;
}

export const NO_RING: RingId = { seq: 0, rep: 0 };

export function ringEquals(a: RingId, b: RingId): boolean {
  return a.seq === b.seq && a.rep === b.rep;
}

/** Ring ids order by seq, then representative. */
export function ringCompare(a: RingId, b: RingId): number {
  return a.seq !== b.seq ? a.seq - b.seq : a.rep - b.rep;
}

export function ringKey(r: RingId): string {
  return `${r.seq}.${r.rep}`;
}

export type DeliveryMode = 'agreed' | 'safe';

/** Who published a message: the node and which boot of it (persisted), so ids never repeat. */
export interface Origin {
  readonly node: NodeId;
  readonly boot: number;
  /** 1, 2, 3... per boot, in publish order. */
  readonly n: number;
}

/**
 * One packed item of a datagram: a whole small message, or one fragment of a large one
 * (`part` of `parts`, 0-based; a whole message has parts = 1).
 */
export interface Item {
  readonly origin: Origin;
  readonly part: number;
  readonly parts: number;
  readonly data: Uint8Array;
}

/**
 * A datagram of the ring: only the token holder assigns `seq`. Items share its mode.
 * `old` marks a datagram re-broadcast in Recovery: it carries a datagram of a previous ring,
 * which survivors deliver in that ring's order, not in this one's.
 */
export interface Mcast {
  readonly type: 'mcast';
  readonly ring: RingId;
  readonly seq: number;
  readonly sender: NodeId;
  readonly mode: DeliveryMode;
  readonly items: readonly Item[];
  readonly old: Mcast | null;
}

/** The regular token (Totem's ORF token). */
export interface Token {
  readonly type: 'token';
  readonly ring: RingId;
  /** Grows at every forward; a copy whose tokenSeq is not above the last one seen is dropped. */
  readonly tokenSeq: number;
  /** Highest datagram seq assigned in the ring. */
  readonly seq: number;
  /** All received up to: the lowest aru of the members visited since it was last raised. */
  readonly aru: number;
  /** Who lowered the aru (0 when aru = seq). */
  readonly aruId: NodeId;
  /** Seqs someone is missing. */
  readonly rtr: readonly number[];
  /** Datagrams sent during the last rotation (flow control count). */
  readonly fcc: number;
  /** Messages waiting in the members' send queues, as of their last visit. */
  readonly backlog: number;
  /** Set while the ring is in Recovery; the member that sees Recovery complete clears it. */
  readonly recovery: boolean;
}

/** Gather: what the sender believes the next ring's processes are, and which have failed. */
export interface Join {
  readonly type: 'join';
  readonly sender: NodeId;
  readonly procs: readonly NodeId[];
  readonly failed: readonly NodeId[];
  /** The highest ring seq the sender has ever seen (persisted before this join left). */
  readonly ringSeq: number;
}

/** One member's entry on the commit token. */
export interface CommitEntry {
  readonly id: NodeId;
  /** Its last regular ring (NO_RING if it never had one). */
  readonly oldRing: RingId;
  /** Its aru in that ring. */
  readonly aru: number;
  /** Highest seq it holds of that ring. */
  readonly highSeq: number;
  /** Highest seq it delivered in that ring. */
  readonly delivered: number;
}

/**
 * The commit token: made by the representative once the joins agree, it circulates twice,
 * first collecting each member's entry, then telling everyone all of them.
 */
export interface Commit {
  readonly type: 'commit';
  readonly ring: RingId;
  readonly members: readonly NodeId[];
  readonly entries: readonly CommitEntry[];
  /** 1 or 2. */
  readonly rotation: number;
}

/**
 * Answer to a retransmitted token we already took: it tells the sender its successor is
 * alive (faster re-forming names a successor failed only without this evidence). Sent only
 * on retransmissions, so a healthy ring pays nothing for it.
 */
export interface TokenAck {
  readonly type: 'ack';
  readonly ring: RingId;
  readonly tokenSeq: number;
}

/** A representative's merge-detection probe to configured nodes outside its ring. */
export interface Probe {
  readonly type: 'probe';
  readonly ring: RingId;
}

/**
 * A member's request that the representative pass on the idle token it holds: the member
 * has messages to send. Without it a publish away from the representative waits out the
 * hold (up to `tokenHoldMs`, ~695 ms at the defaults for 3 members). Liveness only: a lost
 * one costs that wait, nothing else.
 */
export interface Release {
  readonly type: 'release';
  readonly ring: RingId;
}

export type TotemMsg = Mcast | Token | Join | Commit | Probe | TokenAck | Release;
export type TotemMsgType = TotemMsg['type'];

/** Every message kind, derived from the union (the compiler rejects a missing or extra one). */
const kindTable: { readonly [K in TotemMsgType]: true } = {
  mcast: true,
  token: true,
  join: true,
  commit: true,
  probe: true,
  ack: true,
  release: true,
};
export const totemMsgTypes: ReadonlySet<string> = new Set(Object.keys(kindTable));

export type TotemPersist =
  | { readonly type: 'boot'; readonly boot: number }
  | { readonly type: 'ringSeq'; readonly seq: number };

export interface TotemDurable {
  readonly boot: number;
  readonly ringSeq: number;
}

export const EMPTY_TOTEM_DURABLE: TotemDurable = { boot: 0, ringSeq: 0 };

export function applyTotemPersist(d: TotemDurable, p: TotemPersist): TotemDurable {
  switch (p.type) {
    case 'boot':
      return { ...d, boot: Math.max(d.boot, p.boot) };
    case 'ringSeq':
      return { ...d, ringSeq: Math.max(d.ringSeq, p.seq) };
  }
}

/** A configuration change delivered in the stream (extended virtual synchrony). */
export interface ConfigChange {
  readonly type: 'config';
  readonly kind: 'transitional' | 'regular';
  /** The regular configuration's ring; for a transitional one, the ring being left. */
  readonly ring: RingId;
  readonly members: readonly NodeId[];
}

/** A message delivered in total order. `ring`/`seq` name the datagram that completed it. */
export interface Delivered {
  readonly type: 'message';
  readonly ring: RingId;
  readonly seq: number;
  readonly origin: Origin;
  readonly mode: DeliveryMode;
  readonly data: Uint8Array;
  /** Delivered in the ring's regular configuration, or in the transitional one after it. */
  readonly in: 'regular' | 'transitional';
}

export type TotemDeliver = Delivered | ConfigChange;

export type TotemRequest =
  /** `ref` is the client's own tag, echoed in the answer. */
  | {
      readonly type: 'publish';
      readonly mode: DeliveryMode;
      readonly data: Uint8Array;
      readonly ref: number;
    }
  | { readonly type: 'status' };

/** Why a request was refused. */
export type TotemRefusal = 'too-large' | 'bad-request';

export type TotemReply =
  /** The message was delivered here: its origin and the datagram that completed it. */
  | {
      readonly type: 'published';
      readonly ref: number;
      readonly origin: Origin;
      readonly ring: RingId;
      readonly seq: number;
    }
  /** The send queue is full: `depth` messages (`bytes` of payload) are waiting. */
  | {
      readonly type: 'backpressure';
      readonly ref: number;
      readonly depth: number;
      readonly bytes: number;
    }
  | {
      readonly type: 'refused';
      readonly ref: number;
      readonly reason: TotemRefusal;
      readonly detail: string;
    }
  | { readonly type: 'status'; readonly status: TotemStatus };

export type TotemState = 'gather' | 'commit' | 'recovery' | 'operational';

export interface TotemStatus {
  readonly state: TotemState;
  readonly ring: RingId;
  readonly members: readonly NodeId[];
  readonly aru: number;
  readonly highSeq: number;
  readonly delivered: number;
  readonly queued: number;
}

/** Why an input was dropped (counted per reason). */
export type DropReason =
  | 'malformed'
  | 'unknown-sender'
  | 'foreign-ring'
  | 'stale-token'
  | 'bad-token'
  | 'duplicate'
  | 'out-of-window'
  | 'stale-join'
  | 'not-expected';

export type TotemEvent =
  | { readonly type: 'state'; readonly state: TotemState; readonly ring: RingId }
  | { readonly type: 'token'; readonly ring: RingId; readonly tokenSeq: number }
  | { readonly type: 'received'; readonly ring: RingId; readonly seq: number }
  /** The sender assigned `seq`: which messages this datagram completes (observers check gaps). */
  | {
      readonly type: 'assigned';
      readonly ring: RingId;
      readonly seq: number;
      readonly completes: readonly Origin[];
    }
  | { readonly type: 'freed'; readonly ring: RingId; readonly upTo: number }
  | { readonly type: 'dropped'; readonly reason: DropReason }
  | {
      readonly type: 'visit';
      readonly ring: RingId;
      readonly sent: number;
      readonly resent: number;
    };

export interface TotemTypes extends CoreTypes {
  readonly msg: TotemMsg;
  readonly persist: TotemPersist;
  readonly deliver: TotemDeliver;
  readonly request: TotemRequest;
  readonly reply: TotemReply;
  readonly event: TotemEvent;
}

export type { ClientId };
