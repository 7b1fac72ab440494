/**
 * Totem single-ring ordering as a pure core (kernel `Core` contract): a token passed round a
 * logical ring assigns a total order; agreed delivery in that order, safe delivery once
 * every member holds a message; Gather / Commit / Recovery membership with extended virtual
 * synchrony; flow control and timeouts with corosync's defaults.
 */
export type { Decoded, DecodeFailure } from './codec.ts';
export { decodeFailures, decodeTotem, encodedBytes, encodeTotem, totemCodes } from './codec.ts';
export type { TotemConfig } from './config.ts';
export {
  consensusTimeoutMs,
  TOTEM_DEFAULTS,
  tokenHoldMs,
  tokenRetransmitMs,
  tokenTimeoutMs,
  validateTotemConfig,
} from './config.ts';
export type { TotemUnsafeTestingFaults } from './node.ts';
export { TotemNode } from './node.ts';
export type {
  MachineBinding,
  ReplicaDurable,
  ReplicaPersist,
  ReplicaReply,
  ReplicaRequest,
  ReplicaSettings,
  ReplicaStatus,
  ReplicatedMachine,
} from './replica.ts';
export {
  applyReplicaPersist,
  emptyReplicaDurable,
  REPLICA_DEFAULTS,
  TotemReplica,
} from './replica.ts';
export type {
  ConfigChange,
  Delivered,
  DeliveryMode,
  RingId,
  TotemDeliver,
  TotemDurable,
  TotemMsg,
  TotemPersist,
  TotemRefusal,
  TotemReply,
  TotemRequest,
} from './types.ts';
export { applyTotemPersist, EMPTY_TOTEM_DURABLE, NO_RING, totemMsgTypes } from './types.ts';
