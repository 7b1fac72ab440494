/**
 * Sealing of one datagram: AES-256-GCM under a key derived (HKDF-SHA256) from the cluster
 * secret, a key id byte so keys can be rotated (several accepted, one used to send), the
 * cluster name as associated data, and a per-sender counter that is both the nonce and the
 * replay-window position.
 *
 *     byte 0      version (1)
 *     byte 1      key id
 *     bytes 2-5   sender node id (u32, big-endian)
 *     bytes 6-13  counter (u64, big-endian)
 *     ...         ciphertext
 *     last 16     GCM tag
 *
 * The nonce is sender ‖ counter, unique per key while a sender's counter never repeats: it
 * starts at the wall clock in microseconds when a transport starts, so a restarted node
 * continues above its old counter (as long as its clock does not step back by more than it
 * ran) and its fresh datagrams also pass its peers' replay windows.
 */
import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';
import type { NodeId } from '../../kernel/ids.ts';

export const SEAL_VERSION = 1;
/**
 * The version byte of an unsealed datagram (`crypto: 'insecure-none'`): the same header,
 * then the plaintext, no tag. Neither kind is accepted by a transport set for the other, so
 * a cluster that mixes them fails loudly (every datagram dropped as `version`).
 */
export const PLAIN_VERSION = 2;
export const SEAL_HEADER_BYTES = 14;
export const SEAL_TAG_BYTES = 16;
export const SEAL_OVERHEAD_BYTES = SEAL_HEADER_BYTES + SEAL_TAG_BYTES;
const SALT = Buffer.from('quorate gossip datagram v1');

export interface DatagramKey {
  readonly id: number;
  readonly key: Buffer;
}

/** The AES-256 key for `keyId`, derived from the cluster secret (at least 16 bytes). */
export function deriveDatagramKey(secret: Uint8Array | string, keyId: number): DatagramKey {
  const raw = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
  if (raw.length < 16) throw new Error('the cluster secret must be at least 16 bytes');
  if (!Number.isInteger(keyId) || keyId < 0 || keyId > 255) {
    throw new Error(`key id must be an integer in 0..255, got ${keyId}`);
  }
  const key = Buffer.from(hkdfSync('sha256', raw, SALT, `datagram key ${keyId}`, 32));
  return { id: keyId, key };
}

function header(keyId: number, sender: NodeId, counter: bigint): Buffer {
  const h = Buffer.alloc(SEAL_HEADER_BYTES);
  h.writeUInt8(SEAL_VERSION, 0);
  h.writeUInt8(keyId, 1);
  h.writeUInt32BE(sender, 2);
  h.writeBigUInt64BE(counter, 6);
  return h;
}

function nonce(h: Buffer): Buffer {
  return h.subarray(2, 14);
}

export function sealDatagram(
  key: DatagramKey,
  clusterName: string,
  sender: NodeId,
  counter: bigint,
  plaintext: Uint8Array,
): Buffer {
  const h = header(key.id, sender, counter);
  const cipher = createCipheriv('aes-256-gcm', key.key, nonce(h));
  cipher.setAAD(Buffer.concat([h, Buffer.from(clusterName, 'utf8')]));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([h, body, cipher.getAuthTag()]);
}

export type OpenResult =
  | {
      readonly ok: true;
      readonly sender: NodeId;
      readonly counter: bigint;
      readonly plaintext: Buffer;
    }
  | { readonly ok: false; readonly reason: 'truncated' | 'version' | 'unknown-key' | 'auth' };

/** Checks and decrypts a datagram with whichever accepted key its key id names. */
export function openDatagram(
  keys: ReadonlyMap<number, DatagramKey>,
  clusterName: string,
  datagram: Uint8Array,
): OpenResult {
  // The version first: an unsealed datagram is named as such even when shorter than a seal.
  if (datagram.length > 0 && datagram[0] !== SEAL_VERSION) return { ok: false, reason: 'version' };
  if (datagram.length < SEAL_OVERHEAD_BYTES) return { ok: false, reason: 'truncated' };
  const d = Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  const key = keys.get(d.readUInt8(1));
  if (key === undefined) return { ok: false, reason: 'unknown-key' };
  const h = d.subarray(0, SEAL_HEADER_BYTES);
  const sender = h.readUInt32BE(2);
  const counter = h.readBigUInt64BE(6);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.key, nonce(h));
    decipher.setAAD(Buffer.concat([h, Buffer.from(clusterName, 'utf8')]));
    decipher.setAuthTag(d.subarray(d.length - SEAL_TAG_BYTES));
    const body = d.subarray(SEAL_HEADER_BYTES, d.length - SEAL_TAG_BYTES);
    const plaintext = Buffer.concat([decipher.update(body), decipher.final()]);
    return { ok: true, sender, counter, plaintext };
  } catch {
    return { ok: false, reason: 'auth' };
  }
}

/**
 * An unsealed datagram: no confidentiality, no authenticity (anyone on the network can read
 * and forge it). Only for benchmarks and trusted networks, and only when asked for by name.
 * The counter still feeds the receiver's replay window, which then only catches duplicates.
 */
export function plainDatagram(sender: NodeId, counter: bigint, plaintext: Uint8Array): Buffer {
  const d = Buffer.allocUnsafe(SEAL_HEADER_BYTES + plaintext.length);
  d.writeUInt8(PLAIN_VERSION, 0);
  d.writeUInt8(0, 1);
  d.writeUInt32BE(sender, 2);
  d.writeBigUInt64BE(counter, 6);
  d.set(plaintext, SEAL_HEADER_BYTES);
  return d;
}

/** Reads an unsealed datagram's header; refuses a sealed one (or garbage) as `version`. */
export function openPlainDatagram(datagram: Uint8Array): OpenResult {
  if (datagram.length < SEAL_HEADER_BYTES) return { ok: false, reason: 'truncated' };
  const d = Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  if (d.readUInt8(0) !== PLAIN_VERSION) return { ok: false, reason: 'version' };
  return {
    ok: true,
    sender: d.readUInt32BE(2),
    counter: d.readBigUInt64BE(6),
    plaintext: d.subarray(SEAL_HEADER_BYTES),
  };
}

/**
 * Per-sender sliding replay window (as IPsec's): the highest counter seen and a bitmap of
 * the `size` below it. A counter seen before, or older than the window, is a replay.
 */
export class ReplayWindow {
  private highest = -1n;
  private readonly seen: Uint8Array;

  constructor(private readonly size: number) {
    if (!Number.isInteger(size) || size < 8 || size > 1 << 16) {
      throw new Error(`replay window must be in 8..65536, got ${size}`);
    }
    this.seen = new Uint8Array(size);
  }

  /** Whether `counter` is fresh; a fresh counter is recorded. */
  accept(counter: bigint): boolean {
    const size = BigInt(this.size);
    if (counter > this.highest) {
      const shift = counter - this.highest;
      if (shift >= size) this.seen.fill(0);
      else for (let c = this.highest + 1n; c < counter; c++) this.seen[Number(c % size)] = 0;
      this.highest = counter;
      this.seen[Number(counter % size)] = 1;
      return true;
    }
    if (this.highest - counter >= size) return false;
    const slot = Number(counter % size);
    if (this.seen[slot] === 1) return false;
    this.seen[slot] = 1;
    return true;
  }
}
