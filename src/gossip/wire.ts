import { assert, unreachable } from '../kernel/assert.ts';
import type {
  Digest,
  EventHead,
  GossipMsg,
  GossipMsgType,
  MemberRecord,
  MemberStatus,
  RetainedHead,
  Rumour,
  UserEvent,
} from './types.ts';

/**
 * The binary form of gossip messages and the pure byte model that sizes them. Codes are
 * append-only. Integers are big-endian u32 unless noted; strings are UTF-8 with a u16 length
 * (u8 for event names). Counts of rumours, digest entries and heads are u8 (a packet holds
 * fewer), counts in stream messages u32.
 *
 * The core sizes each datagram with `msgBytes` before it sends it, so every datagram fits
 * `packetBytesMax`; wire.test.ts proves `encode(m).length <= msgBytes(m)`.
 */
export const msgCodes: { readonly [K in GossipMsgType]: number } = {
  ping: 1,
  ack: 2,
  nack: 3,
  'ping-req': 4,
  gossip: 5,
  seen: 6,
  'push-pull': 7,
  events: 8,
};

const rumourCodes: { readonly [K in Rumour['kind']]: number } = {
  alive: 1,
  suspect: 2,
  dead: 3,
  leave: 4,
  event: 5,
};

const statusCodes: { readonly [K in MemberStatus]: number } = {
  alive: 0,
  suspect: 1,
  dead: 2,
  left: 3,
};
const statuses: readonly MemberStatus[] = ['alive', 'suspect', 'dead', 'left'];

/** UTF-8 length of `s` without encoding it. */
export function utf8Bytes(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** Header of every message: the code byte. */
export const HEADER_BYTES = 1;
/** A u8 count in front of a list. */
export const COUNT_BYTES = 1;

export function eventBytes(e: UserEvent): number {
  return 4 + 4 + 1 + utf8Bytes(e.name) + 2 + utf8Bytes(e.payload);
}

/** Bytes of one rumour, its code included. */
export function rumourBytes(r: Rumour): number {
  switch (r.kind) {
    case 'alive':
      return 1 + 8 + 2 + utf8Bytes(r.tags);
    case 'suspect':
    case 'dead':
    case 'leave':
      return 1 + 12;
    case 'event':
      return 1 + eventBytes(r.event);
    default:
      return unreachable(r, 'rumour');
  }
}

export const DIGEST_ENTRY_BYTES = 9;
export const HEAD_BYTES = 8;
/** hash, member count, entry count, head count. */
export const DIGEST_FIXED_BYTES = 4 + 4 + 1 + 1;

export function digestBytes(d: Digest): number {
  return DIGEST_FIXED_BYTES + d.entries.length * DIGEST_ENTRY_BYTES + d.heads.length * HEAD_BYTES;
}

function rumoursBytes(rs: readonly Rumour[]): number {
  let n = COUNT_BYTES;
  for (const r of rs) n += rumourBytes(r);
  return n;
}

function memberBytes(m: MemberRecord): number {
  return 4 + 4 + 1 + 2 + utf8Bytes(m.tags);
}

/** The byte model: the encoded size of `msg`. */
export function msgBytes(msg: GossipMsg): number {
  switch (msg.type) {
    case 'ping':
    case 'ping-req':
      return HEADER_BYTES + 8 + rumoursBytes(msg.rumours);
    case 'ack':
      return HEADER_BYTES + 4 + rumoursBytes(msg.rumours);
    case 'nack':
      return HEADER_BYTES + 4;
    case 'gossip':
      return (
        HEADER_BYTES + rumoursBytes(msg.rumours) + 1 + (msg.digest ? digestBytes(msg.digest) : 0)
      );
    case 'seen':
      return HEADER_BYTES + COUNT_BYTES + msg.events.length * HEAD_BYTES;
    case 'push-pull': {
      let n = HEADER_BYTES + 1 + 4 + 4 + 4 + msg.heads.length * (HEAD_BYTES + 4);
      for (const m of msg.members) n += memberBytes(m);
      for (const e of msg.events) n += eventBytes(e);
      return n;
    }
    case 'events': {
      let n = HEADER_BYTES + 4;
      for (const e of msg.events) n += eventBytes(e);
      return n;
    }
    default:
      return unreachable(msg, 'gossip message');
  }
}

// --- encoding --------------------------------------------------------------------------

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

class Writer {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  at = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }
  u8(v: number): void {
    this.view.setUint8(this.at, v);
    this.at += 1;
  }
  u16(v: number): void {
    this.view.setUint16(this.at, v);
    this.at += 2;
  }
  u32(v: number): void {
    this.view.setUint32(this.at, v);
    this.at += 4;
  }
  str(s: string, wide: boolean): void {
    const b = encoder.encode(s);
    assert(b.length <= (wide ? 0xffff : 0xff), 'string too long for its length field');
    if (wide) this.u16(b.length);
    else this.u8(b.length);
    this.bytes.set(b, this.at);
    this.at += b.length;
  }
}

function writeEvent(w: Writer, e: UserEvent): void {
  w.u32(e.origin);
  w.u32(e.seq);
  w.str(e.name, false);
  w.str(e.payload, true);
}

function writeRumour(w: Writer, r: Rumour): void {
  w.u8(rumourCodes[r.kind]);
  switch (r.kind) {
    case 'alive':
      w.u32(r.id);
      w.u32(r.incarnation);
      w.str(r.tags, true);
      return;
    case 'suspect':
    case 'dead':
      w.u32(r.id);
      w.u32(r.incarnation);
      w.u32(r.from);
      return;
    case 'leave':
      w.u32(r.id);
      w.u32(r.incarnation);
      w.u32(r.ltime);
      return;
    case 'event':
      writeEvent(w, r.event);
      return;
    default:
      unreachable(r, 'rumour');
  }
}

function writeRumours(w: Writer, rs: readonly Rumour[]): void {
  assert(rs.length <= 0xff, 'more than 255 rumours in one message');
  w.u8(rs.length);
  for (const r of rs) writeRumour(w, r);
}

function writeDigest(w: Writer, d: Digest): void {
  w.u32(d.hash);
  w.u32(d.members);
  assert(d.entries.length <= 0xff && d.heads.length <= 0xff, 'digest slice too long');
  w.u8(d.entries.length);
  for (const e of d.entries) {
    w.u32(e.id);
    w.u32(e.incarnation);
    w.u8(e.gone ? 1 : 0);
  }
  w.u8(d.heads.length);
  for (const h of d.heads) {
    w.u32(h.origin);
    w.u32(h.seq);
  }
}

/** Encodes `msg` in exactly `msgBytes(msg)` bytes. */
export function encodeMsg(msg: GossipMsg): Uint8Array {
  const w = new Writer(msgBytes(msg));
  w.u8(msgCodes[msg.type]);
  switch (msg.type) {
    case 'ping':
    case 'ping-req':
      w.u32(msg.seq);
      w.u32(msg.target);
      writeRumours(w, msg.rumours);
      break;
    case 'ack':
      w.u32(msg.seq);
      writeRumours(w, msg.rumours);
      break;
    case 'nack':
      w.u32(msg.seq);
      break;
    case 'gossip':
      writeRumours(w, msg.rumours);
      w.u8(msg.digest ? 1 : 0);
      if (msg.digest) writeDigest(w, msg.digest);
      break;
    case 'seen':
      assert(msg.events.length <= 0xff, 'too many seen events');
      w.u8(msg.events.length);
      for (const h of msg.events) {
        w.u32(h.origin);
        w.u32(h.seq);
      }
      break;
    case 'push-pull':
      w.u8((msg.reply ? 1 : 0) | (msg.join ? 2 : 0));
      w.u32(msg.members.length);
      for (const m of msg.members) {
        w.u32(m.id);
        w.u32(m.incarnation);
        w.u8(statusCodes[m.status]);
        w.str(m.tags, true);
      }
      w.u32(msg.heads.length);
      for (const h of msg.heads) {
        w.u32(h.origin);
        w.u32(h.seq);
        w.u32(h.oldest);
      }
      w.u32(msg.events.length);
      for (const e of msg.events) writeEvent(w, e);
      break;
    case 'events':
      w.u32(msg.events.length);
      for (const e of msg.events) writeEvent(w, e);
      break;
    default:
      unreachable(msg, 'gossip message');
  }
  assert(w.at === w.bytes.length, `encoded ${w.at} bytes, model said ${w.bytes.length}`);
  return w.bytes;
}

// --- decoding --------------------------------------------------------------------------

/** Thrown inside the decoder only; `decodeMsg` turns it into `undefined`. */
class Malformed extends Error {}

class Reader {
  private readonly view: DataView;
  at = 0;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  need(n: number): void {
    if (this.at + n > this.bytes.length) throw new Malformed('truncated');
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
  id(): number {
    const v = this.u32();
    if (v === 0) throw new Malformed('node id 0');
    return v;
  }
  str(wide: boolean): string {
    const n = wide ? this.u16() : this.u8();
    this.need(n);
    const s = decoder.decode(this.bytes.subarray(this.at, this.at + n));
    this.at += n;
    return s;
  }
  /** A count of items each at least `itemMin` bytes, checked against what is left. */
  count(wide: boolean, itemMin: number): number {
    const n = wide ? this.u32() : this.u8();
    if (n * itemMin > this.bytes.length - this.at) throw new Malformed('count beyond the end');
    return n;
  }
  done(): boolean {
    return this.at === this.bytes.length;
  }
}

function readEvent(r: Reader): UserEvent {
  const origin = r.id();
  const seq = r.u32();
  if (seq === 0) throw new Malformed('event seq 0');
  const name = r.str(false);
  const payload = r.str(true);
  return { origin, seq, name, payload };
}

function readRumour(r: Reader): Rumour {
  const code = r.u8();
  switch (code) {
    case rumourCodes.alive:
      return { kind: 'alive', id: r.id(), incarnation: r.u32(), tags: r.str(true) };
    case rumourCodes.suspect:
      return { kind: 'suspect', id: r.id(), incarnation: r.u32(), from: r.id() };
    case rumourCodes.dead:
      return { kind: 'dead', id: r.id(), incarnation: r.u32(), from: r.id() };
    case rumourCodes.leave:
      return { kind: 'leave', id: r.id(), incarnation: r.u32(), ltime: r.u32() };
    case rumourCodes.event:
      return { kind: 'event', event: readEvent(r) };
    default:
      throw new Malformed(`unknown rumour code ${code}`);
  }
}

function readRumours(r: Reader): Rumour[] {
  const n = r.count(false, 11);
  const out: Rumour[] = [];
  for (let i = 0; i < n; i++) out.push(readRumour(r));
  return out;
}

function readDigest(r: Reader): Digest {
  const hash = r.u32();
  const members = r.u32();
  const entries = [];
  for (let i = r.count(false, DIGEST_ENTRY_BYTES); i > 0; i--) {
    const id = r.id();
    const incarnation = r.u32();
    const g = r.u8();
    if (g > 1) throw new Malformed('bad gone flag');
    entries.push({ id, incarnation, gone: g === 1 });
  }
  const heads: EventHead[] = [];
  for (let i = r.count(false, HEAD_BYTES); i > 0; i--) heads.push({ origin: r.id(), seq: r.u32() });
  return { hash, members, entries, heads };
}

function readPushPull(r: Reader): GossipMsg {
  const flags = r.u8();
  if (flags > 3) throw new Malformed('bad push-pull flags');
  const members: MemberRecord[] = [];
  for (let i = r.count(true, 11); i > 0; i--) {
    const id = r.id();
    const incarnation = r.u32();
    const status = statuses[r.u8()];
    if (status === undefined) throw new Malformed('bad member status');
    members.push({ id, incarnation, status, tags: r.str(true) });
  }
  const heads: RetainedHead[] = [];
  for (let i = r.count(true, 12); i > 0; i--) {
    heads.push({ origin: r.id(), seq: r.u32(), oldest: r.u32() });
  }
  const events: UserEvent[] = [];
  for (let i = r.count(true, 11); i > 0; i--) events.push(readEvent(r));
  return {
    type: 'push-pull',
    reply: (flags & 1) !== 0,
    join: (flags & 2) !== 0,
    members,
    heads,
    events,
  };
}

function readBody(r: Reader, code: number): GossipMsg {
  switch (code) {
    case msgCodes.ping:
      return { type: 'ping', seq: r.u32(), target: r.id(), rumours: readRumours(r) };
    case msgCodes['ping-req']:
      return { type: 'ping-req', seq: r.u32(), target: r.id(), rumours: readRumours(r) };
    case msgCodes.ack:
      return { type: 'ack', seq: r.u32(), rumours: readRumours(r) };
    case msgCodes.nack:
      return { type: 'nack', seq: r.u32() };
    case msgCodes.gossip: {
      const rumours = readRumours(r);
      const has = r.u8();
      if (has > 1) throw new Malformed('bad digest flag');
      return has === 1
        ? { type: 'gossip', rumours, digest: readDigest(r) }
        : { type: 'gossip', rumours };
    }
    case msgCodes.seen: {
      const events: EventHead[] = [];
      for (let i = r.count(false, HEAD_BYTES); i > 0; i--)
        events.push({ origin: r.id(), seq: r.u32() });
      return { type: 'seen', events };
    }
    case msgCodes['push-pull']:
      return readPushPull(r);
    case msgCodes.events: {
      const events: UserEvent[] = [];
      for (let i = r.count(true, 11); i > 0; i--) events.push(readEvent(r));
      return { type: 'events', events };
    }
    default:
      throw new Malformed(`unknown message code ${code}`);
  }
}

/** Decodes one message, or undefined when the bytes are not exactly one well-formed message. */
export function decodeMsg(bytes: Uint8Array): GossipMsg | undefined {
  try {
    const r = new Reader(bytes);
    const msg = readBody(r, r.u8());
    return r.done() ? msg : undefined;
  } catch (err) {
    if (err instanceof Malformed || err instanceof TypeError) return undefined;
    throw err;
  }
}
