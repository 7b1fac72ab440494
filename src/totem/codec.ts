import { assert, unreachable } from '../kernel/assert.ts';
import { DATAGRAM_HEADER_BYTES, ITEM_HEADER_BYTES } from './config.ts';
import type {
  Commit,
  CommitEntry,
  DeliveryMode,
  Item,
  Join,
  Mcast,
  RingId,
  Token,
  TotemMsg,
  TotemMsgType,
} from './types.ts';

/**
 * The binary form of Totem's messages on the wire. Codes are append-only. Integers are
 * big-endian: node ids u32, counters that grow for the life of a ring or a boot (ring seq,
 * datagram seq, token seq, aru, publish number) u48, so that a ring carrying 100,000
 * datagrams a second runs for 89 years before one wraps; smaller counts u8/u16/u32.
 *
 * The core sizes datagrams with DATAGRAM_HEADER_BYTES and ITEM_HEADER_BYTES (config.ts):
 * a datagram's header here is at most 24 bytes, a recovered datagram's inner header 23, so
 * one header budget covers a Recovery re-send of a full datagram, and an item header is
 * exactly ITEM_HEADER_BYTES. codec.test.ts proves encode(m).length <= the core's size.
 *
 * decode never trusts its input: anything that is not exactly one well-formed message is
 * refused with the reason, for the caller to count. Semantic checks (aru above seq, too many
 * retransmit entries, unknown senders) stay in the core (wire.ts `checkMessage`).
 */
export const totemCodes: { readonly [K in TotemMsgType]: number } = {
  mcast: 1,
  token: 2,
  join: 3,
  commit: 4,
  probe: 5,
  ack: 6,
  release: 7,
};

const typesByCode: ReadonlyMap<number, TotemMsgType> = new Map(
  (Object.entries(totemCodes) as [TotemMsgType, number][]).map(([k, v]) => [v, k]),
);

/** The largest counter a u48 field holds. */
export const U48_MAX = 2 ** 48 - 1;

const RING_BYTES = 6 + 4;
/** Outer datagram header: code, ring, seq, sender, flags, item count. */
export const MCAST_HEADER_BYTES = 1 + RING_BYTES + 6 + 4 + 1 + 2;
/** A recovered datagram's header inside another: the same without the code. */
export const INNER_MCAST_HEADER_BYTES = MCAST_HEADER_BYTES - 1;
/** Item header: origin node, boot, publish number, part, parts, data length. */
export const CODEC_ITEM_HEADER_BYTES = 4 + 4 + 6 + 4 + 4 + 2;
const ENTRY_BYTES = 4 + RING_BYTES + 6 + 6 + 6;

// The core's byte model must cover the encoding (a recovered datagram inside another too).
assert(MCAST_HEADER_BYTES + INNER_MCAST_HEADER_BYTES <= DATAGRAM_HEADER_BYTES, 'header budget');
assert(CODEC_ITEM_HEADER_BYTES === ITEM_HEADER_BYTES, 'item header budget');

const MODE_SAFE = 1;
const HAS_OLD = 2;

/** Why bytes did not decode. */
export type DecodeFailure =
  | 'empty'
  | 'unknown-code'
  | 'truncated'
  | 'trailing-bytes'
  | 'bad-node-id'
  | 'bad-flags'
  | 'bad-count'
  | 'bad-fragment';

export type Decoded =
  | { readonly ok: true; readonly msg: TotemMsg }
  | { readonly ok: false; readonly reason: DecodeFailure };

export const decodeFailures: readonly DecodeFailure[] = [
  'empty',
  'unknown-code',
  'truncated',
  'trailing-bytes',
  'bad-node-id',
  'bad-flags',
  'bad-count',
  'bad-fragment',
];

class Malformed extends Error {
  constructor(readonly reason: DecodeFailure) {
    super(reason);
  }
}

function itemsBytes(items: readonly Item[]): number {
  let n = 0;
  for (const i of items) n += CODEC_ITEM_HEADER_BYTES + i.data.length;
  return n;
}

function mcastBytes(m: Mcast, inner: boolean): number {
  const header = inner ? INNER_MCAST_HEADER_BYTES : MCAST_HEADER_BYTES;
  return header + itemsBytes(m.items) + (m.old === null ? 0 : mcastBytes(m.old, true));
}

/** Exactly how many bytes `encodeTotem(msg)` writes. */
export function encodedBytes(msg: TotemMsg): number {
  switch (msg.type) {
    case 'mcast':
      return mcastBytes(msg, false);
    case 'token':
      return 1 + RING_BYTES + 6 + 6 + 6 + 4 + 4 + 4 + 1 + 1 + 6 * msg.rtr.length;
    case 'join':
      return 1 + 4 + 6 + 2 + 4 * msg.procs.length + 2 + 4 * msg.failed.length;
    case 'commit':
      return 1 + RING_BYTES + 1 + 2 + 4 * msg.members.length + 2 + ENTRY_BYTES * msg.entries.length;
    case 'probe':
      return 1 + RING_BYTES;
    case 'ack':
      return 1 + RING_BYTES + 6;
    case 'release':
      return 1 + RING_BYTES;
    default:
      return unreachable(msg, 'message');
  }
}

class Writer {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  at = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }
  u8(v: number): void {
    assert(Number.isInteger(v) && v >= 0 && v <= 0xff, `u8 out of range: ${v}`);
    this.view.setUint8(this.at++, v);
  }
  u16(v: number): void {
    assert(Number.isInteger(v) && v >= 0 && v <= 0xffff, `u16 out of range: ${v}`);
    this.view.setUint16(this.at, v);
    this.at += 2;
  }
  u32(v: number): void {
    assert(Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff, `u32 out of range: ${v}`);
    this.view.setUint32(this.at, v);
    this.at += 4;
  }
  u48(v: number): void {
    assert(Number.isInteger(v) && v >= 0 && v <= U48_MAX, `u48 out of range: ${v}`);
    this.view.setUint16(this.at, Math.floor(v / 2 ** 32));
    this.view.setUint32(this.at + 2, v % 2 ** 32);
    this.at += 6;
  }
  ring(r: RingId): void {
    this.u48(r.seq);
    this.u32(r.rep);
  }
  raw(b: Uint8Array): void {
    this.bytes.set(b, this.at);
    this.at += b.length;
  }
}

function writeMcast(w: Writer, m: Mcast): void {
  w.ring(m.ring);
  w.u48(m.seq);
  w.u32(m.sender);
  w.u8((m.mode === 'safe' ? MODE_SAFE : 0) | (m.old === null ? 0 : HAS_OLD));
  w.u16(m.items.length);
  for (const i of m.items) {
    w.u32(i.origin.node);
    w.u32(i.origin.boot);
    w.u48(i.origin.n);
    w.u32(i.part);
    w.u32(i.parts);
    w.u16(i.data.length);
    w.raw(i.data);
  }
  if (m.old !== null) writeMcast(w, m.old);
}

function writeBody(w: Writer, msg: TotemMsg): void {
  switch (msg.type) {
    case 'mcast':
      writeMcast(w, msg);
      return;
    case 'token':
      w.ring(msg.ring);
      w.u48(msg.tokenSeq);
      w.u48(msg.seq);
      w.u48(msg.aru);
      w.u32(msg.aruId);
      w.u32(msg.fcc);
      w.u32(msg.backlog);
      w.u8(msg.recovery ? 1 : 0);
      w.u8(msg.rtr.length);
      for (const s of msg.rtr) w.u48(s);
      return;
    case 'join':
      w.u32(msg.sender);
      w.u48(msg.ringSeq);
      w.u16(msg.procs.length);
      for (const p of msg.procs) w.u32(p);
      w.u16(msg.failed.length);
      for (const p of msg.failed) w.u32(p);
      return;
    case 'commit':
      w.ring(msg.ring);
      w.u8(msg.rotation);
      w.u16(msg.members.length);
      for (const p of msg.members) w.u32(p);
      w.u16(msg.entries.length);
      for (const e of msg.entries) {
        w.u32(e.id);
        w.ring(e.oldRing);
        w.u48(e.aru);
        w.u48(e.highSeq);
        w.u48(e.delivered);
      }
      return;
    case 'probe':
    case 'release':
      w.ring(msg.ring);
      return;
    case 'ack':
      w.ring(msg.ring);
      w.u48(msg.tokenSeq);
      return;
    default:
      unreachable(msg, 'message');
  }
}

/** The message's bytes. Throws on a value no valid message holds (a negative seq). */
export function encodeTotem(msg: TotemMsg): Uint8Array {
  const w = new Writer(encodedBytes(msg));
  w.u8(totemCodes[msg.type]);
  writeBody(w, msg);
  assert(w.at === w.bytes.length, 'encodedBytes sizes the encoding exactly');
  return w.bytes;
}

class Reader {
  private readonly view: DataView;
  at = 0;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get left(): number {
    return this.bytes.length - this.at;
  }
  need(n: number): void {
    if (n > this.left) throw new Malformed('truncated');
  }
  u8(): number {
    this.need(1);
    return this.view.getUint8(this.at++);
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.at);
    this.at += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.at);
    this.at += 4;
    return v;
  }
  u48(): number {
    this.need(6);
    const v = this.view.getUint16(this.at) * 2 ** 32 + this.view.getUint32(this.at + 2);
    this.at += 6;
    return v;
  }
  id(): number {
    const v = this.u32();
    if (v === 0) throw new Malformed('bad-node-id');
    return v;
  }
  /** A node id, or 0 where the field may be empty (a ring's representative, aruId). */
  idOrNone(): number {
    return this.u32();
  }
  ring(): RingId {
    return { seq: this.u48(), rep: this.idOrNone() };
  }
  /** A u16 count of elements at least `elementBytes` each, checked against what is left. */
  count16(elementBytes: number): number {
    const n = this.u16();
    if (n * elementBytes > this.left) throw new Malformed('bad-count');
    return n;
  }
  ids(): number[] {
    const out: number[] = [];
    for (let n = this.count16(4); n > 0; n--) out.push(this.id());
    return out;
  }
  raw(n: number): Uint8Array {
    this.need(n);
    // A copy: the datagram's buffer is the transport's, and items outlive it in the store.
    const b = this.bytes.slice(this.at, this.at + n);
    this.at += n;
    return b;
  }
}

function readItem(r: Reader): Item {
  const origin = { node: r.id(), boot: r.u32(), n: r.u48() };
  if (origin.n < 1) throw new Malformed('bad-count');
  const part = r.u32();
  const parts = r.u32();
  if (parts < 1 || part >= parts) throw new Malformed('bad-fragment');
  const data = r.raw(r.u16());
  return { origin, part, parts, data };
}

function readMcast(r: Reader, inner: boolean): Mcast {
  const ring = r.ring();
  const seq = r.u48();
  const sender = r.id();
  const flags = r.u8();
  if ((flags & ~(MODE_SAFE | HAS_OLD)) !== 0) throw new Malformed('bad-flags');
  const mode: DeliveryMode = (flags & MODE_SAFE) !== 0 ? 'safe' : 'agreed';
  const items: Item[] = [];
  for (let n = r.count16(CODEC_ITEM_HEADER_BYTES); n > 0; n--) items.push(readItem(r));
  let old: Mcast | null = null;
  if ((flags & HAS_OLD) !== 0) {
    // Recovery re-sends a ring's own datagrams: one level of nesting, never more.
    if (inner) throw new Malformed('bad-flags');
    old = readMcast(r, true);
  }
  return { type: 'mcast', ring, seq, sender, mode, items, old };
}

function readToken(r: Reader): Token {
  const ring = r.ring();
  const tokenSeq = r.u48();
  const seq = r.u48();
  const aru = r.u48();
  const aruId = r.idOrNone();
  const fcc = r.u32();
  const backlog = r.u32();
  const flag = r.u8();
  if (flag > 1) throw new Malformed('bad-flags');
  const rtr: number[] = [];
  const n = r.u8();
  if (n * 6 > r.left) throw new Malformed('bad-count');
  for (let i = 0; i < n; i++) rtr.push(r.u48());
  return {
    type: 'token',
    ring,
    tokenSeq,
    seq,
    aru,
    aruId,
    rtr,
    fcc,
    backlog,
    recovery: flag === 1,
  };
}

function readJoin(r: Reader): Join {
  const sender = r.id();
  const ringSeq = r.u48();
  const procs = r.ids();
  const failed = r.ids();
  return { type: 'join', sender, procs, failed, ringSeq };
}

function readCommit(r: Reader): Commit {
  const ring = r.ring();
  const rotation = r.u8();
  const members = r.ids();
  const entries: CommitEntry[] = [];
  for (let n = r.count16(ENTRY_BYTES); n > 0; n--) {
    entries.push({
      id: r.id(),
      oldRing: r.ring(),
      aru: r.u48(),
      highSeq: r.u48(),
      delivered: r.u48(),
    });
  }
  return { type: 'commit', ring, members, entries, rotation };
}

function readBody(r: Reader, type: TotemMsgType): TotemMsg {
  switch (type) {
    case 'mcast':
      return readMcast(r, false);
    case 'token':
      return readToken(r);
    case 'join':
      return readJoin(r);
    case 'commit':
      return readCommit(r);
    case 'probe':
      return { type: 'probe', ring: r.ring() };
    case 'release':
      return { type: 'release', ring: r.ring() };
    case 'ack':
      return { type: 'ack', ring: r.ring(), tokenSeq: r.u48() };
    default:
      return unreachable(type, 'message type');
  }
}

/** Decodes one message, or says why the bytes are not exactly one well-formed message. */
export function decodeTotem(bytes: Uint8Array): Decoded {
  if (bytes.length === 0) return { ok: false, reason: 'empty' };
  const type = typesByCode.get(bytes[0]!);
  if (type === undefined) return { ok: false, reason: 'unknown-code' };
  const r = new Reader(bytes);
  r.at = 1;
  try {
    const msg = readBody(r, type);
    if (r.left !== 0) return { ok: false, reason: 'trailing-bytes' };
    return { ok: true, msg };
  } catch (err) {
    if (err instanceof Malformed) return { ok: false, reason: err.reason };
    throw err;
  }
}
