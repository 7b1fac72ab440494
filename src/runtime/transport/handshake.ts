/**
 * Mutual challenge-response authentication of a peer connection with a cluster secret.
 *
 *   server -> client  CHALLENGE  serverId u32 | serverNonce (32 B)
 *   client -> server  HELLO      clientId u32 | targetId u32 | clientNonce | clientProof
 *   server -> client  WELCOME    serverProof
 *
 *   clientProof = HMAC-SHA256(secret, "quorate/1 client" | serverNonce | clientNonce | clientId | serverId)
 *   serverProof = HMAC-SHA256(secret, "quorate/1 server" | clientNonce | serverNonce | serverId | clientId)
 *
 * Fresh nonces on both sides stop replays; the role label and the two ids in each proof stop
 * a proof being reflected back or reused for another pair of nodes. Proofs are compared
 * with timingSafeEqual. After the handshake, frames carry no MAC of their own: without TLS
 * the secret authenticates the CONNECTION, not each frame, so an attacker who can splice
 * into a TCP stream on the path could still inject. Use the `tls` option on networks you do
 * not control; it adds confidentiality and per-record integrity.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { NodeId } from '../../kernel/ids.ts';
import { isNodeId } from '../../kernel/ids.ts';

export const NONCE_BYTES = 32;
const PROOF_BYTES = 32;

export enum HandshakeKind {
  Challenge = 1,
  Hello = 2,
  Welcome = 3,
}

export interface Challenge {
  readonly serverId: NodeId;
  readonly serverNonce: Uint8Array;
}

export interface Hello {
  readonly clientId: NodeId;
  readonly targetId: NodeId;
  readonly clientNonce: Uint8Array;
  readonly proof: Uint8Array;
}

export const newNonce = (): Uint8Array => new Uint8Array(randomBytes(NONCE_BYTES));

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, false);
  return b;
}

function proof(secret: Uint8Array, label: string, parts: readonly Uint8Array[]): Uint8Array {
  const mac = createHmac('sha256', secret).update(label);
  for (const p of parts) mac.update(p);
  return new Uint8Array(mac.digest());
}

export function clientProof(
  secret: Uint8Array,
  c: Challenge,
  clientId: NodeId,
  clientNonce: Uint8Array,
) {
  return proof(secret, 'quorate/1 client', [
    c.serverNonce,
    clientNonce,
    u32(clientId),
    u32(c.serverId),
  ]);
}

export function serverProof(secret: Uint8Array, c: Challenge, h: Hello): Uint8Array {
  return proof(secret, 'quorate/1 server', [
    h.clientNonce,
    c.serverNonce,
    u32(c.serverId),
    u32(h.clientId),
  ]);
}

export function proofsEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export function encodeChallenge(c: Challenge): Uint8Array {
  return concat([Uint8Array.of(HandshakeKind.Challenge), u32(c.serverId), c.serverNonce]);
}

export function encodeHello(h: Hello): Uint8Array {
  return concat([
    Uint8Array.of(HandshakeKind.Hello),
    u32(h.clientId),
    u32(h.targetId),
    h.clientNonce,
    h.proof,
  ]);
}

export function encodeWelcome(serverProofBytes: Uint8Array): Uint8Array {
  return concat([Uint8Array.of(HandshakeKind.Welcome), serverProofBytes]);
}

export function decodeChallenge(b: Uint8Array): Challenge | undefined {
  if (b.length !== 1 + 4 + NONCE_BYTES || b[0] !== HandshakeKind.Challenge) return undefined;
  const serverId = view(b).getUint32(1, false);
  return isNodeId(serverId) ? { serverId, serverNonce: b.slice(5) } : undefined;
}

export function decodeHello(b: Uint8Array): Hello | undefined {
  if (b.length !== 1 + 8 + NONCE_BYTES + PROOF_BYTES || b[0] !== HandshakeKind.Hello)
    return undefined;
  const clientId = view(b).getUint32(1, false);
  const targetId = view(b).getUint32(5, false);
  if (!isNodeId(clientId) || !isNodeId(targetId)) return undefined;
  return {
    clientId,
    targetId,
    clientNonce: b.slice(9, 9 + NONCE_BYTES),
    proof: b.slice(9 + NONCE_BYTES),
  };
}

export function decodeWelcome(b: Uint8Array): Uint8Array | undefined {
  if (b.length !== 1 + PROOF_BYTES || b[0] !== HandshakeKind.Welcome) return undefined;
  return b.slice(1);
}

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
