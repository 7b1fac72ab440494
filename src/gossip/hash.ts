import type { NodeId } from '../kernel/ids.ts';

/**
 * The digest hash is a sum mod 2^32 of one mixed word per member and per event origin, so
 * it is kept up to date in O(1) per change instead of rehashing a 10,000-member view every
 * gossip round. Alive and suspect hash alike (suspicion is transient and local); dead and
 * left alike.
 */
function mix(a: number, b: number, c: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ b, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ c, 0x27d4eb2f);
  return (h ^ (h >>> 15)) >>> 0;
}

export function memberHash(id: NodeId, incarnation: number, gone: boolean): number {
  return mix(id, incarnation, gone ? 1 : 2);
}

export function headHash(origin: NodeId, seq: number): number {
  return mix(origin, seq, 3);
}
