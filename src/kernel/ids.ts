import { assert } from './assert.ts';

/**
 * A node's permanent identity: a positive 32-bit integer chosen by the operator, never an
 * address (several nodes share a host, and addresses get reused). 0 means "no node".
 * Ids also serve as tie-breakers (Paxos proposal ids, Totem's lowest-id ring leader), so
 * they must be unique for the lifetime of a cluster.
 */
export type NodeId = number;

/** "No node": no vote cast, no leader known. */
export const NO_NODE: NodeId = 0;

/** A client endpoint (a session of requests), distinct from node ids. */
export type ClientId = number;

export const NODE_ID_MAX = 0xffff_ffff;

export function isNodeId(value: unknown): value is NodeId {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= NODE_ID_MAX;
}

export function assertNodeId(value: number, what = 'node id'): asserts value is NodeId {
  assert(isNodeId(value), `${what} must be an integer in 1..${NODE_ID_MAX}, got ${value}`);
}

/** Node ids 1..n, the usual naming of a fresh n-node cluster. */
export function nodeIds(n: number): NodeId[] {
  assert(Number.isInteger(n) && n >= 1, `cluster size must be a positive integer, got ${n}`);
  return Array.from({ length: n }, (_, i) => i + 1);
}
