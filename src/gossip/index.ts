/**
 * Gossip membership as a pure core (kernel `Core` contract): SWIM failure detection with
 * Lifeguard, rumour dissemination with a per-round digest and push-pull repair, user events
 * in order per origin with explicit gaps, and a byte model that keeps every datagram within
 * the packet budget. The host sends `streamKinds` over TCP and the rest as datagrams.
 */
export type { GossipConfig, GossipUnsafeTestingFaults } from './config.ts';
export {
  awarenessScaledMs,
  digestMismatchMs,
  eventSendsMax,
  GOSSIP_DEFAULTS,
  PACKET_BYTES_MIN,
  pauseThresholdMs,
  pushPullScaleMs,
  retransmitLimit,
  suspicionConfirmationsNeeded,
  suspicionMaxTimeoutMs,
  suspicionMinTimeoutMs,
  suspicionTimeoutMs,
  validateGossipConfig,
} from './config.ts';
export type { GossipMode, GossipStats } from './node.ts';
export { GossipNode } from './node.ts';
export type {
  Digest,
  DigestEntry,
  DropReason,
  EventHead,
  GossipDeliver,
  GossipDurable,
  GossipEvent,
  GossipMsg,
  GossipMsgType,
  GossipPersist,
  GossipRefusal,
  GossipReply,
  GossipRequest,
  GossipTypes,
  MemberRecord,
  MemberStatus,
  RetainedHead,
  Rumour,
  UserEvent,
} from './types.ts';
export { gossipMsgTypes, isStreamMessage, streamKinds } from './types.ts';
export { decodeMsg, encodeMsg, msgBytes, msgCodes, rumourBytes, utf8Bytes } from './wire.ts';

import type { GossipDurable, GossipPersist } from './types.ts';

/** The durable state before the first write. */
export const initialGossipDurable: GossipDurable = { incarnation: 0, eventSeq: 0 };

/** The disk after `item` was written: the newest hard state wins. */
export function applyGossipPersist(durable: GossipDurable, item: GossipPersist): GossipDurable {
  return {
    incarnation: Math.max(durable.incarnation, item.incarnation),
    eventSeq: Math.max(durable.eventSeq, item.eventSeq),
  };
}
